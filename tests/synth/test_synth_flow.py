"""The synthesis flow's bookkeeping, with stand-in tools replaying captured outputs (conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttedge.errors import ConfigError
from ttedge.synth import SynthesisError, synthesize

DESIGN = "module expneg(input clk);\nendmodule\n"


def test_ecp5_success_gives_counts_fmax_and_flat_figures(fake_tools: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    r = synthesize(DESIGN, "expneg", "ecp5", tmp_path / "out", clock_mhz=125, on_log=lines.append)
    assert r.ok and r.fits and r.raise_for_status() is r
    assert r.fmax_mhz == pytest.approx(49.368, abs=0.001)
    flat = r.to_flat()
    assert {k: flat[k] for k in ("ecp5.device", "ecp5.status", "ecp5.lut4", "ecp5.ff", "ecp5.mult18x18d", "ecp5.dp16kd")} == {
        "ecp5.device": "LFE5U-85F", "ecp5.status": "ok", "ecp5.lut4": 805, "ecp5.ff": 147, "ecp5.mult18x18d": 6, "ecp5.dp16kd": 2}
    assert flat["ecp5.fmax_mhz"] == 49.37 and flat["ecp5.timing_met"] is False and flat["ecp5.fits"] is True
    assert flat["ecp5.lut4_avail"] == 83640 and flat["ecp5.lut4_util"] == round(805 / 83640, 4)
    assert flat["ecp5.comb_packed"] == 851 and flat["ecp5.target_mhz"] == 125.0
    assert all(isinstance(v, (int, float, str)) for v in flat.values())
    assert "Yosys 0.70 (stand-in)" in lines and any("Max frequency" in ln for ln in lines)
    assert (tmp_path / "out" / "design.v").read_text() == DESIGN
    assert (tmp_path / "out" / "yosys.log").read_text().endswith("End of script.\n")
    assert (tmp_path / "out" / "nextpnr.log").is_file()


def test_ecp5_falls_back_to_the_log_without_a_report(fake_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert synthesize(DESIGN, "expneg", "ecp5", tmp_path).fmax_mhz == pytest.approx(49.368, abs=0.001)
    monkeypatch.setenv("FAKE_NEXTPNR", "no_report")
    r = synthesize(DESIGN, "expneg", "ecp5", tmp_path)  # same folder: the first run's report must not be read
    assert r.ok and r.fmax_mhz == 49.37


def test_verilog_may_be_a_path(fake_tools: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.v"
    source.write_text(DESIGN)
    assert synthesize(source, "expneg", "ecp5", tmp_path / "a").ok
    assert synthesize(str(source), "expneg", "ecp5", tmp_path / "b").ok
    for missing in (tmp_path / "none.v", str(tmp_path / "none.v")):
        with pytest.raises(ConfigError, match="does not exist; pass its path or the Verilog text"):
            synthesize(missing, "expneg", "ecp5", tmp_path / "c")


def test_synthesis_failure_is_a_partial_result(fake_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_YOSYS", "fail")
    r = synthesize(DESIGN, "expneg", "ecp5", tmp_path)
    assert r.status == "synthesis_failed" and r.resources == () and r.fits is None and r.fmax_mhz is None
    assert r.message == f"Yosys (synth_ecp5) failed: design.v:2: syntax error, unexpected ';' (log: {tmp_path / 'yosys.log'})"
    assert not (tmp_path / "nextpnr.ran").exists()
    flat = r.to_flat()
    assert flat["ecp5.status"] == "synthesis_failed" and "ecp5.lut4" not in flat and "ecp5.fmax_mhz" not in flat
    with pytest.raises(SynthesisError) as info:
        r.raise_for_status()
    assert info.value.result is r and str(info.value) == r.message


def test_design_too_big_is_reported_without_place_and_route(fake_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            big_netlist: Path) -> None:
    monkeypatch.setenv("FAKE_NETLIST_ECP5", str(big_netlist))
    r = synthesize("module top(); endmodule\n", "top", "ecp5", tmp_path)
    assert r.status == "does_not_fit" and r.fits is False and r.fmax_mhz is None
    assert r.message == (
        "The design needs 200 mult18x18d but the LFE5U-85F has 156 (128%, 44 too many); "
        "shrink the configuration or pick a larger part."
    )
    assert not (tmp_path / "nextpnr.ran").exists()
    flat = r.to_flat()
    assert flat["ecp5.mult18x18d"] == 200 and flat["ecp5.mult18x18d_util"] == round(200 / 156, 4) and flat["ecp5.fits"] is False


def test_place_and_route_failure_keeps_the_synthesis_counts(fake_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NEXTPNR", "fail")
    r = synthesize(DESIGN, "expneg", "ecp5", tmp_path, device="25k")
    assert r.status == "pnr_failed" and r.device == "LFE5U-25F" and r.fmax_mhz is None
    assert r.message.startswith("nextpnr-ecp5 on the LFE5U-25F failed: Unable to place cell 'mul', no BELs remaining")
    assert r.message.endswith(f"(log: {tmp_path / 'nextpnr.log'})")
    flat = r.to_flat()
    assert flat["ecp5.lut4"] == 805 and flat["ecp5.lut4_avail"] == 24288 and "ecp5.fmax_mhz" not in flat


def test_xcup_gives_counts_and_says_timing_needs_vivado(fake_tools: Path, tmp_path: Path) -> None:
    r = synthesize(DESIGN, "expneg", "xcup", tmp_path)
    assert r.ok and r.fits and r.device == "XCZU3EG" and r.fmax_mhz is None and r.clocks == ()
    flat = r.to_flat()
    assert flat["xcup.dsp48e2"] == 8 and flat["xcup.dsp48e2_avail"] == 360 and flat["xcup.bram36_avail"] == 216
    assert flat["xcup.lut_avail"] == 70560 and flat["xcup.ff_avail"] == 141120
    assert "xcup.fmax_mhz" not in flat and "timing needs Vivado" in flat["xcup.notes"]
    assert not (tmp_path / "nextpnr.ran").exists()
    assert "synth_xilinx -family xcup" in (tmp_path / "synth.ys").read_text()


def test_bad_arguments_are_refused(fake_tools: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown synthesis target 'ice40'"):
        synthesize(DESIGN, "expneg", "ice40", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown ECP5 device '12k'"):
        synthesize(DESIGN, "expneg", "ecp5", tmp_path, device="12k")
    with pytest.raises(ConfigError, match="knows only the ZU3EG"):
        synthesize(DESIGN, "expneg", "xcup", tmp_path, device="zu9eg")
    with pytest.raises(ConfigError, match="not a plain Verilog identifier"):
        synthesize(DESIGN, "expneg; shell", "ecp5", tmp_path)
    with pytest.raises(ConfigError, match="ECP5 speed grade 9 does not exist; use 6, 7, 8"):
        synthesize(DESIGN, "expneg", "ecp5", tmp_path, speed=9)


def test_nextpnr_gets_the_device_options_and_extra_arguments(fake_tools: Path, tmp_path: Path) -> None:
    r = synthesize(DESIGN, "expneg", "ecp5", tmp_path, device="45k", package="CABGA256", speed=8, seed=7, clock_mhz=100,
                   nextpnr_args=["--router", "router2"])
    argv = (tmp_path / "nextpnr.ran").read_text().split("\n")
    assert argv[:2] == ["--45k", "--package"] and argv[-2:] == ["--router", "router2"]
    for flag, value in (("--package", "CABGA256"), ("--speed", "8"), ("--seed", "7"), ("--freq", "100")):
        assert argv[argv.index(flag) + 1] == value
    assert "--timing-allow-fail" in argv
    assert "package CABGA256, speed grade 8, placer seed 7; nextpnr options --router router2" in r.to_flat()["ecp5.notes"]


def test_summary_lines(fake_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok = synthesize(DESIGN, "expneg", "ecp5", tmp_path / "a")
    assert ok.summary() == ("LFE5U-85F: 805 lut4 (1.0%), 147 ff (0.2%), 6 mult18x18d (3.8%), 2 dp16kd (1.0%), "
                            "Fmax 49.4 MHz (target 125 MHz)")
    assert synthesize(DESIGN, "expneg", "xcup", tmp_path / "b").summary().endswith(", no Fmax (timing needs Vivado)")
    monkeypatch.setenv("FAKE_YOSYS", "fail")
    failed = synthesize(DESIGN, "expneg", "ecp5", tmp_path / "c")
    assert failed.summary() == f"LFE5U-85F: {failed.message}"
