"""The memory plan of a training program on the iCE40 UP5K: which buffer lives in which RAM.

The UP5K has two kinds of on-chip RAM (iCE40 UltraPlus data sheet; nextpnr-ice40 counts the same):

- SPRAM: 4 blocks of 16,384 words x 16 bits (256 kb each), single-port. Here the four form one
  65,536-word address space; a buffer takes a contiguous range of words and touches the blocks
  that range crosses (the planner avoids crossing a block boundary when it can).
- EBR: 30 blocks of 4,096 bits, dual-port, each configured as 256x16, 512x8, 1024x4 or 2048x2.
  A buffer placed there gets whole blocks of its own, in the configuration that needs fewest.

Every stored buffer of ``Program.buffers`` is placed (compute copies are derived on the fly and take
no storage). Codes narrower than a word are packed (``pack=True``): two 8-bit codes per 16-bit
word, four 4-bit codes, ...; a code wider than a word takes several words (a 32-bit code, two).

Policy (deterministic, so tests pin exact placements): buffers that fit in one EBR block go to
EBR first, in program order, while blocks remain (small, often-read buffers then do not compete for
an SPRAM port); the others go to SPRAM, largest first, each inside one block where possible, in the
block whose buffers it shares fewest instructions with (so that an instruction's operands sit
behind different single ports: :meth:`Up5kMemoryPlan.port_conflicts` lists what remains), at the
lowest free word address; what SPRAM cannot hold goes to EBR, and what neither holds is unplaced. With ``share=True``, working buffers
(activations, errors, gradients, input, labels) whose lifetimes (``Program.lifetimes()``) do not
overlap may occupy the same SPRAM words; state (cores, biases, optimizer, lambdas) never shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from ..fixed.program import Buffer, Program, ScaleControl

__all__ = [
    "CAPACITY_BITS",
    "EBR_BITS",
    "EBR_BLOCKS",
    "EBR_SHAPES",
    "SPRAM_BLOCKS",
    "SPRAM_WIDTH",
    "SPRAM_WORDS",
    "Slot",
    "Up5kMemoryPlan",
    "plan_up5k_memories",
    "render_up5k_plan",
]

SPRAM_BLOCKS = 4  # SB_SPRAM256KA blocks
SPRAM_WORDS = 16384  # words per SPRAM block
SPRAM_WIDTH = 16  # bits per SPRAM word
EBR_BLOCKS = 30  # SB_RAM40_4K blocks
EBR_BITS = 4096  # bits per EBR block
EBR_SHAPES = ((256, 16), (512, 8), (1024, 4), (2048, 2))  # (depth in words, width in bits) of an EBR block
CAPACITY_BITS = SPRAM_BLOCKS * SPRAM_WORDS * SPRAM_WIDTH + EBR_BLOCKS * EBR_BITS  # 1,171,456


def _words(numel: int, width: int, word: int, pack: bool) -> int:
    """Words of ``word`` bits holding ``numel`` codes of ``width`` bits (packed or one code per word)."""
    if width > word:
        return numel * ceil(width / word)
    per = word // width if pack else 1
    return ceil(numel / per)


def _ebr_choice(b: Buffer, pack: bool) -> tuple[int, tuple[int, int], int]:
    """(blocks, (depth, width) configuration, words per block lane) of the cheapest EBR layout of ``b``."""
    best: tuple[int, tuple[int, int], int] | None = None
    for depth, width in EBR_SHAPES:
        lanes = ceil(b.fmt.width / width) if b.fmt.width > width else 1
        words = ceil(b.numel / (width // b.fmt.width if pack and b.fmt.width <= width else 1))
        blocks = lanes * ceil(words / depth)
        if best is None or blocks < best[0]:
            best = (blocks, (depth, width), words)
    assert best is not None
    return best


@dataclass(frozen=True)
class Slot:
    """Where one buffer lives: ``memory`` "spram", "ebr" or "none" (did not fit)."""

    buffer: Buffer
    memory: str
    words: int  # SPRAM: 16-bit words; EBR: words of its configuration (per lane); none: SPRAM words it needs
    offset: int | None = None  # SPRAM only: first word address (0..65535)
    ebr_shape: tuple[int, int] | None = None  # EBR only: (depth, width) configuration of its blocks
    ebr_blocks: int = 0  # EBR only: blocks it takes
    lifetime: tuple[int, int] | None = None  # (first, last) instruction when it shares storage; None = always held

    @property
    def spram_blocks(self) -> tuple[int, ...]:
        """The SPRAM blocks its word range touches (() when not in SPRAM)."""
        if self.memory != "spram" or self.offset is None:
            return ()
        return tuple(range(self.offset // SPRAM_WORDS, (self.offset + self.words - 1) // SPRAM_WORDS + 1))

    @property
    def storage_bits(self) -> int:
        """Bits of RAM it takes (words x word width; whole blocks for EBR)."""
        if self.memory == "ebr":
            return self.ebr_blocks * EBR_BITS
        return self.words * SPRAM_WIDTH

    def where(self) -> str:
        """Its place in words, e.g. ``spram0 @0x0000`` or ``ebr 2 x 256x16``."""
        if self.memory == "spram":
            blocks = "-".join(str(k) for k in (self.spram_blocks[0], self.spram_blocks[-1])) if len(self.spram_blocks) > 1 \
                else str(self.spram_blocks[0])
            return f"spram{blocks} @{self.offset:#06x}"
        if self.memory == "ebr":
            assert self.ebr_shape is not None
            return f"ebr {self.ebr_blocks} x {self.ebr_shape[0]}x{self.ebr_shape[1]}"
        return "not placed"


def _overlaps(a: tuple[int, int] | None, b: tuple[int, int] | None) -> bool:
    """Whether two lifetimes overlap (None = held for the whole step)."""
    if a is None or b is None:
        return True
    return a[0] <= b[1] and b[0] <= a[1]


def _spram_offset(words: int, life: tuple[int, int] | None, placed: list[Slot], clash: dict[str, int]) -> int | None:
    """A free word address for ``words`` words alive over ``life``: inside one block if possible,
    then in the block(s) whose buffers share fewest instructions with it (``clash``: buffer name ->
    instructions both touch), then the lowest address."""
    total = SPRAM_BLOCKS * SPRAM_WORDS
    busy = [(s.offset, s.offset + s.words) for s in placed if s.offset is not None and _overlaps(s.lifetime, life)]
    starts = sorted({0, *(end for _, end in busy), *range(0, total, SPRAM_WORDS)})
    free = [o for o in starts if o + words <= total and all(o + words <= a or o >= e for a, e in busy)]

    def cost(o: int) -> tuple[int, int, int]:
        blocks = set(range(o // SPRAM_WORDS, (o + words - 1) // SPRAM_WORDS + 1))
        shared = sum(clash.get(s.buffer.name, 0) for s in placed if blocks & set(s.spram_blocks))
        return (len(blocks), shared, o)

    return min(free, key=cost, default=None)


def _co_access(program: Program) -> dict[str, dict[str, int]]:
    """For each buffer, the other buffers touched by the same instructions, and how many times."""
    out: dict[str, dict[str, int]] = {}
    for ins in program.instructions:
        if isinstance(ins, ScaleControl):
            continue
        names = list(dict.fromkeys((*ins.reads, *ins.writes)))
        for a in names:
            for b in names:
                if a != b:
                    out.setdefault(a, {})[b] = out.setdefault(a, {}).get(b, 0) + 1
    return out


@dataclass(frozen=True)
class Up5kMemoryPlan:
    """Every stored buffer of ``program`` placed in the UP5K's SPRAM and EBR (module docstring)."""

    program: Program
    slots: tuple[Slot, ...]  # in program order
    share: bool  # working buffers share SPRAM words by lifetime
    pack: bool  # narrow codes packed several to a word

    def slot(self, name: str) -> Slot:
        """The slot of buffer ``name`` (KeyError if the program stores no such buffer)."""
        for s in self.slots:
            if s.buffer.name == name:
                return s
        raise KeyError(name)

    @property
    def spram_words(self) -> int:
        """SPRAM words in use: the union of the buffers' word ranges (shared words count once)."""
        taken = sorted((s.offset, s.offset + s.words) for s in self.slots if s.offset is not None)
        total, reach = 0, 0
        for start, end in taken:
            total += max(0, end - max(start, reach))
            reach = max(reach, end)
        return total

    @property
    def spram_blocks_used(self) -> int:
        return len({k for s in self.slots for k in s.spram_blocks})

    @property
    def ebr_blocks(self) -> int:
        return sum(s.ebr_blocks for s in self.slots)

    @property
    def unplaced(self) -> tuple[Slot, ...]:
        return tuple(s for s in self.slots if s.memory == "none")

    @property
    def fits(self) -> bool:
        return not self.unplaced

    @property
    def deficit_bits(self) -> int:
        """Bits of RAM the unplaced buffers would need (0 when everything fits)."""
        return sum(s.words * SPRAM_WIDTH for s in self.unplaced)

    @property
    def stored_bits(self) -> int:
        """Bits of the program's stored buffers (codes x width, no packing or block waste)."""
        return sum(s.buffer.bits for s in self.slots)

    @property
    def used_bits(self) -> int:
        """Bits of RAM the plan takes: the SPRAM words in use plus whole EBR blocks."""
        return self.spram_words * SPRAM_WIDTH + self.ebr_blocks * EBR_BITS

    @property
    def headroom_bits(self) -> int:
        """RAM bits left on the part (negative: bits short, i.e. minus the deficit)."""
        return CAPACITY_BITS - self.used_bits if self.fits else -self.deficit_bits

    def to_flat(self) -> dict[str, int | bool]:
        """Flat JSON-ready totals keyed ``up5k_mem.<name>`` (bits, words and blocks as named)."""
        flat: dict[str, int | bool] = {
            "up5k_mem.fits": self.fits, "up5k_mem.stored_bits": self.stored_bits, "up5k_mem.used_bits": self.used_bits,
            "up5k_mem.capacity_bits": CAPACITY_BITS, "up5k_mem.headroom_bits": self.headroom_bits,
            "up5k_mem.deficit_bits": self.deficit_bits, "up5k_mem.spram_words": self.spram_words,
            "up5k_mem.spram_blocks": self.spram_blocks_used, "up5k_mem.ebr_blocks": self.ebr_blocks,
            "up5k_mem.port_conflicts": len(self.port_conflicts()), "up5k_mem.unplaced": len(self.unplaced),
        }
        flat.update({f"up5k_mem.{kind}_bits": bits for kind, bits in self.bits_by_kind().items()})
        return flat

    def bits_by_kind(self) -> dict[str, int]:
        """Stored bits per buffer kind (program order of first appearance)."""
        out: dict[str, int] = {}
        for s in self.slots:
            out[s.buffer.kind] = out.get(s.buffer.kind, 0) + s.buffer.bits
        return out

    def port_conflicts(self) -> list[tuple[int, int, tuple[str, ...]]]:
        """(instruction, SPRAM block, buffers) wherever one instruction touches two or more buffers
        in the same single-port SPRAM block, so their accesses must take turns on its one port.

        A buffer an instruction both reads and writes counts once (its read-modify-write also
        needs two accesses per word on a single port; the cycle model must charge that too).
        ScaleControl is left out: the buffer's last writer takes its max |code| as it writes.
        """
        out = []
        where = {s.buffer.name: s.spram_blocks for s in self.slots}
        for i, ins in enumerate(self.program.instructions):
            if isinstance(ins, ScaleControl):
                continue
            names = list(dict.fromkeys((*ins.reads, *ins.writes)))
            for block in range(SPRAM_BLOCKS):
                sharing = tuple(n for n in names if block in where.get(n, ()))
                if len(sharing) > 1:
                    out.append((i, block, sharing))
        return out

    def shrink_options(self) -> list[str]:
        """Sentences on what would save the most bits: halving each kind's widest codes, largest first."""
        lines = []
        for kind, bits in sorted(self.bits_by_kind().items(), key=lambda kv: -kv[1]):
            widths = sorted({s.buffer.fmt.width for s in self.slots if s.buffer.kind == kind})
            wide = [s for s in self.slots if s.buffer.kind == kind and s.buffer.fmt.width == widths[-1]]
            if widths[-1] > 4:
                saved = sum(s.buffer.bits for s in wide) // 2
                lines.append(f"{kind}: {bits:,} bits in {widths[-1]}-bit codes; {widths[-1] // 2}-bit codes would save {saved:,}")
        return lines


