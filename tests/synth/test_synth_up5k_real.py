"""Opt-in: the real UP5K flow (Yosys synth_ice40, nextpnr-ice40) and the netlist-vs-RTL check.

Runs only with ``TTEDGE_SYNTH_TESTS=1``. ``RandomLane()`` behind the serial pin wrapper (its 162
port bits do not fit the sg48's 39 pins) is placed and routed in about 20 s. The DSP tests map
multipliers reading slices of the same registers onto SB_MAC16 (the case TOOLCHAIN.md reports Yosys
miscompiling) and compare the netlist with the RTL on a seeded random run (seconds; the bounded
proof of the same designs takes minutes). With Yosys 0.70, two products kept in their own registers
map correctly, but two products summed into one accumulator do not: one product gets an extra
input register (C/D_REG) and is added a cycle late.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ttedge.synth import check_against_baseline, check_netlist, serial_wrapper, synthesize
from ttedge.synth.tools import find_tool

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("TTEDGE_SYNTH_TESTS") != "1", reason="synthesis tests are opt-in: set TTEDGE_SYNTH_TESTS=1"),
]

BASELINES = Path(__file__).parent / "baselines"

# 8 + 8 inputs and 16 outputs: fits the sg48's 39 pins, so the netlist is placed as it is
SLICED_MULTIPLIERS = """module mul2(input clk, input [7:0] a, input [7:0] b, output [15:0] y);
  reg [15:0] ra, rb, p0, p1;
  always @(posedge clk) begin
    ra <= {ra[7:0], a};
    rb <= {rb[7:0], b};
    p0 <= ra[7:0] * rb[7:0];
    p1 <= ra[15:8] * rb[15:8];
  end
  assign y = p0 ^ p1;
endmodule
"""


def test_random_lane_on_the_up5k_matches_its_baseline(tmp_path: Path) -> None:
    from amaranth.back import verilog

    from ttedge.hw.rng import RandomLane

    text = serial_wrapper(verilog.convert(RandomLane(), name="random_lane"), "random_lane")
    result = synthesize(text, "ttedge_serial_top", "up5k", tmp_path, clock_mhz=48.0).raise_for_status()
    flat = result.to_flat()
    check_against_baseline(flat, BASELINES / "randomlane_up5k.json")
    log = (tmp_path / "nextpnr.log").read_text()
    assert flat["up5k.lc"] == int(re.search(r"ICESTORM_LC:\s*(\d+)/", log).group(1))  # nextpnr's own count


ACCUMULATED_SLICES = """module acc2(input clk, input [15:0] a, input [15:0] b, output [31:0] y);
  reg [15:0] ra, rb;
  reg [31:0] acc;
  always @(posedge clk) begin
    ra <= a;
    rb <= b;
    acc <= acc + ra[7:0] * rb[7:0] + ra[15:8] * rb[15:8];
  end
  assign y = acc;
endmodule
"""


def test_dsp_mapping_of_sliced_multipliers_is_checked_against_the_rtl(tmp_path: Path) -> None:
    result = synthesize(SLICED_MULTIPLIERS, "mul2", "up5k", tmp_path, clock_mhz=48.0, dsp=True, check_depth=8, check_seed=1)
    assert result.to_flat()["up5k.sb_mac16"] == 2
    assert result.netlist_check == "pass" and result.ok and result.fmax_mhz is not None


def test_dsp_mapping_of_accumulated_slices_is_caught_as_wrong(tmp_path: Path) -> None:
    result = synthesize(ACCUMULATED_SLICES, "acc2", "up5k", tmp_path / "dsp", dsp=True, check_depth=8, check_seed=1)
    assert result.to_flat()["up5k.sb_mac16"] == 2
    assert result.status == "netlist_mismatch" and result.netlist_check == "fail"  # Yosys 0.70 miscompiles it
    plain = synthesize(ACCUMULATED_SLICES, "acc2", "up5k", tmp_path / "logic")  # the default: no DSP mapping
    assert plain.to_flat()["up5k.sb_mac16"] == 0
    assert check_netlist(tmp_path / "logic", "acc2", find_tool("yosys"), depth=8, stimulus_seed=1).passed


def _pair(tmp_path: Path, netlist: str) -> Path:
    rtl = "module m(input clk, input [3:0] a, input [3:0] b, output reg [7:0] p);\n  always @(posedge clk) p <= a[1:0] * b[3:2];\nendmodule\n"
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "design.v").write_text(rtl)
    (tmp_path / "netlist.v").write_text(netlist)
    return tmp_path


def test_the_check_finds_a_wrong_netlist_and_accepts_an_equal_one(tmp_path: Path) -> None:
    yosys = find_tool("yosys")
    wrong = "module m(input clk, input [3:0] a, input [3:0] b, output reg [7:0] p);\n  always @(posedge clk) p <= a[1:0] * b[1:0];\nendmodule\n"
    same = "module m(input clk, input [3:0] a, input [3:0] b, output reg [7:0] p);\n  always @(posedge clk) p <= b[3:2] * a[1:0];\nendmodule\n"
    bad = check_netlist(_pair(tmp_path / "bad", wrong), "m", yosys, depth=3)
    assert bad.verdict == "fail" and "differs from the RTL within 3 cycles" in bad.message
    good = check_netlist(_pair(tmp_path / "good", same), "m", yosys, depth=3)
    assert good.passed, good.message


# In the form Amaranth writes ports, so that the serial wrapper reads them. The 16K x 16 memory reads
# only when not writing (the SPRAM's single port); the 256 x 16 one reads and writes at once.
MEMORIES = """module mems(clk, we, addr, wd, raddr, waddr, q, q2);
  input clk;
  input we;
  input [13:0] addr;
  input [15:0] wd;
  input [7:0] raddr;
  input [7:0] waddr;
  output [15:0] q;
  output [15:0] q2;
  reg [15:0] q;
  reg [15:0] q2;
  reg [15:0] big [0:16383];
  reg [15:0] small [0:255];
  always @(posedge clk) begin
    if (we) big[addr] <= wd;
    else q <= big[addr];
  end
  always @(posedge clk) begin
    if (we) small[waddr] <= wd;
    q2 <= small[raddr];
  end
endmodule
"""


def test_memories_map_to_one_spram_and_one_ebr(tmp_path: Path) -> None:
    result = synthesize(serial_wrapper(MEMORIES, "mems"), "ttedge_serial_top", "up5k", tmp_path, clock_mhz=48.0)
    flat = result.raise_for_status().to_flat()
    assert (flat["up5k.spram"], flat["up5k.ebr"], flat["up5k.sb_mac16"]) == (1, 1, 0)
    assert flat["up5k.fmax_mhz"] > 48.0
