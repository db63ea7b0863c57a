"""Where every buffer and state register of a program lives: on-chip memories and the host map.

Buffers of the same width share one on-chip memory (a *width class*: e.g. 8-bit cores, 16-bit
activations, errors, gradients and biases, 32-bit labels and velocities; an unsigned w-bit code,
such as a rank variance, takes a w+1-bit word, so every word reads as its value), one word per element, each
buffer a contiguous range at its ``offset`` (word offset + i = flat C-order element i). The shapes
and widths are read from ``Program.buffers`` and never restated. A core's compute copy (kind
"compute") is materialized by its Narrow instruction in this first slice (the program counts it as
0 bits, as a later slice derives it on the fly); :meth:`MemoryMap.bits` reports it separately.

Host map (word addresses; every word is 64 bits, an element or register sign-extended)::

    0x0000  CTRL     write 1: run one training step on the loaded sample(s)
    0x0001  STATUS   bit 0 done (the last step finished), bit 1 busy
    0x0002  CYCLES   clock cycles of the last step
    0x0003  PC       position of the instruction being executed
    0x0010  REGS     the state registers, one word each, in ``registers`` order: step, lr.decay,
                     prior.on (with a rank prior: 0 skips PriorGrad and LambdaUpdate),
                     scale.<buf>.frac/over/under per dynamic buffer, sat.<buf> per counted buffer
    PROFILE          read only: word i = the step's cycle count when instruction i finished
                     (performance counters; one word per instruction)
    MEM_BASE         the buffers, one after the other in program order, each ``numel`` words

``PROFILE`` follows the registers; ``MEM_BASE`` is the first multiple of 0x1000 after it. Memories are read and written
only while the accelerator is idle (STATUS bit 1 clear).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import ConfigError
from ..fixed.program import Buffer, Program
from .config import AcceleratorConfig

__all__ = ["Placement", "MemoryMap", "CTRL", "STATUS", "CYCLES", "PC", "REG_BASE"]

CTRL, STATUS, CYCLES, PC = 0x0, 0x1, 0x2, 0x3
REG_BASE = 0x10
_ALIGN = 0x1000


def word_width(b: Buffer) -> int:
    """Bits of one memory word of ``b``: its code width, plus a zero sign bit for unsigned codes."""
    return b.fmt.width + (0 if b.fmt.signed else 1)


@dataclass(frozen=True)
class Placement:
    """One buffer's on-chip memory: ``depth`` words of ``width`` bits at host word ``base``."""

    buffer: Buffer
    index: int  # the buffer id the instruction words use
    base: int  # host word address of element 0
    memory: int  # which on-chip memory (width class) holds it
    offset: int  # word address of element 0 in that memory

    @property
    def name(self) -> str:
        return self.buffer.name

    @property
    def width(self) -> int:
        """Bits per word (:func:`word_width` of the buffer's format)."""
        return word_width(self.buffer)

    @property
    def depth(self) -> int:
        """Words (the buffer's elements)."""
        return self.buffer.numel

    @property
    def bits(self) -> int:
        return self.width * self.depth


@dataclass(frozen=True)
class MemoryMap:
    """The placement of ``program``'s buffers and state registers for ``config``."""

    program: Program
    config: AcceleratorConfig

    def __post_init__(self) -> None:
        for width, depth in zip(self.widths, self.depths()):
            if depth > self.config.max_memory_words:
                raise ConfigError(
                    f"the {width}-bit buffers need {depth} words but an on-chip memory holds at most "
                    f"{self.config.max_memory_words}; raise AcceleratorConfig.max_memory_words or shrink the model."
                )

    @property
    def widths(self) -> tuple[int, ...]:
        """Bits per word of each on-chip memory (its width class), ascending."""
        return tuple(sorted({word_width(b) for b in self.program.buffers}))

    def images(self, state: Mapping[str, np.ndarray]) -> list[list[int]]:
        """The initial words of every on-chip memory (signed codes): the buffers ``state`` holds at
        their offsets, zeros elsewhere."""
        images = [[0] * d for d in self.depths()]
        for pl in self.placements:
            if pl.name in state:
                images[pl.memory][pl.offset : pl.offset + pl.depth] = [int(v) for v in np.asarray(state[pl.name]).reshape(-1)]
        return images

    def depths(self) -> tuple[int, ...]:
        """Words of each on-chip memory."""
        out = [0] * len(self.widths)
        for pl in self.placements:
            out[pl.memory] += pl.depth
        return tuple(out)

    @property
    def placements(self) -> tuple[Placement, ...]:
        """Every buffer in program order (the buffer id is the index)."""
        out, base = [], self.mem_base
        used = [0] * len(self.widths)
        for i, b in enumerate(self.program.buffers):
            k = self.widths.index(word_width(b))
            out.append(Placement(b, i, base, k, used[k]))
            base += b.numel
            used[k] += b.numel
        return tuple(out)

    def placement(self, name: str) -> Placement:
        for pl in self.placements:
            if pl.name == name:
                return pl
        raise KeyError(name)

    def index(self, name: str) -> int:
        """The buffer id of ``name`` in instruction words."""
        return self.placement(name).index

    @property
    def registers(self) -> tuple[str, ...]:
        """The state registers in host-map order (names as the Interpreter's state keys)."""
        regs = ["step", "lr.decay"] + (["prior.on"] if self.program.priors else [])
        for b in self.program.buffers:
            if b.dynamic:
                regs += [f"scale.{b.name}.{k}" for k in ("frac", "over", "under")]
        regs += [f"sat.{b.name}" for b in self.program.buffers if b.kind not in ("input", "label")]
        return tuple(regs)

    def register_address(self, name: str) -> int:
        return REG_BASE + self.registers.index(name)

    @property
    def profile_base(self) -> int:
        """Host word address of the first performance counter (one per instruction)."""
        return REG_BASE + len(self.registers)

    @property
    def mem_base(self) -> int:
        end = self.profile_base + len(self.program.instructions)
        return (end + _ALIGN) // _ALIGN * _ALIGN

    @property
    def address_bits(self) -> int:
        """Bits of a host word address."""
        last = self.placements[-1]
        return max(1, (last.base + last.depth - 1).bit_length())

    def bits(self) -> dict[str, int]:
        """Bits of every on-chip memory ("mem<k>", width x depth), plus "program" (what the program
        counts as stored), "materialized" (compute copies this slice stores too) and "total"."""
        out = {f"mem{k}": w * d for k, (w, d) in enumerate(zip(self.widths, self.depths()))}
        out["program"] = sum(b.bits for b in self.program.buffers)
        out["materialized"] = sum(pl.bits for pl in self.placements if not pl.buffer.stored)
        out["total"] = out["program"] + out["materialized"]
        return out

    def describe(self) -> str:
        """The host map as a text table (one line per region)."""
        lines = [f"{CTRL:#07x}  CTRL", f"{STATUS:#07x}  STATUS", f"{CYCLES:#07x}  CYCLES", f"{PC:#07x}  PC"]
        lines += [f"{self.register_address(r):#07x}  {r}" for r in self.registers]
        lines += [f"{self.profile_base:#07x}  PROFILE  {len(self.program.instructions)} cycle counters"]
        lines += [
            f"{pl.base:#07x}  {pl.name}  {pl.depth} x {pl.width} bits  {pl.buffer.kind}  shape {pl.buffer.shape}  "
            f"(mem{pl.memory} + {pl.offset:#x})"
            for pl in self.placements
        ]
        return "\n".join(lines)