def plan_up5k_memories(program: Program, *, share: bool = False, pack: bool = True) -> Up5kMemoryPlan:
    """Place every stored buffer of ``program`` in the UP5K's SPRAM and EBR (policy: module docstring)."""
    lifetimes = program.lifetimes() if share else {}
    stored = [b for b in program.buffers if b.stored]
    slots: dict[str, Slot] = {}
    ebr_left = EBR_BLOCKS
    for b in stored:  # one-block buffers first, to the dual-port EBR
        blocks, shape, words = _ebr_choice(b, pack)
        if blocks == 1 and ebr_left >= 1:
            slots[b.name] = Slot(b, "ebr", words, ebr_shape=shape, ebr_blocks=1)
            ebr_left -= 1
    rest = sorted((b for b in stored if b.name not in slots), key=lambda b: -_words(b.numel, b.fmt.width, SPRAM_WIDTH, pack))
    placed: list[Slot] = []
    co = _co_access(program)
    for b in rest:
        words = _words(b.numel, b.fmt.width, SPRAM_WIDTH, pack)
        life = lifetimes.get(b.name)
        offset = _spram_offset(words, life, placed, co.get(b.name, {}))
        if offset is not None:
            slot = Slot(b, "spram", words, offset=offset, lifetime=life)
            placed.append(slot)
        else:
            blocks, shape, ebr_words = _ebr_choice(b, pack)
            if blocks <= ebr_left:
                slot = Slot(b, "ebr", ebr_words, ebr_shape=shape, ebr_blocks=blocks)
                ebr_left -= blocks
            else:
                slot = Slot(b, "none", words, lifetime=life)
        slots[b.name] = slot
    return Up5kMemoryPlan(program, tuple(slots[b.name] for b in stored), share, pack)


