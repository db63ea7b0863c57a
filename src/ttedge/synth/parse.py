"""Reading what the tools wrote: cell counts from a Yosys JSON netlist, Fmax and utilisation from nextpnr.

Counts come from the synthesized netlist itself (``write_json`` / ``synth_* -json``), whose format is
stable across Yosys versions, rather than from the human-readable ``stat`` table, whose layout
changes. Fmax comes from nextpnr's ``--report`` JSON (the post-route figure); the log is the
fallback, where the *last* "Max frequency for clock" line per clock is the post-route one (an
earlier line is the post-placement estimate).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .devices import Device, ResourceUse

__all__ = [
    "ClockTiming",
    "count_cells",
    "ecp5_resources",
    "first_error",
    "fmax_from_log",
    "fmax_from_report",
    "ice40_resources",
    "xcup_resources",
]


def _flag(module: Mapping[str, Any], attribute: str) -> bool:
    """Whether a module attribute such as ``top`` or ``blackbox`` is set to 1."""
    value = module.get("attributes", {}).get(attribute)
    if value is None:
        return False
    try:  # Yosys writes integer attributes as binary strings ("000...001")
        return (int(value, 2) if isinstance(value, str) else int(value)) == 1
    except ValueError:
        return False


def _primitive(kind: str, module: Mapping[str, Any] | None) -> str:
    """The library name of a primitive cell type (``$paramod$...\\DP16KD`` -> ``DP16KD``)."""
    if module is not None and "hdlname" in module.get("attributes", {}):
        return str(module["attributes"]["hdlname"])
    return kind


def count_cells(netlist: Mapping[str, Any], top: str | None = None) -> Counter[str]:
    """Primitive cells of the design by type, submodule instances expanded (flat or hierarchical netlists).

    ``top`` defaults to the module Yosys marked as top. Cells whose type is another (non-blackbox)
    module of the netlist are replaced by that module's own counts, once per instance; the
    blackbox stubs of library cells that Yosys writes into the netlist count as primitives.
    """
    modules: Mapping[str, Any] = netlist.get("modules", {})
    if top is None:
        tops = [name for name, mod in modules.items() if _flag(mod, "top")]
        if len(tops) != 1:
            raise ValueError(f"the netlist marks {len(tops)} top modules; pass top= explicitly")
        top = tops[0]
    if top not in modules:
        raise ValueError(f"the netlist has no module {top}")
    memo: dict[str, Counter[str]] = {}

    def expand(name: str, stack: tuple[str, ...]) -> Counter[str]:
        if name in memo:
            return memo[name]
        if name in stack:
            raise ValueError(f"the netlist's module {name} instantiates itself")
        total: Counter[str] = Counter()
        for cell in modules[name].get("cells", {}).values():
            kind = cell["type"]
            module = modules.get(kind)
            if module is None or _flag(module, "blackbox"):  # a library primitive (netlists carry their stubs)
                total[_primitive(kind, module)] += 1
            else:
                total.update(expand(kind, stack + (name,)))
        memo[name] = total
        return total

    return expand(top, ())


# --- ECP5 -------------------------------------------------------------------------------------

# A CCU2C (two bits of carry chain) occupies two LUT4 positions. A TRELLIS_DPR16X4 (16x4
# distributed RAM) takes three slices, i.e. six LUT4 positions (ECP5 data sheet FPGA-DS-02012,
# "Number of Slices Required to Implement Distributed RAM": PDPR 16x4 = 3 slices).
_ECP5_LUT4_WEIGHT = {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 6}
_ECP5_FF = ("TRELLIS_FF",)


def ecp5_resources(cells: Mapping[str, int], device: Device) -> tuple[tuple[ResourceUse, ...], dict[str, int]]:
    """(capacity-checked uses, other counts) of an ECP5 netlist on ``device``.

    ``lut4`` counts LUT4 positions as nextpnr's "Total LUT4s" does (logic + carry + RAM LUTs).
    """
    lut4 = sum(cells.get(k, 0) * w for k, w in _ECP5_LUT4_WEIGHT.items())
    used = {
        "lut4": lut4,
        "ff": sum(cells.get(k, 0) for k in _ECP5_FF),
        "mult18x18d": cells.get("MULT18X18D", 0),
        "dp16kd": cells.get("DP16KD", 0),
    }
    uses = tuple(ResourceUse(k, used[k], device.capacity[k]) for k in device.capacity)
    extra = {
        "lut4_logic": cells.get("LUT4", 0),
        "ccu2c": cells.get("CCU2C", 0),
        "lutram": cells.get("TRELLIS_DPR16X4", 0),
        "alu54b": cells.get("ALU54B", 0),
    }
    return uses, extra


# --- Xilinx UltraScale+ -----------------------------------------------------------------------

_XC_LUTS = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV")  # Vivado implements INV as a LUT1
_XC_FFS = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")
# LUTs of a SLICEM used as memory or shift register, per primitive (UG574, "Distributed RAM"
# and "Shift Registers": e.g. RAM32M = 4 LUTs, RAM64X1D = 2 LUTs, SRLC32E = 1 LUT).
_XC_LUTRAM = {
    "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8,
    "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}


def xcup_resources(cells: Mapping[str, int], device: Device) -> tuple[tuple[ResourceUse, ...], dict[str, int]]:
    """(capacity-checked uses, other counts) of an UltraScale+ netlist on ``device``.

    ``lut`` includes LUTs used as distributed RAM or shift registers, as Vivado's "CLB LUTs" does;
    ``bram36`` counts a RAMB18E2 as half a RAMB36E2.
    """
    logic = sum(cells.get(k, 0) for k in _XC_LUTS)
    lutram = sum(cells.get(k, 0) * w for k, w in _XC_LUTRAM.items())
    ramb36, ramb18 = cells.get("RAMB36E2", 0), cells.get("RAMB18E2", 0)
    used = {
        "lut": logic + lutram,
        "ff": sum(cells.get(k, 0) for k in _XC_FFS),
        "dsp48e2": cells.get("DSP48E2", 0),
        "bram36": ramb36 + ramb18 / 2,
    }
    uses = tuple(ResourceUse(k, used[k], device.capacity[k]) for k in device.capacity)
    extra = {"lut_logic": logic, "lutram": lutram, "ramb36": ramb36, "ramb18": ramb18, "carry4": cells.get("CARRY4", 0)}
    return uses, extra


# --- iCE40 -------------------------------------------------------------------------------------


def ice40_resources(cells: Mapping[str, int], device: Device) -> tuple[tuple[ResourceUse, ...], dict[str, int]]:
    """(capacity-checked uses, other counts) of an iCE40 netlist on ``device``.

    ``lut4`` counts SB_LUT4 cells and ``ff`` every SB_DFF* variant; a carry (SB_CARRY) shares its
    logic cell with a LUT, and nextpnr later packs a LUT and the flip-flop it feeds into one cell,
    so the logic cells used (nextpnr's ``ICESTORM_LC``) lie between max(lut4, ff) and lut4 + ff.
    ``ebr`` counts every SB_RAM40_4K variant (NR/NW/NRNW clock polarities).
    """
    used = {
        "lut4": cells.get("SB_LUT4", 0),
        "ff": sum(n for k, n in cells.items() if k.startswith("SB_DFF")),
        "sb_mac16": cells.get("SB_MAC16", 0),
        "spram": cells.get("SB_SPRAM256KA", 0),
        "ebr": sum(n for k, n in cells.items() if k.startswith("SB_RAM40_4K")),
    }
    uses = tuple(ResourceUse(k, used[k], device.capacity[k]) for k in device.capacity)
    return uses, {"carry": cells.get("SB_CARRY", 0)}


# --- nextpnr timing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockTiming:
    """One clock domain's post-route timing."""

    clock: str  # nextpnr's net name of the clock
    fmax_mhz: float  # achieved maximum frequency, MHz
    target_mhz: float | None  # the requested frequency (--freq), MHz

    @property
    def met(self) -> bool:
        return self.target_mhz is None or self.fmax_mhz >= self.target_mhz


def fmax_from_report(report: Mapping[str, Any]) -> list[ClockTiming]:
    """Clock timings from a nextpnr ``--report`` JSON (``{"fmax": {clock: {"achieved", "constraint"}}}``)."""
    out = []
    for clock, entry in report.get("fmax", {}).items():
        achieved = entry.get("achieved")
        if achieved is None:
            continue
        constraint = entry.get("constraint")
        out.append(ClockTiming(clock, float(achieved), None if constraint is None else float(constraint)))
    return out


_FMAX_LINE = re.compile(
    r"Max frequency for clock\s+'(?P<clock>[^']+)':\s*(?P<fmax>[0-9.]+)\s*MHz"
    r"(?:\s*\((?:PASS|FAIL)\s+at\s+(?P<target>[0-9.]+)\s*MHz\))?"
)


def fmax_from_log(text: str) -> list[ClockTiming]:
    """Clock timings from a nextpnr log: the last "Max frequency for clock" line of each clock.

    nextpnr prints these lines after placement and again after routing (as ``Info:`` when the
    target is met, ``Warning:`` when it is not); the last one is the post-route figure.
    """
    last: dict[str, ClockTiming] = {}
    for m in _FMAX_LINE.finditer(text):
        target = m.group("target")
        last[m.group("clock")] = ClockTiming(m.group("clock"), float(m.group("fmax")), None if target is None else float(target))
    return list(last.values())


def first_error(log_text: str, limit: int = 300) -> str:
    """The first error a Yosys or nextpnr log reports, without its ``ERROR:`` tag, or "".

    Yosys puts the source location before the tag (``design.v:2: ERROR: syntax error``); it is kept.
    """
    for line in log_text.splitlines():
        if "ERROR:" in line:
            message = " ".join(line.replace("ERROR:", "", 1).split())
            return message if len(message) <= limit else message[: limit - 3] + "..."
    return ""
