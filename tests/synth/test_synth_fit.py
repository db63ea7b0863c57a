"""The UP5K fit of a whole accelerator (ttedge.synth.fit): logic counted from Yosys's netlist with
the memories as black boxes, beside the memory plan; the verdict and what would have to shrink."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ttedge.errors import ConfigError
from ttedge.fixed import PrecisionConfig, compile_program
from ttedge.hw import AcceleratorConfig
from ttedge.hw.top import Accelerator
from ttedge.models import MLP
from ttedge.synth import fit_up5k
from ttedge.synth.fit import LOGIC_CELLS, Up5kFit
from ttedge.synth.up5k import plan_up5k_memories
from ttedge.tt import TTLinear


def small_accelerator(**kw: object) -> Accelerator:
    gen = torch.Generator().manual_seed(0)
    model = MLP([TTLinear([2, 4], [2, 3], 2, generator=gen), TTLinear([2, 3], [2, 5], 2, generator=gen)], 10)  # type: ignore[arg-type]
    dut = Accelerator(compile_program(model, PrecisionConfig(), 1), AcceleratorConfig(p=1, q=1), **kw)  # type: ignore[arg-type]
    dut._MustUse__silence = True  # type: ignore[attr-defined]  # some tests read its program without elaborating it
    return dut


def netlist(path: Path, top_luts: int, ew_luts: int, lanes: int) -> Path:
    """A hierarchical netlist as Yosys writes it: the top's own cells, one elementwise unit, ``lanes``
    output lanes of 100 LUT4 and 10 flip-flops each, and a black-box memory."""
    lane = {"cells": {**{f"l{i}": {"type": "SB_LUT4"} for i in range(100)}, **{f"f{i}": {"type": "SB_DFFE"} for i in range(10)}}}
    top = {"attributes": {"top": "00000000000000000000000000000001"},
           "cells": {**{f"t{i}": {"type": "SB_LUT4"} for i in range(top_luts)}, "c0": {"type": "SB_CARRY"},
                     "ew": {"type": "ttedge_accelerator.ew"}, "mem0": {"type": "ttedge_mem0"},
                     **{f"eng_out{q}": {"type": "ttedge_accelerator.eng_out"} for q in range(lanes)}}}
    modules = {"ttedge_accelerator": top, "ttedge_accelerator.ew": {"cells": {f"e{i}": {"type": "SB_LUT4"} for i in range(ew_luts)}},
               "ttedge_accelerator.eng_out": lane, "ttedge_mem0": {"attributes": {"blackbox": "1"}, "cells": {}}}
    path.write_text(json.dumps({"modules": modules}))
    return path


def test_fit_counts_logic_without_the_memories(tmp_path: Path, fake_tools: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NETLIST_ICE40", str(netlist(tmp_path / "n.json", 4000, 3000, 2)))
    dut = small_accelerator(external_memories=True)
    fit = fit_up5k(dut, tmp_path / "fit")
    design = (tmp_path / "fit" / "design.v").read_text()
    assert "(* blackbox *)\nmodule ttedge_mem0 (" in design and "$readmemh" not in design  # memories as stubs
    assert (fit.lut4, fit.ff, fit.carry) == (4000 + 3000 + 200, 20, 1)
    assert fit.units == {"ew": {"instances": 1, "lut4": 3000, "ff": 0},
                         "top (sequencer, routing, registers)": {"instances": 1, "lut4": 4000, "ff": 0},
                         "eng_out": {"instances": 2, "lut4": 200, "ff": 20}}
    assert fit.plan.fits and not fit.logic_fits and not fit.fits
    assert fit.message() == (f"It does not fit the iCE40 UP5K: the logic needs at least 7,200 logic cells (7,200 LUT4, 20 flip-flops) "
                             f"of the UP5K's {LOGIC_CELLS:,}, 1.4x the part; every buffer's memory fits "
                             f"({fit.plan.used_bits:,} of 1,171,456 bits).")
    flat = fit.to_flat()
    assert flat["up5k.status"] == "does_not_fit" and flat["up5k.lut4"] == 7200 and flat["up5k.lut4_capacity"] == 5280
    summary = fit.summary()
    assert "by 1,920 logic cells at least" in summary["shrink"]
    assert summary["units"][0] == ["top (sequencer, routing, registers)", "1", "4,000", "0"]
    assert [row[0] for row in summary["buffers"]] == [s.buffer.name for s in fit.plan.slots]


def test_a_small_design_fits_and_says_so(tmp_path: Path) -> None:
    plan = plan_up5k_memories(small_accelerator().program)
    fit = Up5kFit(plan, lut4=1000, ff=900, carry=50, logic_ebr=1)
    assert fit.fits and fit.message().startswith("It fits: 1,000 of 5,280 logic cells")
    assert fit.summary()["shrink"] == ""


def test_fit_needs_external_memories_and_names_a_yosys_failure(tmp_path: Path, fake_tools: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="external_memories=True"):
        fit_up5k(small_accelerator(), tmp_path)
    monkeypatch.setenv("FAKE_YOSYS", "fail")
    with pytest.raises(ConfigError, match=r"Yosys \(synth_ice40\) failed: .*syntax error.*the UP5K fit has no logic figures"):
        fit_up5k(small_accelerator(external_memories=True), tmp_path / "f")


def test_report_and_cli_show_the_fit(tmp_path: Path, fake_tools: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``ttedge hw synth --target up5k`` prints the fit and stops before place and route when it does
    not fit; the report's UP5K section carries the verdict, the units and every buffer's place."""
    from ttedge.cli import main
    from ttedge.report.build import ReportData, build_report

    monkeypatch.setenv("FAKE_NETLIST_ICE40", str(netlist(tmp_path / "n.json", 6000, 10, 1)))
    args = ["hw", "synth", "--config", "configs/digits_tt_fixed.toml", "--p", "1", "--q", "1", "--batch", "1", "--target", "up5k",
            "--model.hidden=[16]", "--model.in_modes=[[8,8],[4,4]]", "--model.out_modes=[[4,4],[2,5]]", "--model.ranks=[[2],[2]]"]
    assert main([*args, "--out", str(tmp_path / "synth")]) == 1
    captured = capsys.readouterr()
    assert "### iCE40 UP5K fit" in captured.out and "| top (sequencer, routing, registers) | 1 | 6,000 | 0 |" in captured.out
    assert "error: It does not fit the iCE40 UP5K: the logic needs at least 6,110 logic cells" in captured.err
    assert not (tmp_path / "synth" / "nextpnr.ran").exists() and not (tmp_path / "synth" / "up5k").exists()

    dut = small_accelerator(external_memories=True)
    fit = fit_up5k(dut, tmp_path / "fit", per_unit=False)
    md = build_report(ReportData("tiny", synth={"up5k": {**fit.to_flat(), "up5k.fit": fit.summary()}}), tmp_path / "report").read_text()
    assert "## iCE40 UP5K: does the whole training step fit?" in md and fit.message() in md
    assert "| l0.core0 | core |" in md and "up5k.fit" not in md


