"""Training runs: results on disk, exact resume, and refusal of corrupt checkpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from ttedge.config import load_config
from ttedge.errors import CheckpointError
from ttedge.train import RunConfig
from ttedge.train.checkpoint import load_checkpoint, save_checkpoint
from ttedge.train.loop import CHECKPOINT, RunResult, train

SMALL = ["--model.hidden=[16]", "--model.in_modes=[[8, 8], [4, 4]]", "--model.out_modes=[[4, 4], [2, 5]]",
         "--model.ranks=[[3], [3]]", "--train.epochs=2", "--train.batch_size=128", "--train.threads=1"]


def _small(*extra: str) -> RunConfig:
    return load_config(RunConfig, None, [*SMALL, *extra])



def test_run_writes_results(tmp_path: Path) -> None:
    result = train(_small(), tmp_path / "run")
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.toml", "metrics.json", "curves.png", "checkpoint.pt"} <= files
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert metrics["summary"]["mode"] == "float32 (PyTorch)"
    assert metrics["summary"]["parameters"] == sum(p.numel() for p in result.model.parameters())
    # The resolved config reproduces the run's config exactly.
    assert load_config(RunConfig, tmp_path / "run" / "config.toml") == _small()


@pytest.mark.parametrize("stop_at", [5, 11])  # mid-epoch (after a step checkpoint) and on an epoch boundary
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path: Path, stop_at: int, killed_and_resumed: Callable[[RunConfig, int], RunResult]) -> None:
    cfg = _small("--train.checkpoint_every=4")
    whole = train(cfg, tmp_path / "whole")

    resumed = killed_and_resumed(cfg, stop_at)
    for (name, p), q in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name
    strip = lambda es: [{k: v for k, v in e.items() if k != "seconds"} for e in es]  # noqa: E731
    assert strip(whole.epochs) == strip(resumed.epochs)


def test_resume_refuses_a_changed_config(tmp_path: Path) -> None:
    train(_small("--train.epochs=1"), tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"^the checkpoint in .*run was written with a different configuration; resume without overrides, or start a new run\.$"):
        train(_small("--train.epochs=1", "--train.lr=0.5"), tmp_path / "run", resume=True)


def test_corrupt_checkpoint_is_refused(tmp_path: Path) -> None:
    train(_small("--train.epochs=1"), tmp_path / "run")
    path = tmp_path / "run" / CHECKPOINT
    path.write_bytes(path.read_bytes()[:200])  # a truncated write
    with pytest.raises(CheckpointError, match=r"^checkpoint .*checkpoint\.pt is corrupt or truncated \(.*\); delete it to restart the run or restore an intact copy\.$"):
        train(_small("--train.epochs=1"), tmp_path / "run", resume=True)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="is corrupt or truncated"):
        load_checkpoint(path)


def test_foreign_and_missing_checkpoints(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"^.*other\.pt is not a ttedge checkpoint of format ttedge-checkpoint-1; point --resume at a ttedge run folder\.$"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"^no checkpoint at .*missing\.pt; resume from a run folder that holds checkpoint\.pt\.$"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"x": torch.ones(3)})

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("ttedge.train.checkpoint.os.replace", fail)
    with pytest.raises(OSError):
        save_checkpoint(path, {"x": torch.zeros(3)})
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(3))  # the old checkpoint survives intact