def render_up5k_plan(plan: Up5kMemoryPlan) -> str:
    """The plan as Markdown: one row per buffer, then SPRAM, EBR and totals against the UP5K."""
    mode = ", ".join((["packed codes"] if plan.pack else ["one code per word"])
                     + (["working buffers share by lifetime"] if plan.share else ["no sharing"]))
    lines = [f"### iCE40 UP5K memory plan ({mode})", "",
             "| buffer | kind | shape | width | bits | placed | words |", "|---|---|---|---:|---:|---|---:|"]
    for s in plan.slots:
        b = s.buffer
        life = f" (instr. {s.lifetime[0]}..{s.lifetime[1]})" if s.lifetime is not None else ""
        lines.append(f"| {b.name} | {b.kind} | {'x'.join(map(str, b.shape))} | {b.fmt.width} | {b.bits:,} | "
                     f"{s.where()}{life} | {s.words:,} |")
    spram_cap = SPRAM_BLOCKS * SPRAM_WORDS
    lines += ["", "| memory | used | capacity |", "|---|---:|---:|",
              f"| SPRAM words (16-bit) | {plan.spram_words:,} (blocks touched: {plan.spram_blocks_used}) | {spram_cap:,} ({SPRAM_BLOCKS} blocks) |",
              f"| EBR blocks (4 kb) | {plan.ebr_blocks} | {EBR_BLOCKS} |",
              f"| RAM bits | {plan.used_bits:,} | {CAPACITY_BITS:,} |",
              f"| stored bits (codes x width) | {plan.stored_bits:,} | |"]
    conflicts = plan.port_conflicts()
    lines += ["", f"Single-port SPRAM conflicts: {len(conflicts)} (instruction, block: buffers that take turns on its port)"
              + (": " + "; ".join(f"{i}, spram{k}: {', '.join(names)}" for i, k, names in conflicts) if conflicts else ".")]
    lines += ["", "| kind | bits |", "|---|---:|"] + [f"| {k} | {v:,} |" for k, v in plan.bits_by_kind().items()]
    lines.append("")
    if plan.fits:
        lines.append(f"Fits: every buffer is on chip, with {plan.headroom_bits:,} bits of RAM to spare "
                     f"({plan.headroom_bits / CAPACITY_BITS:.0%} of {CAPACITY_BITS:,}).")
    else:
        names = ", ".join(s.buffer.name for s in plan.unplaced)
        lines.append(f"Does not fit: {plan.deficit_bits:,} bits short; not placed: {names}. What would have to shrink:")
        lines += [f"- {line}" for line in plan.shrink_options()]
        lines.append("- fewer TT ranks shrink cores, their gradients and optimizer state, and the activations and errors")
    return "\n".join(lines) + "\n"
