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


def test_memory_command_prints_the_comparison(configs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["memory", "--config", str(configs_dir / "mnist_tt.toml"), "--memory.param_bits=4"]) == 0
    out = capsys.readouterr().out
    assert "| parameters | 7.2 KiB | 1.8 MiB |" in out  # 14,800 entries at 4 bits vs 467,472 at 32
    assert main(["memory", "--config", str(configs_dir / "mnist_tt.toml"), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in table["rows"]] == ["parameters", "gradients", "optimizer", "activations", "total"]


def test_default_main_job_reaches_95_percent(tmp_path: Path, configs_dir: Path) -> None:
    """The bar of the default job: the digits TT network of configs/digits_tt.toml, as shipped."""
    from ttedge.config import load_config
    from ttedge.train import RunConfig
    from ttedge.train.loop import train

    result = train(load_config(RunConfig, configs_dir / "digits_tt.toml"), tmp_path / "run")
    assert result.summary["final_test_acc"] >= 0.95
