"""Training wholly in fixed point: results on disk, exact resume, config errors, the memory account."""

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
from ttedge.fixed import PrecisionConfig, compile_program
from ttedge.memory import compare_fixed, fixed_step_bits
from ttedge.models import build_model
from ttedge.train import FixedConfig, RunConfig
from ttedge.train.fixed_loop import MODE
from ttedge.train.loop import train

SMALL = ["--model.hidden=[16]", "--model.in_modes=[[8, 8], [4, 4]]", "--model.out_modes=[[4, 4], [2, 5]]",
         "--model.ranks=[[3], [3]]", "--train.epochs=2", "--train.batch_size=64", "--train.threads=1",
         "--fixed.enabled=true", "--fixed.lr_shift=7"]


def _small(*extra: str) -> RunConfig:
    return load_config(RunConfig, None, [*SMALL, *extra])



def test_digits_fixed_run_writes_results_and_learns(tmp_path: Path, configs_dir: Path) -> None:
    cfg = load_config(RunConfig, configs_dir / "digits_tt_fixed.toml", ["--train.epochs=3", "--train.threads=1"])
    result = train(cfg, tmp_path / "run")
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.toml", "metrics.json", "curves.png", "checkpoint.pt"} <= files
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())["summary"]
    assert summary["mode"] == MODE == "fixed point (reference interpreter)"
    assert summary["precision"]["core"] == "fx<8,1>" and summary["precision"]["activation"] == "fx<16,9>"
    # 1,347 training samples in batches of 32: the last 3 are dropped each epoch.
    assert summary["dropped_per_epoch"] == 3 and result.epochs[-1]["step"] == 3 * 42
    assert int(result.interpreter.state["step"]) == 3 * 42
    assert summary["final_test_acc"] > 0.85  # chance is 0.10
    assert load_config(RunConfig, tmp_path / "run" / "config.toml") == cfg


@pytest.mark.parametrize("stop_at", [5, 21])  # mid-epoch (after a step checkpoint) and on an epoch boundary
def test_interrupted_and_resumed_fixed_run_is_bit_identical(tmp_path: Path, stop_at: int, killed_and_resumed: Callable[[RunConfig, int], Any]) -> None:
    cfg = _small("--train.checkpoint_every=4", "--fixed.rounding=stochastic", "--fixed.lr_decay_epochs=[1]")
    whole = train(cfg, tmp_path / "whole")
    assert whole.epochs[0]["step"] == 21  # 1,347 // 64
    # The schedule's register: the second epoch runs at half the learning rate.
    assert whole.epochs[1]["lr"] == whole.epochs[0]["lr"] / 2 and int(whole.interpreter.state["lr.decay"]) == 1
    plain = train(_small("--train.checkpoint_every=4", "--fixed.rounding=stochastic"), tmp_path / "plain")
    cores = [k for k in whole.interpreter.state if ".core" in k and not k.startswith("sat.")]
    assert any(not np.array_equal(plain.interpreter.state[k], whole.interpreter.state[k]) for k in cores)

    resumed = killed_and_resumed(cfg, stop_at)
    a, b = whole.interpreter.state_dict(), resumed.interpreter.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    strip = lambda es: [{k: v for k, v in e.items() if k != "seconds"} for e in es]  # noqa: E731
    assert strip(whole.epochs) == strip(resumed.epochs)


def test_bad_format_string_is_refused_at_load_time() -> None:
    with pytest.raises(ConfigError, match=r"^fixed\.core: cannot parse fixed-point format 'fx<8>'; write it as fx<W,I> "
                       r"or ufx<W,I> with optional rounding and overflow modes, e.g\. fx<16,9,stochastic,wrap>\.$"):
        _small("--fixed.core=fx<8>")
    with pytest.raises(ConfigError, match=r"^fixed\.error: unknown mode 'round' in fixed-point format"):
        _small("--fixed.error=fx<16,9,round>")
    with pytest.raises(ConfigError, match=r'^fixed-point training compiles TT layers only; set model.layer = "tt"'):
        load_config(RunConfig, None, ["--fixed.enabled=true", "--model.layer=dense"])


def test_section_defaults_are_the_precision_configs() -> None:
    assert FixedConfig().precision() == PrecisionConfig()
    assert FixedConfig(core="fx<4,1>", momentum_shift=3).precision().momentum_shift == 3