def test_synthesis_takes_the_memory_images_along(tmp_path: Path, fake_tools: Path) -> None:
    """``ttedge hw generate``'s Verilog reads mem<k>.hex by relative path; synthesizing it from
    another folder copies the images beside design.v, and a missing image is named."""
    from ttedge.hw.generate import generate
    from ttedge.synth import synthesize

    dut = small_accelerator()
    files = generate(dut.program, {}, dut.config, tmp_path / "hw")
    synthesize(files["accelerator.v"], "expneg", "xcup", tmp_path / "synth")  # the stand-in replays the ExpNeg netlist
    images = [f for f in files if f.startswith("mem") and f.endswith(".hex")]  # mem<k>.hex, or mem<k>_<b>_<p>_<s>.hex per block RAM
    assert len(images) >= 2
    for name in images:
        assert (tmp_path / "synth" / name).read_text() == (tmp_path / "hw" / name).read_text()
    (tmp_path / "hw" / images[0]).unlink()
    with pytest.raises(ConfigError, match=f"reads the memory image {images[0]}, which is not beside it"):
        synthesize(files["accelerator.v"], "expneg", "xcup", tmp_path / "synth2")


def test_pipeline_up5k_target_reports_the_fit(tmp_path: Path, fake_tools: Path, monkeypatch: pytest.MonkeyPatch,
                                              configs_dir: Path) -> None:
    """The report's up5k target: the fit stage's verdict is the missing part's reason, and the
    report carries the UP5K section; no place and route is attempted."""
    from ttedge.config import load_config
    from ttedge.pipeline import run_pipeline
    from ttedge.train import RunConfig

    monkeypatch.setenv("FAKE_NETLIST_ICE40", str(netlist(tmp_path / "n.json", 6000, 10, 1)))
    tiny = ["--model.hidden=[16]", "--model.in_modes=[[8, 8], [4, 4]]", "--model.out_modes=[[4, 4], [2, 5]]",
            "--model.ranks=[[3], [3]]", "--train.epochs=1", "--report.sim_steps=1", "--hw.p=1", "--hw.q=1",
            "--report.cpu_steps=2", "--bayes.enabled=false", '--report.targets=["up5k"]']
    cfg = load_config(RunConfig, configs_dir / "digits_pipeline.toml", tiny)
    md = run_pipeline(cfg, tmp_path / "run").read_text()
    assert "| synth-up5k | It does not fit the iCE40 UP5K: the logic needs at least 6,110 logic cells" in md
    assert "## iCE40 UP5K: does the whole training step fit?" in md
    assert not (tmp_path / "run" / "synth" / "up5k").exists() and not (tmp_path / "run" / "stages" / "synth-up5k.json").exists()


def test_report_command_shows_the_synthesis_tools_progress(tmp_path: Path, fake_tools: Path, monkeypatch: pytest.MonkeyPatch,
                                                           configs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Minutes of Yosys: ``ttedge report`` shows a line that moves with the tool's log."""
    from ttedge.cli import main

    monkeypatch.setenv("FAKE_NETLIST_ICE40", str(netlist(tmp_path / "n.json", 6000, 10, 1)))
    tiny = ["--model.hidden=[16]", "--model.in_modes=[[8, 8], [4, 4]]", "--model.out_modes=[[4, 4], [2, 5]]",
            "--model.ranks=[[3], [3]]", "--train.epochs=1", "--report.sim_steps=1", "--hw.p=1", "--hw.q=1",
            "--report.cpu_steps=2", "--bayes.enabled=false", '--report.targets=["up5k"]']
    assert main(["report", "--config", str(configs_dir / "digits_pipeline.toml"), "--out", str(tmp_path / "run"), *tiny]) == 0
    err = capsys.readouterr().err
    assert "synth-up5k: " in err and " log lines, " in err and "[synth-up5k] not available: It does not fit" in err
