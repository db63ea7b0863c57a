"""Opt-in: real synthesis and ECP5 place and route of one unit, checked against committed baselines.

Runs only with ``TTEDGE_SYNTH_TESTS=1`` (about two minutes; the first yowasp run also compiles its
WebAssembly, about half a minute). ``ExpNeg(16)`` is small but exercises every counted resource on
ECP5: LUT4s, carry chains, flip-flops, 18x18 multipliers and a block-RAM ROM.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ttedge.synth import check_against_baseline, synthesize

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("TTEDGE_SYNTH_TESTS") != "1", reason="synthesis tests are opt-in: set TTEDGE_SYNTH_TESTS=1"),
]

BASELINES = Path(__file__).parent / "baselines"


@pytest.fixture(scope="module")
def expneg_verilog() -> str:
    from amaranth.back import verilog

    from ttedge.hw.softmax import ExpNeg

    return verilog.convert(ExpNeg(16), name="expneg")


def test_expneg_on_ecp5_matches_its_baseline(expneg_verilog: str, tmp_path: Path) -> None:
    result = synthesize(expneg_verilog, "expneg", "ecp5", tmp_path, clock_mhz=125.0).raise_for_status()
    flat = result.to_flat()
    check_against_baseline(flat, BASELINES / "expneg_ecp5.json")
    # our LUT4 count is nextpnr's own "Total LUT4s"
    log = (tmp_path / "nextpnr.log").read_text()
    assert flat["ecp5.lut4"] == int(re.search(r"Total LUT4s:\s*(\d+)/", log).group(1))


def test_expneg_on_zu3eg_matches_its_baseline(expneg_verilog: str, tmp_path: Path) -> None:
    result = synthesize(expneg_verilog, "expneg", "xcup", tmp_path).raise_for_status()
    check_against_baseline(result.to_flat(), BASELINES / "expneg_xcup.json")
    assert result.fmax_mhz is None
    assert "End of script." in (tmp_path / "yosys.log").read_text()  # Yosys's own log is complete
