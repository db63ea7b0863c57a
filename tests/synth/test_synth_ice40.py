"""The UP5K flow's bookkeeping with stand-in tools, the cell counting, and the serial pin wrapper."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttedge.errors import ConfigError
from ttedge.synth import DEVICES, UP5K, synthesize
from ttedge.synth.parse import ice40_resources
from ttedge.synth.pins import module_ports, serial_wrapper, wrapper_overhead

DESIGN = "module ttedge_serial_top(input clk);\nendmodule\n"


def test_up5k_capacities_are_nextpnrs_available_figures(data_dir: Path) -> None:
    import json

    util = json.loads((data_dir / "randomlane_up5k_report.json").read_text())["utilization"]
    assert UP5K.capacity["lut4"] == UP5K.capacity["ff"] == util["ICESTORM_LC"]["available"] == 5280
    assert UP5K.capacity["sb_mac16"] == util["ICESTORM_DSP"]["available"] == 8
    assert UP5K.capacity["spram"] == util["ICESTORM_SPRAM"]["available"] == 4
    assert UP5K.capacity["ebr"] == util["ICESTORM_RAM"]["available"] == 30
    assert DEVICES["ice40-up5k"] is UP5K


def test_ice40_cells_are_counted_per_resource() -> None:
    cells = {"SB_LUT4": 10, "SB_CARRY": 4, "SB_DFF": 3, "SB_DFFESR": 2, "SB_MAC16": 1, "SB_SPRAM256KA": 2,
             "SB_RAM40_4K": 1, "SB_RAM40_4KNR": 1}
    uses, extra = ice40_resources(cells, UP5K)
    assert {u.name: u.used for u in uses} == {"lut4": 10, "ff": 5, "sb_mac16": 1, "spram": 2, "ebr": 2}
    assert extra == {"carry": 4}


def test_up5k_success_gives_counts_logic_cells_and_fmax(fake_ice40_tools: Path, tmp_path: Path) -> None:
    r = synthesize(DESIGN, "ttedge_serial_top", "up5k", tmp_path, clock_mhz=48)
    assert r.ok and r.fits and r.netlist_check is None
    flat = r.to_flat()
    assert {k: flat[k] for k in ("up5k.device", "up5k.lut4", "up5k.ff", "up5k.sb_mac16", "up5k.spram", "up5k.ebr",
                                 "up5k.lc", "up5k.io")} == {
        "up5k.device": "iCE40UP5K", "up5k.lut4": 1262, "up5k.ff": 1130, "up5k.sb_mac16": 0, "up5k.spram": 0, "up5k.ebr": 0,
        "up5k.lc": 2106, "up5k.io": 4}
    assert flat["up5k.fmax_mhz"] == 25.45 and flat["up5k.timing_met"] is False and flat["up5k.lc_avail"] == 5280
    argv = (tmp_path / "nextpnr.ran").read_text().split("\n")
    assert argv[:3] == ["--up5k", "--package", "sg48"] and "--timing-allow-fail" in argv
    script = (tmp_path / "synth.ys").read_text()
    assert "synth_ice40 -spram -top ttedge_serial_top" in script and "-dsp" not in script
    assert "no DSP mapping (synth_ice40 without -dsp)" in flat["up5k.notes"]


def test_up5k_refuses_unknown_packages_and_devices(fake_ice40_tools: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nextpnr-ice40 knows the UP5K packages sg48, uwg30, got 'cm81'; pass one of them\.$"):
        synthesize(DESIGN, "ttedge_serial_top", "up5k", tmp_path, package="cm81")
    with pytest.raises(ConfigError, match="the up5k flow knows only the iCE40UP5K"):
        synthesize(DESIGN, "ttedge_serial_top", "up5k", tmp_path, device="hx8k")


def test_a_netlist_with_too_many_dsps_stops_before_place_and_route(fake_ice40_tools: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    cells = {f"m{i}": {"type": "SB_MAC16"} for i in range(9)}
    path = tmp_path / "dsp.json"
    path.write_text(json.dumps({"modules": {"ttedge_serial_top": {"attributes": {"top": "1"}, "cells": cells}}}))
    monkeypatch.setenv("FAKE_NETLIST_ICE40", str(path))
    r = synthesize(DESIGN, "ttedge_serial_top", "up5k", tmp_path / "out")
    assert r.status == "does_not_fit" and not (tmp_path / "out" / "nextpnr.ran").exists()
    assert r.message == ("The design needs 9 sb_mac16 but the iCE40UP5K has 8 (112%, 1 too many); "
                         "shrink the configuration or pick a larger part.")



def test_dsp_mode_checks_the_netlist_and_stops_on_a_mismatch(fake_ice40_tools: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    r = synthesize(DESIGN, "ttedge_serial_top", "up5k", tmp_path / "a", dsp=True, check_depth=5)
    assert r.ok and r.netlist_check == "pass" and r.to_flat()["up5k.netlist_check"] == "pass"
    assert "synth_ice40 -spram -dsp -top" in (tmp_path / "a" / "synth.ys").read_text()
    assert "-seq 5 " in (tmp_path / "a" / "netcheck.ys").read_text()
    assert "netlist check pass: the netlist equals the RTL for every input over 5 cycles" in r.to_flat()["up5k.notes"]
    monkeypatch.setenv("FAKE_NETCHECK", "fail")
    bad = synthesize(DESIGN, "ttedge_serial_top", "up5k", tmp_path / "b", dsp=True)
    assert bad.status == "netlist_mismatch" and bad.netlist_check == "fail" and not (tmp_path / "b" / "nextpnr.ran").exists()
    assert bad.message.startswith("Yosys's DSP mapping changed the circuit: the netlist differs from the RTL within 4 cycles")
    assert bad.message.endswith("; synthesize without dsp=True.")

UNIT = """module unit(a, clk, rst, b, y, ok);
  input [7:0] a;
  input clk;
  input rst;
  input signed [2:0] b;
  output [9:0] y;
  output ok;
  assign y = a + b;
  assign ok = 1'b1;
endmodule
"""


def test_ports_are_read_from_the_verilog() -> None:
    assert module_ports(UNIT, "unit") == [("input", "a", 8), ("input", "clk", 1), ("input", "rst", 1),
                                          ("input", "b", 3), ("output", "y", 10), ("output", "ok", 1)]
    assert wrapper_overhead(UNIT, "unit") == {"ff": 22, "in_bits": 11, "out_bits": 11}
    with pytest.raises(ConfigError, match=r"^the Verilog has no module 'other'; pass the name of its top module\.$"):
        module_ports(UNIT, "other")


def test_the_serial_wrapper_feeds_every_port_bit() -> None:
    text = serial_wrapper(UNIT, "unit")
    assert text.startswith(UNIT)
    wrapper = text[len(UNIT):]
    assert "module ttedge_serial_top(input clk, input rst, input sin, output sout);" in wrapper
    assert "shift_in <= {shift_in[9:0], sin};" in wrapper and "assign sout = ^out_q;" in wrapper
    assert (r"\unit unit (.clk(clk), .rst(rst), .a(shift_in[7:0]), .b(shift_in[10:8]), .y(unit_out[9:0]), "
            ".ok(unit_out[10:10]));") in wrapper
