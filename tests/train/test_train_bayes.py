"""Rank-adaptive training runs: ranks shrink, results record them, resume works across a pruning."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from ttedge.cli import main
from ttedge.config import load_config
from ttedge.errors import ConfigError
from ttedge.train import RunConfig
from ttedge.train.loop import RunResult, train

SMALL = ["--model.hidden=[64]", "--model.in_modes=[[4, 4, 4], [4, 4, 4]]", "--model.out_modes=[[4, 4, 4], [2, 5, 1]]",
         "--model.ranks=[[6, 6], [6, 6]]", "--train.epochs=4", "--train.batch_size=64", "--train.threads=1",
         "--train.lr=0.01", "--bayes.enabled=true", "--bayes.beta=1.0", "--bayes.weight=10", "--bayes.warmup_epochs=1"]



def test_ranks_shrink_and_are_logged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = train(load_config(RunConfig, None, SMALL), tmp_path / "run")
    first, last = result.epochs[0], result.epochs[-1]
    assert first["ranks"] == {"layers.0": [6, 6], "layers.1": [6, 6]} and first["pruned"] == 0  # warm-up epoch
    assert sum(e["pruned"] for e in result.epochs) > 0
    assert last["parameters"] < first["parameters"]
    assert last["parameters"] == sum(p.numel() for p in result.model.parameters())
    assert (tmp_path / "run" / "ranks.png").is_file()
    # The model the run ends with has the logged ranks.
    assert [m.ranks for m in result.model.layers] == [last["ranks"]["layers.0"], last["ranks"]["layers.1"]]
    assert main(["ranks", str(tmp_path / "run"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["before"]["ranks"] == first["ranks"] and rep["after"]["ranks"] == last["ranks"]
    assert rep["after"]["parameters"] == last["parameters"] < rep["before"]["parameters"]
    assert rep["after"]["step_memory_bytes"] < rep["before"]["step_memory_bytes"]


def test_resume_across_a_pruning(tmp_path: Path, killed_and_resumed: Callable[[RunConfig, int], RunResult]) -> None:
    cfg = load_config(RunConfig, None, [*SMALL, "--train.checkpoint_every=5"])
    whole = train(cfg, tmp_path / "whole")
    assert whole.epochs[2]["pruned"] > 0  # the cut below falls after this pruning
    steps_per_epoch = whole.epochs[0]["step"]

    resumed = killed_and_resumed(cfg, 3 * steps_per_epoch + 7)
    for (name, p), q in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name
    strip = lambda es: [{k: v for k, v in e.items() if k != "seconds"} for e in es]  # noqa: E731
    assert strip(whole.epochs) == strip(resumed.epochs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["--bayes.prior=wishart"], r"^bayes\.prior must be one of gamma, log_uniform, half_cauchy, got 'wishart'\.$"),
        (["--bayes.beta=-1"], r"^gamma prior beta must be a positive number, got -1\.0; set beta to a number > 0\.$"),
        (["--bayes.threshold='tiny'"], r"^bayes\.threshold must be a number, got 'tiny' \(str\)\.$"),
        (["--bayes.damping=0"], r"^bayes\.damping must lie in \(0, 1\], got 0\.0\.$"),
        (["--bayes.enabled=true", "--bayes.prior=log_uniform"],
         r"^the log_uniform prior has no built-in pruning threshold; set bayes\.threshold to a positive value\.$"),
    ],
)
def test_bad_bayes_config(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(RunConfig, None, overrides)


def test_end_epoch_stops_prior_and_pruning(tmp_path: Path) -> None:
    """After bayes.end_epoch the network fine-tunes: no pruning, no penalty, lambdas frozen."""
    result = train(load_config(RunConfig, None, [*SMALL, "--bayes.end_epoch=3", "--train.epochs=5"]), tmp_path / "run")
    assert result.epochs[2]["pruned"] > 0  # as in the run without end_epoch
    assert [e["pruned"] for e in result.epochs[3:]] == [0, 0]
    assert result.epochs[3]["lambdas"] == result.epochs[4]["lambdas"] == result.epochs[2]["lambdas"]
