"""The ttedge command as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttedge.cli import main

SMALL = ["--model.hidden=[16]", "--model.in_modes=[[8, 8], [4, 4]]", "--model.out_modes=[[4, 4], [2, 5]]",
         "--model.ranks=[[3], [3]]", "--train.batch_size=256", "--train.threads=1"]


def test_train_then_resume(tmp_path: Path, configs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", "--config", str(configs_dir / "digits_tt.toml"), "--out", str(run), "--train.epochs=1", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "final test accuracy" in out and str(run / "curves.png") in out
    # Resuming a finished run trains nothing more and reports the same result.
    assert main(["train", "--resume", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["summary"]["epochs"] == 1


def test_errors_are_one_line(tmp_path: Path, configs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--config", str(configs_dir / "digits_tt.toml"), "--train.epochs=ten"]) == 2
    assert capsys.readouterr().err == "ttedge: error: train.epochs must be an integer, got 'ten' (str).\n"
    assert main(["train", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ttedge: error: config file") and err.count("\n") == 1
    assert main(["train", "--config", "x.toml", "--resume", str(tmp_path)]) == 2
    assert "give either --config or --resume, not both" in capsys.readouterr().err
