"""Which memory ports each instruction uses, and the banks that let every memory be block RAM.

Each instruction touches buffers through *roles* (the slot of its word holding the buffer id, and
the port the role drives):

    CONTRACT            L <- a (read ports 0..P-1), R <- b (the Q read ports after those), O -> c (write: Q lanes)
    SOFTMAX             EA <- a, EB <- b, W -> c
    PRIOR               EA <- a, EB <- b, EC <- c, ED <- d, W -> b
    LAMBDA              EA <- a, EB <- b, EC <- c, W -> c, V -> d
    SGD                 EA <- a, EB <- b, W -> a; with momentum also EC <- c, V -> c
    BIAS_ADD, RELU_GRAD EA <- a, EB <- b, W -> c
    BIAS_GRAD, RELU, NARROW   EA <- a, W -> c

EA, EB, EC, ED are read ports 0, 1, 2, 3; W is write port 0 (shared with the engine's lane 0 and the
host), V the velocity/precision write port. :data:`ACCESSES` is this table; the top level derives
each memory's roles (hence its ports) from it.

A width-class memory has as many ports as its roles need, but one instruction runs at a time and
its ports address different buffers. So a memory can be split into *banks*, contiguous address
ranges, such that no instruction reads two buffers of one bank through two different ports, or
writes two buffers of one bank through two different ports, in the same cycle. Each bank then needs
one read and one write port: block RAMs in simple dual-port mode, with the ports muxed in front
of them (:func:`~ttedge.hw.memories.memory_verilog`; :class:`BankLayout` says which shape and how many). :func:`plan_banks` groups the buffers, in address
order, greedily into the fewest such ranges. A memory where one buffer is itself on two ports at
once (the engine's P > 1 rows of a core, its Q > 1 right operands or output lanes) cannot be banked
this way; it keeps its multi-ported array (``None``), which synthesis replicates or builds from
flip-flops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .config import AcceleratorConfig
from .isa import Op
from .memmap import MemoryMap

__all__ = ["ACCESSES", "READ_ROLES", "WRITE_ROLES", "Banks", "accesses", "memory_roles", "role_ops", "plan_banks",
           "BLOCK_SHAPES", "MAX_PIECES", "BankLayout", "bank_layout",
           "bank_layouts", "bank_images"]

# (role, slot) per opcode; SGD's momentum roles are added by accesses().
ACCESSES: Mapping[Op, tuple[tuple[str, str], ...]] = {
    Op.CONTRACT: (("L", "a"), ("R", "b"), ("O", "c")),
    Op.SOFTMAX: (("EA", "a"), ("EB", "b"), ("W", "c")),
    Op.PRIOR: (("EA", "a"), ("EB", "b"), ("EC", "c"), ("ED", "d"), ("W", "b")),
    Op.LAMBDA: (("EA", "a"), ("EB", "b"), ("EC", "c"), ("W", "c"), ("V", "d")),
    Op.SGD: (("EA", "a"), ("EB", "b"), ("W", "a")),
    Op.BIAS_ADD: (("EA", "a"), ("EB", "b"), ("W", "c")),
    Op.RELU_GRAD: (("EA", "a"), ("EB", "b"), ("W", "c")),
    Op.BIAS_GRAD: (("EA", "a"), ("W", "c")),
    Op.RELU: (("EA", "a"), ("W", "c")),
    Op.NARROW: (("EA", "a"), ("W", "c")),
}
READ_ROLES = ("L", "R", "EA", "EB", "EC", "ED")
WRITE_ROLES = ("O", "W", "V")
_SGD_MOMENTUM = (("EC", "c"), ("V", "c"))

Banks = tuple[tuple[int, int], ...]  # [start, stop) word ranges of one memory, in order, covering it


def accesses(word: Mapping[str, int]) -> tuple[tuple[str, str], ...]:
    """The (role, slot) pairs of one instruction word (none for SCALE and END)."""
    out = ACCESSES.get(Op(word["op"]), ())
    return out + _SGD_MOMENTUM if word["op"] == Op.SGD and word["momentum"] else out


def memory_roles(mm: MemoryMap, words: Sequence[Mapping[str, int]]) -> list[set[str]]:
    """The roles each width-class memory of ``mm`` plays anywhere in the program (its ports follow:
    ``ttedge.hw.memories.port_counts``); W, the write port every memory has, is left out."""
    roles: list[set[str]] = [set() for _ in mm.widths]
    for word in words:
        for role, slot in accesses(word):
            if role != "W":
                roles[word[slot + "m"]].add(role)
    return roles


def role_ops(role: str) -> tuple[frozenset[Op], bool]:
    """The opcodes whose instructions use ``role``, and whether SGD does when it has momentum."""
    ops = frozenset(op for op, acc in ACCESSES.items() if any(r == role for r, _ in acc))
    return ops, any(r == role for r, _ in _SGD_MOMENTUM)


def _ports(role: str, config: AcceleratorConfig) -> tuple[str, ...]:
    """Names of the ports a role drives in one cycle. L and R get names of their own: the read port
    numbers they take depend on the memory's roles, but in one instruction they never share one (a
    memory read as both has P + Q ports), and no instruction mixes them with EA..ED."""
    if role == "L":
        return tuple(f"L{i}" for i in range(config.p))
    if role == "R":
        return tuple(f"R{i}" for i in range(config.q))
    if role == "O":
        return ("w0",) + tuple(f"lane{i}" for i in range(1, config.q))
    return {"EA": ("r0",), "EB": ("r1",), "EC": ("r2",), "ED": ("r3",), "W": ("w0",), "V": ("v",)}[role]


def plan_banks(mm: MemoryMap, words: Sequence[Mapping[str, int]], config: AcceleratorConfig) -> tuple[Banks | None, ...]:
    """For each width-class memory of ``mm``: its banks (module docstring), or None when one buffer
    of it is on two ports in one cycle."""
    pls = mm.placements
    nmem = len(mm.widths)
    bankable = [True] * nmem
    apart: set[tuple[int, int]] = set()  # buffer ids that must not share a bank
    for word in words:
        for kind in (READ_ROLES, WRITE_ROLES):
            uses = [(port, word[slot]) for role, slot in accesses(word) if role in kind for port in _ports(role, config)]
            for i, (pa, ba) in enumerate(uses):
                for pb, bb in uses[i + 1:]:
                    if pls[ba].memory != pls[bb].memory or pa == pb:
                        continue
                    if ba == bb:
                        bankable[pls[ba].memory] = False
                    else:
                        apart.add((min(ba, bb), max(ba, bb)))
    out: list[Banks | None] = []
    depths = mm.depths()
    for k in range(nmem):
        if not bankable[k]:
            out.append(None)
            continue
        starts, members = [0], []  # bank start offsets; ids in the current bank
        for pl in sorted((pl for pl in pls if pl.memory == k), key=lambda pl: pl.offset):
            if any((min(pl.index, o), max(pl.index, o)) in apart for o in members):
                starts.append(pl.offset)
                members = []
            members.append(pl.index)
        out.append(tuple(zip(starts, starts[1:] + [max(depths[k], 1)])))
    return tuple(out)


# The shapes, (words, bits), of one block RAM: Lattice ECP5's DP16KD, Xilinx's RAMB18 (16 Kbit of
# data; the 9-, 18- and 36-bit shapes with their parity bits).
BLOCK_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
MAX_PIECES = 8  # pieces a bank is cut into at most, where the deepest shape allows (BankLayout)


@dataclass(frozen=True)
class BankLayout:
    """How one bank, words ``start`` .. ``stop - 1`` of ``width`` bits, sits in block RAMs: cut by
    depth into pieces of ``depth`` words (a power of two, counted from the bank's start, so that a
    word's piece is its bank offset's high bits), and each piece by bits into slices of ``bits``,
    one block RAM each (``ttedge.hw.memories.memory_verilog``). A read takes one word from every
    slice of one piece and the piece's word from a mux of the pieces: at most :data:`MAX_PIECES`
    keep that mux within one slice's LUTs and muxes, however far apart the blocks are placed."""

    start: int
    stop: int
    width: int
    depth: int
    bits: int

    @property
    def pieces(self) -> tuple[tuple[int, int], ...]:
        """[start, stop) word ranges of the pieces."""
        return tuple((s, min(s + self.depth, self.stop)) for s in range(self.start, self.stop, self.depth))

    @property
    def slices(self) -> tuple[tuple[int, int], ...]:
        """[low, high) bit ranges of a word's slices, least significant first."""
        return tuple((b, min(b + self.bits, self.width)) for b in range(0, self.width, self.bits))

    @property
    def blocks(self) -> int:
        """Block RAMs the bank takes: one per slice of every piece."""
        return len(self.pieces) * len(self.slices)


