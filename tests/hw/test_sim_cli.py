"""``ttedge hw generate`` and ``ttedge hw simulate`` on a tiny digits network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttedge.cli import main

TINY = ["--config", "configs/digits_tt_fixed.toml", "--p", "2", "--q", "2", "--batch", "1",
        "--model.hidden=[16]", "--model.in_modes=[[8,8],[4,4]]", "--model.out_modes=[[4,4],[2,5]]", "--model.ranks=[[2],[2]]"]


def test_generate_writes_verilog_images_and_map(tmp_path: Path) -> None:
    assert main(["hw", "generate", *TINY, "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"accelerator.v", "program.hex", "memmap.txt", "cycles.json", "mem0.hex"} <= names
    verilog = (tmp_path / "accelerator.v").read_text()
    assert "module ttedge_accelerator" in verilog
    # every memory is a module of its own, its words read from the images beside it: one image for
    # the multi-ported memories of a 2 x 2 array's operands, one per block RAM of the 32-bit memory's banks
    widths = [line for line in (tmp_path / "memmap.txt").read_text().splitlines() if line.startswith("mem")]
    for k in range(len(widths)):
        assert f"module ttedge_mem{k} (" in verilog
    images = sorted(p.name for p in tmp_path.glob("mem*.hex"))
    assert "mem0.hex" in images and "mem2_0_0_0.hex" in images
    for name in images:  # mem<k>.hex into the array mem, mem<k>_<b>_<p>_<s>.hex into p<b>_<p>_<s>
        array = "mem" if "_" not in name else "p" + name[:-4].split("_", 1)[1]
        assert f'$readmemh("{name}", {array});' in verilog
    cycles = json.loads((tmp_path / "cycles.json").read_text())
    assert cycles["step_cycles"] == sum(i["cycles"] for i in cycles["instructions"]) + 3
    program_lines = (tmp_path / "program.hex").read_text().splitlines()
    assert len(program_lines) == len(cycles["instructions"]) + 1  # + END


def test_simulate_reports_bit_exact_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", "simulate", *TINY, "--samples", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bit_exact"] is True and report["mismatches"] == []
    assert report["steps"] == 1 and report["step_cycles"][0] > 0


def test_a_config_without_fixed_point_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", "generate", "--config", "configs/digits_tt.toml", "--out", "unused"]) == 2
    assert "use a config with [fixed] enabled = true" in capsys.readouterr().err


def test_synth_names_a_missing_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TTEDGE_YOSYS", str(tmp_path / "no-yosys"))
    assert main(["hw", "synth", *TINY, "--target", "ecp5", "--out", str(tmp_path / "synth")]) == 2
    err = capsys.readouterr().err
    assert "no-yosys" in err and err.count("\n") == 1  # one sentence, no traceback
    assert (tmp_path / "synth" / "accelerator.v").exists()  # the design was generated before the tool was looked for


def test_synth_refuses_a_speed_grade_ecp5_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["hw", "synth", *TINY, "--target", "ecp5", "--speed", "9", "--out", str(tmp_path / "synth")])
    assert exit_.value.code == 2 and "--speed: invalid choice: 9 (choose from 6, 7, 8)" in capsys.readouterr().err
    assert not (tmp_path / "synth").exists()
