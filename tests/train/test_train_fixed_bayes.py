"""Rank-adaptive training wholly in fixed point: the prior in the program, pruning between epochs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ttedge.cli import main
from ttedge.config import load_config
from ttedge.errors import ConfigError
from ttedge.train import RunConfig
from ttedge.train.loop import train

SMALL = ["--model.hidden=[32]", "--model.in_modes=[[4, 4, 4], [4, 8]]", "--model.out_modes=[[2, 4, 4], [2, 5]]",
         "--model.ranks=[[6, 6], [6]]", "--train.batch_size=64", "--train.threads=1", "--train.seed=1",
         "--fixed.enabled=true", "--fixed.lr_shift=7",
         "--bayes.enabled=true", "--bayes.beta=0.5", "--bayes.weight=5", "--bayes.damping=0.5",
         "--bayes.warmup_epochs=1", "--bayes.prune_epochs=[2, 3]", "--bayes.end_epoch=3"]


def _cfg(*extra: str) -> RunConfig:
    return load_config(RunConfig, None, [*SMALL, *extra])


def test_fixed_rank_adaptation_prunes_and_resumes_bit_identically(
        tmp_path: Path, killed_and_resumed: Callable[[RunConfig, int], Any], capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg("--train.epochs=4", "--train.checkpoint_every=8")
    whole = train(cfg, tmp_path / "whole")
    ranks = [e["ranks"] for e in whole.epochs]
    assert ranks[0] == {"layers.0": [6, 6], "layers.1": [6]}  # warm-up: no prior, no pruning
    final = ranks[-1]
    assert sum(final["layers.0"]) + sum(final["layers.1"]) < 18 and ranks[-1] == ranks[-2]  # pruned, then fine-tuned
    assert whole.epochs[1]["pruned"] + whole.epochs[2]["pruned"] == 18 - sum(final["layers.0"]) - sum(final["layers.1"])
    assert int(whole.interpreter.state["prior.on"]) == 0  # end_epoch 3: the fourth epoch runs without the prior
    assert whole.epochs[-1]["parameters"] < whole.epochs[0]["parameters"]
    assert whole.epochs[-1]["test_acc"] > 0.5  # chance is 0.10
    assert (tmp_path / "whole" / "ranks.png").stat().st_size > 0
    # killed after the first pruning (epoch 2 ends at step 42), resumed from a checkpoint of the pruned program
    resumed = killed_and_resumed(cfg, 50)
    a, b = whole.interpreter.state_dict(), resumed.interpreter.state_dict()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert [e["test_acc"] for e in resumed.epochs] == [e["test_acc"] for e in whole.epochs]
    assert main(["ranks", str(tmp_path / "whole")]) == 0
    assert "layers.0" in capsys.readouterr().out
    summary = json.loads((tmp_path / "whole" / "metrics.json").read_text())["summary"]
    assert summary["mode"] == "fixed point (reference interpreter)"


@pytest.mark.parametrize(("extra", "message"), [
    ("--bayes.prior=log_uniform", 'runs the gamma prior only, got \'log_uniform\'; set bayes.prior = "gamma".'),
    ("--bayes.em_every=2", "updates lambda every step; set bayes.em_every = 1."),
    ("--bayes.damping=0.3", "EM damping is a power of two, got bayes.damping = 0.3; use 1, 0.5, 0.25, ..."),
])
def test_fixed_rank_adaptation_refuses_what_it_cannot_run(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _cfg(extra, "--bayes.threshold=0.001" if "log_uniform" in extra else "--train.epochs=1")
    assert str(info.value).endswith(message)
