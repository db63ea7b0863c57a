"""A documented per-operation energy model: what a training step costs in picojoules.

No open tool estimates FPGA power, so energy here is *modelled*, never measured:

    E = fpga_factor * (sum of multiply energies + sum of add energies
                       + bits read * E_read/bit + bits written * E_write/bit)
        + static power * time

Every constant below carries its source. The arithmetic and SRAM figures are the 45 nm (0.9 V)
table of M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
pp. 10-14 (Fig. 1.1.9):

    integer add    8 bit 0.03 pJ    32 bit 0.1 pJ
    integer mult   8 bit 0.2 pJ     32 bit 3.1 pJ
    SRAM read      8 KB array, 64-bit word: 10 pJ  (-> 10/64 = 0.156 pJ per bit)

Between and beyond those two widths the energy follows the power law through the two points
(log-log interpolation): an adder's energy grows about linearly with width (exponent 0.87), a
multiplier's with the product of its operand widths (exponent 0.99 on ``a * b``), as the ripple
adder and the array multiplier's area do. A write costs as much as a read (Horowitz lists reads
only; this is an assumption). An ECP5 block RAM holds 18 kb (2.25 KB), less than the 8 KB array
of the figure, so the per-bit memory energy errs high.

These are ASIC (standard-cell) figures. On an FPGA the same logic switches more capacitance:
I. Kuon and J. Rose, "Measuring the gap between FPGAs and ASICs", IEEE TCAD 26(2):203-215, 2007,
measured dynamic power about 14x that of a standard-cell ASIC in the same 90 nm node for
LUT-and-flip-flop logic, and less with hard multipliers and block RAMs. ``fpga_factor = 14`` is
therefore the pessimistic end for a design that uses DSP blocks and block RAM (it overstates the
FPGA's energy). The 45 nm / 40 nm (ECP5) node difference is ignored.

Static power: the ECP5 family data sheet (Lattice FPGA-DS-02012, "Supply Current (Static)", typical
at 0 Hz) gives for the LFE5U-12F/25F I_CC = 77 mA at V_CC = 1.1 V and I_CCAUX = 16 mA at
V_CCAUX = 2.5 V, i.e. 84.7 mW + 40 mW = 124.7 mW (I/O banks, 0.5 mA each, left out). The 85F's
entry was not at hand, so for the LFE5U-85F this model scales the core leakage by the LUT count
(83,640 / 24,288 = 3.44x) and keeps the auxiliary supply: 291.7 mW + 40 mW = 331.7 mW. That is an
estimate, to be replaced by the data sheet's 85F entry or the Lattice Power Calculator's figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["ECP5_25F", "ECP5_85F", "EnergyModel", "OpCounts", "ecp5_energy_model", "latency_s", "step_energy"]

# Horowitz, ISSCC 2014, Fig. 1.1.9 (45 nm, 0.9 V), pJ per operation.
HOROWITZ_ADD_8B_PJ = 0.03
HOROWITZ_ADD_32B_PJ = 0.1
HOROWITZ_MULT_8B_PJ = 0.2
HOROWITZ_MULT_32B_PJ = 3.1
HOROWITZ_SRAM_8KB_READ_64B_PJ = 10.0
# Kuon & Rose, IEEE TCAD 2007: FPGA / standard-cell ASIC dynamic power, logic-only circuits.
KUON_ROSE_FPGA_DYNAMIC_FACTOR = 14.0
# ECP5 data sheet FPGA-DS-02012, static supply current of the LFE5U-12F/25F (typical, 0 Hz).
ECP5_25F_ICC_A, ECP5_VCC_V = 0.077, 1.1
ECP5_25F_ICCAUX_A, ECP5_VCCAUX_V = 0.016, 2.5
ECP5_25F_LUTS, ECP5_85F_LUTS = 24288, 83640  # LUT4s per part (nextpnr-ecp5 0.11 "available")


_DATASHEET = "ECP5 data sheet FPGA-DS-02012, static I_CC and I_CCAUX of the LFE5U-25F"


def _static_w(luts: int) -> float:
    """ECP5 standby power in W: core leakage scaled by LUT count from the 25F, auxiliary supply as is."""
    return ECP5_25F_ICC_A * ECP5_VCC_V * luts / ECP5_25F_LUTS + ECP5_25F_ICCAUX_A * ECP5_VCCAUX_V


def _power_law(e8: float, e32: float, x: float, x8: float, x32: float) -> float:
    """The power law through (x8, e8) and (x32, e32), evaluated at x."""
    k = math.log(e32 / e8) / math.log(x32 / x8)
    return e8 * (x / x8) ** k


def latency_s(cycles: int, fmax_mhz: float) -> float:
    """Wall time of ``cycles`` clock cycles at ``fmax_mhz`` MHz, in seconds (the ``seconds`` of :class:`OpCounts`)."""
    if not fmax_mhz > 0:
        raise ConfigError(f"the clock frequency must be positive, got {fmax_mhz} MHz; pass the Fmax nextpnr reported.")
    if cycles < 0:
        raise ConfigError(f"the cycle count must be non-negative, got {cycles}; pass the simulated cycles.")
    return cycles / (fmax_mhz * 1e6)


@dataclass(frozen=True)
class OpCounts:
    """What a workload does: operation counts by width, memory traffic in bits, and its duration.

    ``mults`` maps an operand width in bits (both operands) or a pair ``(a_bits, b_bits)`` to a
    count of multiplies; ``adds`` maps an adder width in bits to a count of additions (an
    accumulate is one add at the accumulator's width). Memory traffic is in bits of on-chip memory
    read and written; ``seconds`` is the wall time the device is powered for the workload.
    """

    mults: Mapping[int | tuple[int, int], int] = field(default_factory=dict)
    adds: Mapping[int, int] = field(default_factory=dict)
    mem_read_bits: int = 0
    mem_write_bits: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        widths = [w for k in self.mults for w in (k if isinstance(k, tuple) else (k,))] + list(self.adds)
        if any(not isinstance(w, int) or w < 1 for w in widths):
            raise ConfigError(f"operation widths must be positive integers of bits, got {sorted(map(str, widths))}; fix the counts.")
        counts = list(self.mults.values()) + list(self.adds.values()) + [self.mem_read_bits, self.mem_write_bits, self.seconds]
        if any(c < 0 for c in counts):
            raise ConfigError("operation counts, memory bits and seconds must be non-negative; fix the counts.")


@dataclass(frozen=True)
class EnergyModel:
    """Per-operation energies (45 nm ASIC figures), the FPGA factor applied to them, and static power.

    Defaults describe the LFE5U-85F (module docstring for every source); a model of another part
    sets ``static_power_w``, ``device`` and ``static_source`` together.
    """

    add_8b_pj: float = HOROWITZ_ADD_8B_PJ  # 8-bit integer add, pJ (Horowitz 2014)
    add_32b_pj: float = HOROWITZ_ADD_32B_PJ  # 32-bit integer add, pJ (Horowitz 2014)
    mult_8b_pj: float = HOROWITZ_MULT_8B_PJ  # 8x8-bit integer multiply, pJ (Horowitz 2014)
    mult_32b_pj: float = HOROWITZ_MULT_32B_PJ  # 32x32-bit integer multiply, pJ (Horowitz 2014)
    read_pj_per_bit: float = HOROWITZ_SRAM_8KB_READ_64B_PJ / 64  # on-chip SRAM read, pJ/bit (8 KB array)
    write_pj_per_bit: float = HOROWITZ_SRAM_8KB_READ_64B_PJ / 64  # on-chip SRAM write, pJ/bit (= read, assumed)
    fpga_factor: float = KUON_ROSE_FPGA_DYNAMIC_FACTOR  # FPGA / ASIC dynamic energy (Kuon & Rose 2007)
    static_power_w: float = _static_w(ECP5_85F_LUTS)  # device standby power, W (ECP5 data sheet, scaled)
    device: str = "LFE5U-85F"  # the part the static power describes
    static_source: str = _DATASHEET + ", core scaled by LUT count to the 85F"  # where static_power_w comes from

    def add_pj(self, bits: int) -> float:
        """Energy of one ``bits``-wide integer add on the FPGA, pJ."""
        return self.fpga_factor * _power_law(self.add_8b_pj, self.add_32b_pj, bits, 8, 32)

    def mult_pj(self, a_bits: int, b_bits: int | None = None) -> float:
        """Energy of one ``a_bits`` x ``b_bits`` integer multiply on the FPGA, pJ (``b_bits`` defaults to ``a_bits``)."""
        b = a_bits if b_bits is None else b_bits
        return self.fpga_factor * _power_law(self.mult_8b_pj, self.mult_32b_pj, a_bits * b, 64, 1024)

    def energy_pj(self, counts: OpCounts) -> dict[str, float]:
        """The energy of ``counts`` in pJ, broken down.

        Keys: ``mult``, ``add``, ``mem_read``, ``mem_write`` (dynamic, FPGA factor included),
        ``dynamic`` (their sum), ``static`` (static power x seconds) and ``total``.
        """
        mult = sum(n * (self.mult_pj(*k) if isinstance(k, tuple) else self.mult_pj(k)) for k, n in counts.mults.items())
        add = sum(n * self.add_pj(k) for k, n in counts.adds.items())
        read = self.fpga_factor * self.read_pj_per_bit * counts.mem_read_bits
        write = self.fpga_factor * self.write_pj_per_bit * counts.mem_write_bits
        dynamic = mult + add + read + write
        static = self.static_power_w * counts.seconds * 1e12
        return {"mult": mult, "add": add, "mem_read": read, "mem_write": write, "dynamic": dynamic,
                "static": static, "total": dynamic + static}

    def constants(self) -> list[tuple[str, float, str, str]]:
        """(name, value, unit, source) of every constant, for reports that must cite them."""
        horowitz = "Horowitz, ISSCC 2014, Fig. 1.1.9 (45 nm, 0.9 V)"
        return [
            ("add_8b", self.add_8b_pj, "pJ", horowitz),
            ("add_32b", self.add_32b_pj, "pJ", horowitz),
            ("mult_8b", self.mult_8b_pj, "pJ", horowitz),
            ("mult_32b", self.mult_32b_pj, "pJ", horowitz),
            ("sram_read", self.read_pj_per_bit, "pJ/bit", horowitz + ", 8 KB SRAM 64-bit read = 10 pJ"),
            ("sram_write", self.write_pj_per_bit, "pJ/bit", "assumed equal to the read"),
            ("fpga_factor", self.fpga_factor, "x", "Kuon & Rose, IEEE TCAD 26(2), 2007: FPGA/ASIC dynamic power ~14x"),
            ("static_power", self.static_power_w, "W", f"{self.device}: {self.static_source}"),
        ]


ECP5_85F = EnergyModel()
# The 25F's static power is the data sheet's own figure (no scaling).
ECP5_25F = EnergyModel(static_power_w=_static_w(ECP5_25F_LUTS), device="LFE5U-25F", static_source=_DATASHEET)


def ecp5_energy_model(size: str) -> EnergyModel:
    """The energy model of an ECP5 part ("25k", "45k" or "85k"): its static power from the data
    sheet's LFE5U-25F figures, the core's scaled by the part's LUT count."""
    from .devices import ecp5_device

    part = ecp5_device(size)
    if part.name == ECP5_25F.device:
        return ECP5_25F
    return EnergyModel(static_power_w=_static_w(part.capacity["lut4"]), device=part.name,
                       static_source=f"{_DATASHEET}, core scaled by LUT count to the {part.name}")


def step_energy(program: Any, config: Any, seconds: float, model: EnergyModel | None = None) -> dict[str, Any]:
    """Modelled energy of one training step of ``program`` (a fixed-point Program) on the
    accelerator ``config`` lasting ``seconds``: its operations and memory traffic
    (``ttedge.hw.traffic``) priced by ``model``, in joules and per part (pJ), with the constants."""
    from ..hw.traffic import step_traffic

    model = model or EnergyModel()
    traffic = step_traffic(program, config)
    pj = model.energy_pj(OpCounts(mults=dict(traffic.mults), adds=dict(traffic.adds), mem_read_bits=traffic.read_bits,
                                  mem_write_bits=traffic.write_bits, seconds=seconds))
    return {"joules_per_sample": pj["total"] * 1e-12 / program.batch, "seconds_per_sample": seconds / program.batch,
            **{f"{k}_pj": round(v, 1) for k, v in pj.items()}, "traffic": traffic.as_dict(),
            "constants": [list(c) for c in model.constants()]}
