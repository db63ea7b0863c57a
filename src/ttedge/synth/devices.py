"""The target devices, their capacities, and how a design's resource use compares with them.

Three families:

- Lattice ECP5 (LFE5U-25F/45F/85F): Yosys ``synth_ecp5`` and nextpnr-ecp5 place and route, so the
  Fmax is real. Capacities are those nextpnr-ecp5 0.11 itself reports as "available" in its
  utilisation report (``TRELLIS_COMB``, ``TRELLIS_FF``, ``MULT18X18D``, ``DP16KD``); the 85F has
  83,640 LUT4s and flip-flops, 156 18x18 multipliers and 208 block RAMs of 18 kb.
- Xilinx Zynq UltraScale+ ZU3EG (the Ultra96 / many edge boards' part): Yosys ``synth_xilinx
  -family xcup`` resource counts only. No open place and route exists for it, so there is no Fmax:
  timing there needs Vivado. Yosys uses CARRY4 (not CARRY8) and packs no pipeline registers into
  DSP48E2, so the counts are estimates of what Vivado would report.
- Lattice iCE40 UP5K: Yosys ``synth_ice40`` and nextpnr-ice40 place and route (real Fmax). The
  capacities are nextpnr-ice40 0.11's own "available" figures with ``--up5k`` (``ICESTORM_LC``
  5,280, ``ICESTORM_DSP`` 8, ``ICESTORM_SPRAM`` 4 of 256 kb, ``ICESTORM_RAM`` 30 of 4 kb), which
  match the data sheet's 5,280 LUTs, eight 16x16 MACs, 1,024 kb SPRAM and 120 kb EBR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ..errors import ConfigError

__all__ = ["DEVICES", "UP5K", "UP5K_PACKAGES", "ZU3EG", "Device", "ResourceUse", "TARGETS", "Target", "ecp5_device", "worst_overflow"]

Target = Literal["ecp5", "xcup", "up5k"]
TARGETS: tuple[str, ...] = get_args(Target)  # the synthesis targets, for option lists and checks
ECP5_SPEED_GRADES = (6, 7, 8)  # the grades nextpnr-ecp5 times; 6 is the slowest, 8 the fastest


@dataclass(frozen=True)
class Device:
    """One FPGA part and the capacity of each resource ttedge counts."""

    target: Target  # the flow that handles it
    name: str  # the part as vendors write it
    capacity: dict[str, int]  # resource key -> units available on the part
    nextpnr_flag: str = ""  # ECP5 and iCE40: the nextpnr device option, e.g. "--85k", "--up5k"
    default_package: str = ""  # ECP5 and iCE40: the package nextpnr places for


# ECP5: per slice 2 LUT4s and 2 flip-flops, hence lut4 == ff. Figures are nextpnr-ecp5 0.11's own
# "available" column, measured with --25k/--45k/--85k (package CABGA381); for the 25F they match
# the data sheet's 24k LUTs, 56 sysMEM blocks and 28 multipliers.
_ECP5 = {
    "25k": Device("ecp5", "LFE5U-25F", {"lut4": 24288, "ff": 24288, "mult18x18d": 28, "dp16kd": 56}, "--25k", "CABGA381"),
    "45k": Device("ecp5", "LFE5U-45F", {"lut4": 43848, "ff": 43848, "mult18x18d": 72, "dp16kd": 108}, "--45k", "CABGA381"),
    "85k": Device("ecp5", "LFE5U-85F", {"lut4": 83640, "ff": 83640, "mult18x18d": 156, "dp16kd": 208}, "--85k", "CABGA381"),
}

# ZU3EG, as AMD/Xilinx list it in the Zynq UltraScale+ MPSoC product selection guide (DS891):
# 70,560 CLB LUTs, 141,120 CLB flip-flops, 360 DSP slices, 216 block RAMs of 36 kb (each usable as
# two 18 kb halves: 432 RAMB18). Checked against the Ultra96 (ZU3EG) entry of necst/faber_fpga,
# src/model/boards.py: lut 70560, ff 141120, dsp 360, bram18k 432.
ZU3EG = Device("xcup", "XCZU3EG", {"lut": 70560, "ff": 141120, "dsp48e2": 360, "bram36": 216})

# UP5K: one logic cell = one LUT4 + one flip-flop (+ carry), hence lut4 == ff == 5,280; sb_mac16 are
# the 16x16 multiply-accumulate blocks, spram the 256 kb single-port RAMs (16K x 16), ebr the 4 kb
# block RAMs (SB_RAM40_4K). nextpnr-ice40 0.11 reports 39 I/O pins for sg48, 21 for uwg30.
UP5K = Device("up5k", "iCE40UP5K", {"lut4": 5280, "ff": 5280, "sb_mac16": 8, "spram": 4, "ebr": 30}, "--up5k", "sg48")
UP5K_PACKAGES = ("sg48", "uwg30")  # the UP5K packages nextpnr-ice40 0.11 accepts

DEVICES: dict[str, Device] = {**{f"ecp5-{k}": v for k, v in _ECP5.items()}, "xcup-zu3eg": ZU3EG, "ice40-up5k": UP5K}


def ecp5_device(size: str) -> Device:
    """The ECP5 part for ``size`` ("25k", "45k" or "85k"; "LFE5U-85F" is accepted too)."""
    key = size.lower().removeprefix("lfe5u-").removesuffix("f")
    key = key if key.endswith("k") else key + "k"
    if key not in _ECP5:
        raise ConfigError(f"unknown ECP5 device {size!r}; use one of {sorted(_ECP5)}.")
    return _ECP5[key]


@dataclass(frozen=True)
class ResourceUse:
    """How many units of one resource a design uses out of how many the part has."""

    name: str  # resource key, e.g. "lut4", "dsp48e2"
    used: float  # units used (block RAM in 36 kb equivalents may be fractional)
    available: int  # units on the part

    @property
    def utilization(self) -> float:
        """``used / available`` (1.0 = full)."""
        return self.used / self.available if self.available else float("inf")

    @property
    def excess(self) -> float:
        """Units beyond the capacity (0 when it fits)."""
        return max(0.0, self.used - self.available)

    @property
    def fits(self) -> bool:
        return self.used <= self.available


def worst_overflow(uses: tuple[ResourceUse, ...], device: str) -> str:
    """A sentence naming the most over-used resource, or "" when everything fits."""
    over = [u for u in uses if not u.fits]
    if not over:
        return ""
    worst = max(over, key=lambda u: u.utilization)
    used = f"{worst.used:g}"
    return (
        f"the design needs {used} {worst.name} but the {device} has {worst.available} "
        f"({worst.utilization:.0%}, {worst.excess:g} too many); shrink the configuration or pick a larger part"
    )