def test_memory_account_counts_the_programs_buffers(configs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(RunConfig, configs_dir / "mnist_tt_fixed.toml", ["--fixed.momentum_shift=0"])
    model = build_model(cfg.model, 896, 10)
    precision = cfg.fixed.precision()
    bits = fixed_step_bits(compile_program(model, precision, 1))
    cores = sum(c.numel() for layer in model.layers for c in layer.cores)
    biases = sum(layer.bias.numel() for layer in model.layers)
    assert cores == 14_272
    assert bits["cores"] == cores * precision.core.width
    assert bits["biases"] == biases * precision.bias.width
    assert bits["gradients"] == cores * precision.gradient.width + biases * precision.gradient.width
    assert bits["optimizer"] == 0  # plain SGD keeps no state
    shipped = load_config(RunConfig, configs_dir / "mnist_tt_fixed.toml").fixed.precision()  # with momentum
    momentum_bits = fixed_step_bits(compile_program(model, shipped, 1))["optimizer"]
    assert momentum_bits == (cores + biases) * shipped.velocity.width
    assert bits["total"] == sum(v for k, v in bits.items() if k not in ("total", "total_shared"))
    # Buffer reuse by lifetime: at every instruction, the working buffers alive then (brute force).
    program = compile_program(model, precision, 1)
    spans = program.lifetimes()
    working = {b.name: b.bits for b in program.buffers if b.kind in ("activation", "error", "gradient", "input", "label")}
    assert spans.keys() == working.keys() and spans["x"][0] == -1
    assert spans["x"][1] == max(i for i, ins in enumerate(program.instructions) if "x" in ins.reads)
    live = [sum(working[n] for n, (a, b) in spans.items() if a <= t <= b) for t in range(-1, len(program.instructions))]
    assert program.peak_working_bits() == max(live) < sum(working.values())
    state = bits["cores"] + bits["biases"] + bits["optimizer"] + bits["accumulators"]
    assert bits["total_shared"] == state + max(live) < bits["total"]
    table = compare_fixed(cfg)
    assert table["dense_bits"]["parameters"] == 407_050 * 32
    assert table["parameter_ratio"] == 407_050 * 32 / (bits["cores"] + bits["biases"])
    assert table["step_ratio"] == table["dense_bits"]["total"] / bits["total"]
    assert main(["memory", "--config", str(configs_dir / "mnist_tt_fixed.toml"), "--fixed.momentum_shift=0"]) == 0
    out = capsys.readouterr().out
    assert f"| parameters: cores | {cores * 8:,} |" in out and "Parameter-only ratio" in out


def test_memory_plot_is_drawn_for_fixed_configs_only(tmp_path: Path, configs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "memory.png"
    assert main(["memory", "--config", str(configs_dir / "mnist_tt_fixed.toml"), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {png}" in capsys.readouterr().out
    assert main(["memory", "--config", str(configs_dir / "mnist_tt.toml"), "--plot", str(tmp_path / "no.png")]) == 2
    assert "--plot draws a fixed-point training step" in capsys.readouterr().err
    assert not (tmp_path / "no.png").exists()


def test_adam_with_master_copies_resumes_bit_identically(tmp_path: Path, killed_and_resumed: Callable[[RunConfig, int], Any]) -> None:
    cfg = _small("--train.checkpoint_every=4", "--fixed.optimizer=adam", "--fixed.lr_shift=8",
                 "--fixed.core=fx<4,1,stochastic>", "--fixed.master=fx<8,1>")
    whole = train(cfg, tmp_path / "whole")
    resumed = killed_and_resumed(cfg, 5)
    a, b = whole.interpreter.state_dict(), resumed.interpreter.state_dict()
    assert a.keys() == b.keys() and any(k.endswith(".master.adam_v") for k in a)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert whole.epochs[-1]["test_acc"] == resumed.epochs[-1]["test_acc"] > 0.3  # chance is 0.10
    summary = json.loads((tmp_path / "whole" / "metrics.json").read_text())["summary"]
    assert summary["precision"]["master"] == "fx<8,1>" and summary["optimizer"] == "adam"


def test_optimizer_and_master_errors_are_one_sentence() -> None:
    with pytest.raises(ConfigError, match=r"^fixed\.optimizer must be one of sgd, adam, got 'adamw'\.$"):
        _small("--fixed.optimizer=adamw")
    with pytest.raises(ConfigError, match=r"^fixed: master copy fx<4,1> is narrower than the compute format fx<8,1>; "
                       r"give it at least as many integer and fractional bits\.$"):
        _small("--fixed.master=fx<4,1>")
    with pytest.raises(ConfigError, match=r"^fixed\.master: cannot parse fixed-point format 'fx<8>'"):
        _small("--fixed.master=fx<8>")


def test_memory_account_shows_masters_and_adam_moments(configs_dir: Path) -> None:
    cfg = load_config(RunConfig, configs_dir / "mnist_tt_fixed.toml",
                      ["--fixed.core=fx<4,1>", "--fixed.master=fx<8,1>", "--fixed.optimizer=adam", "--fixed.momentum_shift=0"])
    model = build_model(cfg.model, 896, 10)
    cores = sum(c.numel() for layer in model.layers for c in layer.cores)
    biases = sum(layer.bias.numel() for layer in model.layers)
    bits = compare_fixed(cfg)["fixed_bits"]
    assert bits["cores"] == cores * 8  # the 8-bit masters; the 4-bit compute copies are derived, not stored
    assert bits["optimizer"] == (cores + biases) * (32 + 32)  # Adam's two 32-bit moments
    assert compare_fixed(cfg)["precision"]["master"] == "fx<8,1>"


def test_program_listing_shows_every_instruction(configs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(configs_dir / "digits_tt_fixed.toml")
    assert main(["program", "--config", config, "--json", "--bayes.enabled=true", "--bayes.beta=0.5"]) == 0
    listing = json.loads(capsys.readouterr().out)
    rows = listing["instructions"]
    assert [sum(o["chosen"] for o in layer) for layer in listing["orders"]] == [1, 1]
    assert [len(layer) for layer in listing["orders"]] == [4, 4]  # 2**(3-1) contiguous orders per 3-core layer
    kinds = [r["kind"] for r in rows]
    assert kinds.count("PriorGrad") == 6 and kinds.count("LambdaUpdate") == 4 and "SoftmaxXentGrad" in kinds
    assert [r["index"] for r in rows] == list(range(len(rows)))
    assert all(r["macs"] > 0 for r in rows if r["kind"] == "Contract")
    assert main(["program", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "| 0 | Contract | forward |" in out and "multiply-accumulates per step" in out
    assert "Contraction orders per layer" in out and "| 0 | rtl [2, 1, 0] *" in out  # the float-speed choice
    assert main(["program", "--config", str(configs_dir / "digits_tt.toml")]) == 2
    assert "lists fixed-point programs" in capsys.readouterr().err
