"""Whether an accelerator's memories can be block RAM on an ECP5 or ZU3EG part, checked before synthesis.

A width-class memory (:mod:`ttedge.hw.memories`) becomes block RAM when it is banked (each bank one
read and one write port: :mod:`ttedge.hw.banks`) or, unbanked, when it has one write port (Yosys
then replicates it once per read port: a P x 1 array's left operands take P copies). With several
write ports, as where the engine's Q output lanes write one buffer Q words per cycle, no block RAM
of either part can hold it (each has two ports, and these memories also read other addresses in the
same cycle), and Yosys builds it from flip-flops, one per bit. When those flip-flops alone exceed
the part, synthesis cannot succeed; :func:`memory_problem` says so at once, where Yosys would run for minutes first (the MNIST
reference accelerator at batch 1 on a 1 x 1 array, before memories were banked, ran 7 minutes and
then stopped with an internal error).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..fixed.program import Program
from ..hw.banks import memory_roles, plan_banks
from ..hw.config import AcceleratorConfig
from ..hw.isa import encode_program
from ..hw.memmap import MemoryMap
from ..hw.memories import port_counts
from .devices import ZU3EG, Device, ecp5_device

__all__ = ["MemoryNeed", "memory_needs", "memory_problem", "synthesis_blocker"]


@dataclass(frozen=True)
class MemoryNeed:
    """One on-chip memory of a design as synthesis will see it."""

    name: str  # "mem<k>"
    width: int  # bits per word
    depth: int  # words
    reads: int  # read ports
    writes: int  # write ports
    banks: int  # banks of one read and one write port each (0: unbanked)

    @property
    def built_as(self) -> str:
        """How synthesis builds it, in words: banked, replicated per read port, or flip-flops."""
        if self.banks:
            return f"{self.banks} bank{'s' if self.banks > 1 else ''}, each one read and one write port (block RAM)"
        if self.writes > 1:
            return f"{self.writes} write ports: flip-flops ({self.flip_flops:,})"
        return f"one copy per read port ({self.reads}), block RAM" if self.reads > 1 else "one block RAM array"

    def as_dict(self) -> dict[str, int | str]:
        """Its fields, with ``flip_flops`` and ``built_as``."""
        return {**{k: getattr(self, k) for k in ("name", "width", "depth", "reads", "writes", "banks")},
                "flip_flops": self.flip_flops, "built_as": self.built_as}

    @property
    def flip_flops(self) -> int:
        """Flip-flops it takes when it cannot be block RAM (several write ports, unbanked); else 0."""
        return self.width * self.depth if self.banks == 0 and self.writes > 1 else 0


def memory_needs(program: Program, config: AcceleratorConfig) -> list[MemoryNeed]:
    """The memories of ``program``'s accelerator on ``config``, as its Verilog has them (external
    memory modules, banked where the program allows)."""
    mm = MemoryMap(program, config)
    words = encode_program(program, config).words
    banks = plan_banks(mm, words, config)
    needs = []
    for k, (width, depth, roles) in enumerate(zip(mm.widths, mm.depths(), memory_roles(mm, words))):
        reads, writes = port_counts(roles, config.p, config.q)
        needs.append(MemoryNeed(f"mem{k}", width, max(depth, 1), reads, writes, 0 if banks[k] is None else len(banks[k])))
    return needs


def memory_problem(needs: list[MemoryNeed], device: Device) -> str:
    """A sentence naming why the memories cannot fit ``device``, or "" when they may."""
    ff = sum(n.flip_flops for n in needs)
    if ff <= device.capacity["ff"]:
        return ""
    worst = max(needs, key=lambda n: n.flip_flops)
    return (
        f"{worst.name} ({worst.depth} words of {worst.width} bits) has {worst.writes} write ports, so it cannot be block RAM "
        f"and the memories would take {ff:,} flip-flops, {ff / device.capacity['ff']:.1f}x the {device.name}'s "
        f"{device.capacity['ff']:,}; with one output lane (--q 1) every memory has one write port and can be block RAM."
    )


def synthesis_blocker(program: Program, config: AcceleratorConfig, target: str, ecp5_size: str = "85k") -> str:
    """Why synthesis of ``program``'s accelerator for ``target`` cannot succeed, or "" (the ECP5 part
    of ``ecp5_size``, or the ZU3EG; the UP5K has its own fit, ``ttedge.synth.fit_up5k``)."""
    devices = {"ecp5": ecp5_device(ecp5_size), "xcup": ZU3EG}
    return memory_problem(memory_needs(program, config), devices[target]) if target in devices else ""
