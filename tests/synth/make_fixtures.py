"""Regenerate the captured tool outputs in tests/synth/data/ from the real tools (about two minutes).

    .venv/bin/python tests/synth/make_fixtures.py

It synthesizes ``ttedge.hw.softmax.ExpNeg(16)`` (LUTs, carries, flip-flops, 6 multipliers and 2
block RAMs on ECP5) for both targets, then keeps only what the parsing tests read: the cell types of
each netlist (connections dropped), nextpnr's report without its critical paths, the summary lines
of nextpnr's log, and the logs of two deliberate failures (a Verilog syntax error, an unknown
package). The expected figures in test_synth_parse.py come from these same runs. For the UP5K it
keeps the same trimmed outputs of ``RandomLane()`` behind the serial pin wrapper
(``randomlane_up5k_*``), which test_synth_ice40.py replays.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog

from ttedge.hw.softmax import ExpNeg
from ttedge.synth import synthesize
from ttedge.synth.pins import serial_wrapper
from ttedge.synth.tools import find_tool, run_tool

DATA = Path(__file__).parent / "data"
_KEEP_LOG = re.compile(
    r"^(Info|Warning|ERROR):\s+(Total LUT4s|logic LUTs|carry LUTs|Total DFFs|Max frequency"
    r"|(TRELLIS_COMB|TRELLIS_FF|TRELLIS_IO|MULT18X18D|DP16KD):)"
)

_KEEP_LOG_ICE40 = re.compile(r"^(Info|Warning|ERROR):\s+(Max frequency|(ICESTORM_LC|ICESTORM_RAM|ICESTORM_DSP|ICESTORM_SPRAM|SB_IO):)")


def trim_netlist(netlist: dict, top: str) -> dict:
    """The top module's cells (type only) and the attributes of the stub modules they refer to."""
    modules = netlist["modules"]
    cells = modules[top]["cells"]
    kinds = {c["type"] for c in cells.values()}
    out = {top: {"attributes": {"top": modules[top]["attributes"]["top"]},
                 "cells": {f"c{i}": {"type": c["type"]} for i, c in enumerate(cells.values())}}}
    for kind in sorted(kinds & set(modules)):
        attrs = modules[kind].get("attributes", {})
        out[kind] = {"attributes": {k: attrs[k] for k in ("blackbox", "hdlname") if k in attrs}, "cells": {}}
    return {"creator": netlist.get("creator", ""), "modules": out}


def main() -> None:
    DATA.mkdir(exist_ok=True)
    text = verilog.convert(ExpNeg(16), name="expneg")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for target in ("ecp5", "xcup"):
            result = synthesize(text, "expneg", target, work / target, on_log=None)
            print(target, json.dumps(result.to_flat(), indent=1), file=sys.stderr)
            netlist = json.loads((work / target / "netlist.json").read_text())
            (DATA / f"expneg_{target}_cells.json").write_text(json.dumps(trim_netlist(netlist, "expneg"), separators=(",", ":")))
        report = json.loads((work / "ecp5" / "report.json").read_text())
        (DATA / "expneg_nextpnr_report.json").write_text(
            json.dumps({"fmax": report["fmax"], "utilization": report["utilization"]}, indent=1))
        lines = (work / "ecp5" / "nextpnr.log").read_text().splitlines()
        (DATA / "expneg_nextpnr.log").write_text("\n".join(ln for ln in lines if _KEEP_LOG.search(ln)) + "\n")

        (work / "broken.v").write_text("module broken(input a, output b);\n  assign b = a &;\nendmodule\n")
        run = run_tool([find_tool("yosys"), "-p", "read_verilog -sv broken.v; synth_ecp5 -top broken"],
                       work / "yosys_fail.log", cwd=work)
        (DATA / "yosys_syntax_error.log").write_text("\n".join(run.log_text().splitlines()[-6:]) + "\n")
        run = run_tool([find_tool("nextpnr-ecp5"), "--85k", "--package", "CABGA999", "--json", str(work / "ecp5" / "netlist.json")],
                       work / "pnr_fail.log", cwd=work)
        (DATA / "nextpnr_bad_package.log").write_text("\n".join(run.log_text().splitlines()[-4:]) + "\n")



def up5k(work: Path) -> None:
    """The UP5K fixtures: RandomLane behind the serial wrapper, synthesized and placed on the sg48."""
    from ttedge.hw.rng import RandomLane

    text = serial_wrapper(verilog.convert(RandomLane(), name="random_lane"), "random_lane")
    result = synthesize(text, "ttedge_serial_top", "up5k", work / "up5k", clock_mhz=48.0)
    print("up5k", json.dumps(result.to_flat(), indent=1), file=sys.stderr)
    netlist = json.loads((work / "up5k" / "netlist.json").read_text())
    (DATA / "randomlane_up5k_cells.json").write_text(json.dumps(trim_netlist(netlist, "ttedge_serial_top"), separators=(",", ":")))
    report = json.loads((work / "up5k" / "report.json").read_text())
    (DATA / "randomlane_up5k_report.json").write_text(json.dumps({"fmax": report["fmax"], "utilization": report["utilization"]}, indent=1))
    lines = (work / "up5k" / "nextpnr.log").read_text().splitlines()
    (DATA / "randomlane_up5k_nextpnr.log").write_text("\n".join(ln for ln in lines if _KEEP_LOG_ICE40.search(ln)) + "\n")


if __name__ == "__main__":
    main()
    with tempfile.TemporaryDirectory() as tmp:
        up5k(Path(tmp))