def bank_layout(start: int, stop: int, width: int, shape: tuple[int, int] | None = None) -> BankLayout:
    """The layout of one bank (:class:`BankLayout`): of the block shapes that cut it into at most
    :data:`MAX_PIECES` pieces, the one with the fewest block RAMs (then the fewest slices: each
    slice's block RAM takes the piece's address, so fewer slices keep those nets short); the
    deepest shape when none does; ``shape`` (words, bits) imposes one instead (tests use small
    ones). Measured on the MNIST reference accelerator: pieces of one block, up to 40 in a bank,
    made its slowest paths; 16384 x 1 slices everywhere, at most three pieces, took 18 more blocks
    and had not finished routing after 25 minutes."""
    if shape is not None:
        assert shape[0] > 0 and shape[0] & (shape[0] - 1) == 0 and shape[1] > 0
        return BankLayout(start, stop, width, *shape)
    layouts = [BankLayout(start, stop, width, d, b) for d, b in BLOCK_SHAPES]
    few = [lay for lay in layouts if len(lay.pieces) <= MAX_PIECES] or layouts[:1]
    return min(few, key=lambda lay: (lay.blocks, len(lay.slices)))


def bank_layouts(banks: Banks | None, width: int, shape: tuple[int, int] | None = None) -> tuple[BankLayout, ...] | None:
    """Every bank's :func:`bank_layout` (None for an unbanked memory)."""
    return None if banks is None else tuple(bank_layout(lo, hi, width, shape) for lo, hi in banks)


def bank_images(image: Sequence[int], width: int, layouts: Sequence[BankLayout] | None) -> list[tuple[list[int], int]]:
    """A memory's initial words as its block RAMs hold them, each part with its bit count: per bank,
    piece and slice in that order (``ttedge.hw.memories.image_files`` names them), the slice's bits
    of each word of the piece; unbanked (``layouts`` None), the whole image. Words in two's
    complement, as unsigned numbers."""
    if layouts is None:
        return [([int(v) & ((1 << width) - 1) for v in image], width)]
    out = []
    for lay in layouts:
        for lo, hi in lay.pieces:
            for b0, b1 in lay.slices:
                mask = (1 << (b1 - b0)) - 1
                out.append(([(int(v) >> b0) & mask for v in image[lo:hi]], b1 - b0))
    return out
