"""The whole pipeline on a tiny digits config: every stage's results, a bit-exact simulation, the
report, a resumed rerun that keeps finished stages, and a partial report when a tool is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttedge.cli import main
from ttedge.config import load_config
from ttedge.pipeline import run_pipeline
from ttedge.train import RunConfig

TINY = ["--model.hidden=[16]", "--model.in_modes=[[8, 8], [4, 4]]", "--model.out_modes=[[4, 4], [2, 5]]",
        "--model.ranks=[[3], [3]]", "--train.epochs=3", "--report.sim_steps=1", "--hw.p=4", "--hw.q=2",
        "--report.cpu_steps=2", "--bayes.warmup_epochs=1", "--bayes.prune_epochs=[2]", "--bayes.end_epoch=2"]


def test_pipeline_runs_every_stage_and_resumes(tmp_path: Path, configs_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TTEDGE_YOSYS", str(tmp_path / "no-such-yosys"))  # synthesis must fail cleanly
    cfg = load_config(RunConfig, configs_dir / "digits_pipeline.toml", [*TINY, "--report.targets=[\"ecp5\"]"])
    events: list[tuple[str, str]] = []
    report = run_pipeline(cfg, tmp_path / "run", lambda e, info: events.append((e, info.get("stage", ""))))
    stages = {p.stem for p in (tmp_path / "run" / "stages").glob("*.json")}
    assert {"float", "fixed", "hardware", "simulate", "cpu"} <= stages and "synth-ecp5" not in stages
    sim = json.loads((tmp_path / "run" / "stages" / "simulate.json").read_text())
    assert sim["bit_exact"] and sim["steps"] == 1 and sim["compared"] > 0
    assert sum(sim["macs_by_kind"].values()) == sim["macs"]
    md = report.read_text()
    assert "## Headline: ttedge beside the paper" in md and "## Cycles and MAC-array utilization" in md
    # a 4 x 2 array: the output memory takes 2 writes per cycle (flip-flops), the left operands' 4 reads (copies)
    assert "## On-chip memories" in md and "| 2 write ports: flip-flops (" in md and "one copy per read port (4), block RAM" in md
    assert "no-such-yosys" in md  # the missing tool, named in the partial report
    assert ("stage-missing", "synth-ecp5") in events
    assert (report.parent / "report.html").exists() and (report.parent / "memory.png").exists()
    # A rerun keeps every finished stage and retries only what is missing.
    events.clear()
    run_pipeline(cfg, tmp_path / "run", lambda e, info: events.append((e, info.get("stage", ""))))
    assert ("stage", "float") not in events and ("stage", "synth-ecp5") in events
    assert main(["report", "--config", str(configs_dir / "digits_pipeline.toml"), "--out", str(tmp_path / "run"),
                 *TINY, "--report.targets=[\"ecp5\"]"]) == 0
    assert f"report: {report}" in capsys.readouterr().out
    assert main(["report", "--config", str(configs_dir / "digits_pipeline.toml"), "--out", str(tmp_path / "run"),
                 *TINY, "--report.targets=[]"]) == 2
    assert "holds a pipeline run of another config" in capsys.readouterr().err


def test_energy_per_sample_follows_the_model_and_the_cycles(configs_dir: Path) -> None:
    from ttedge.pipeline import _energy, fixed_config
    from ttedge.synth import EnergyModel
    from ttedge.synth.energy import ECP5_25F

    cfg = fixed_config(load_config(RunConfig, configs_dir / "digits_pipeline.toml", TINY), [[3], [3]])
    e = _energy(cfg, {"step_cycles": [7_000, 7_000], "batch": 1}, 50.0)
    assert e["seconds_per_sample"] == 7_000 / 50e6
    # the static power of the configured part: the default job places and routes on the LFE5U-85F
    assert cfg.report.ecp5_device == "85k"
    assert e["static_pj"] == pytest.approx(EnergyModel().static_power_w * 7_000 / 50e6 * 1e12, abs=0.1)
    small = fixed_config(load_config(RunConfig, configs_dir / "digits_pipeline.toml", [*TINY, "--report.ecp5_device=25k"]), [[3], [3]])
    e25 = _energy(small, {"step_cycles": [7_000, 7_000], "batch": 1}, 50.0)
    assert e25["static_pj"] == pytest.approx(ECP5_25F.static_power_w * 7_000 / 50e6 * 1e12, abs=0.1)
    assert e25["static_pj"] < e["static_pj"]  # the smaller part's
    assert e["joules_per_sample"] == pytest.approx(e["total_pj"] * 1e-12, rel=1e-6) and e["dynamic_pj"] > 0
