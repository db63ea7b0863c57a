"""Parsing of outputs captured from the real tools on ExpNeg(16) (see make_fixtures.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ttedge.synth.devices import ZU3EG, ecp5_device
from ttedge.synth.parse import (
    ClockTiming,
    count_cells,
    ecp5_resources,
    first_error,
    fmax_from_log,
    fmax_from_report,
    xcup_resources,
)


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_ecp5_cells_of_the_captured_netlist(data_dir: Path) -> None:
    cells = count_cells(_load(data_dir / "expneg_ecp5_cells.json"))
    assert cells == {"LUT4": 495, "CCU2C": 155, "TRELLIS_FF": 147, "PFUMX": 110, "L6MUX21": 25, "MULT18X18D": 6, "DP16KD": 2}


def test_ecp5_lut4_count_agrees_with_nextpnr(data_dir: Path) -> None:
    uses, extra = ecp5_resources(count_cells(_load(data_dir / "expneg_ecp5_cells.json")), ecp5_device("85k"))
    by_name = {u.name: u for u in uses}
    log = (data_dir / "expneg_nextpnr.log").read_text()
    total, capacity = map(int, re.search(r"Total LUT4s:\s*(\d+)/\s*(\d+)", log).groups())
    dffs = int(re.search(r"Total DFFs:\s*(\d+)/", log).group(1))
    assert (by_name["lut4"].used, by_name["lut4"].available) == (total, capacity) == (805, 83640)
    assert by_name["ff"].used == dffs == 147
    assert (by_name["mult18x18d"].used, by_name["dp16kd"].used) == (6, 2)
    assert extra == {"lut4_logic": 495, "ccu2c": 155, "lutram": 0, "alu54b": 0}


def test_ecp5_capacities_match_nextpnr_report(data_dir: Path) -> None:
    util = _load(data_dir / "expneg_nextpnr_report.json")["utilization"]
    cap = ecp5_device("LFE5U-85F").capacity
    assert cap == {"lut4": util["TRELLIS_COMB"]["available"], "ff": util["TRELLIS_FF"]["available"],
                   "mult18x18d": util["MULT18X18D"]["available"], "dp16kd": util["DP16KD"]["available"]}


def test_xcup_cells_of_the_captured_netlist(data_dir: Path) -> None:
    cells = count_cells(_load(data_dir / "expneg_xcup_cells.json"))
    uses, extra = xcup_resources(cells, ZU3EG)
    luts = sum(cells.get(k, 0) for k in ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"))
    assert {u.name: u.used for u in uses} == {"lut": luts, "ff": cells["FDRE"] + cells.get("FDSE", 0), "dsp48e2": 8, "bram36": 0}
    assert extra["carry4"] == cells["CARRY4"] > 0
    assert "IBUF" not in cells  # -noiopad: no pads inside the programmable logic


def test_hierarchy_is_expanded_and_blackboxes_count_as_primitives() -> None:
    netlist = {"modules": {
        "top": {"attributes": {"top": "00000000000000000000000000000001"},
                "cells": {"a": {"type": "lane"}, "b": {"type": "lane"}, "c": {"type": "LUT4"}}},
        "lane": {"attributes": {}, "cells": {"m": {"type": "$paramod$abc\\MULT18X18D"}, "f": {"type": "TRELLIS_FF"}}},
        "$paramod$abc\\MULT18X18D": {"attributes": {"blackbox": "1", "hdlname": "MULT18X18D"}, "cells": {}},
    }}
    assert count_cells(netlist) == {"MULT18X18D": 2, "TRELLIS_FF": 2, "LUT4": 1}
    assert count_cells(netlist, "lane") == {"MULT18X18D": 1, "TRELLIS_FF": 1}
    with pytest.raises(ValueError, match="marks 0 top modules"):
        count_cells({"modules": {"x": {"cells": {}}}})


def test_fmax_from_report_and_log_agree(data_dir: Path) -> None:
    [from_report] = fmax_from_report(_load(data_dir / "expneg_nextpnr_report.json"))
    [from_log] = fmax_from_log((data_dir / "expneg_nextpnr.log").read_text())
    assert from_report.clock == from_log.clock
    assert from_report.target_mhz == from_log.target_mhz == 125.0
    assert from_log.fmax_mhz == pytest.approx(from_report.fmax_mhz, abs=0.006)  # the log rounds to 0.01 MHz
    assert not from_report.met


def test_log_parsing_keeps_the_post_route_line() -> None:
    log = (
        "Info: Max frequency for clock 'clk': 52.55 MHz (FAIL at 125.00 MHz)\n"
        "Info: Max frequency for clock 'slow': 300.10 MHz (PASS at 12.00 MHz)\n"
        "Warning: Max frequency for clock 'clk': 49.37 MHz (FAIL at 125.00 MHz)\n"
    )
    assert fmax_from_log(log) == [ClockTiming("clk", 49.37, 125.0), ClockTiming("slow", 300.10, 12.0)]
    assert fmax_from_log("Info: Program finished normally.\n") == []


def test_first_error_of_failing_runs(data_dir: Path) -> None:
    assert first_error((data_dir / "yosys_syntax_error.log").read_text()) == "broken.v:2: syntax error, unexpected ';'"
    assert first_error((data_dir / "nextpnr_bad_package.log").read_text()) == "Unsupported package 'CABGA999' for 'LFE5U-85F'."
    assert first_error("Info: fine\n") == ""


def test_distributed_ram_counts_as_nextpnr_counts_it(data_dir: Path) -> None:
    # cells and nextpnr's pre-packing summary of a small generated accelerator, captured once from
    # synthesize() on hw.top.Accelerator for tests/hw/test_sim.py random_case(0) (not in make_fixtures.py)
    cells = {"LUT4": 11721, "TRELLIS_FF": 6883, "CCU2C": 2474, "TRELLIS_DPR16X4": 52, "MULT18X18D": 8, "DP16KD": 4}
    log = (data_dir / "accelerator_nextpnr_prepack.log").read_text()
    summary = {name: int(n) for name, n in re.findall(r"(Total LUT4s|RAM LUTs|RAMW LUTs|Total DFFs):\s*(\d+)/", log)}
    uses, extra = ecp5_resources(cells, ecp5_device("85k"))
    assert {u.name: u.used for u in uses}["lut4"] == summary["Total LUT4s"] == 16981
    assert summary["RAM LUTs"] + summary["RAMW LUTs"] == 6 * extra["lutram"]
    assert {u.name: u.used for u in uses}["ff"] == summary["Total DFFs"]
