"""The instruction words of the accelerator: a program's instructions encoded as its program image.

One word per instruction, in program order (the word's position is the instruction's position,
hence its random stream), then one END word. Every word has the same fields (:data:`FIELDS`); an
instruction leaves the fields it does not use at 0. Buffer ids are :class:`MemoryMap` indices;
counts and strides are element counts, signed, of ``num_bits`` bits.

A contraction is encoded by its *index maps*, not by its mode: the engine computes
``out[x, y] = sum_z L[x, z] * R[z, y]`` where y = (yhi, ylo) and z = (zhi, zlo) are two-level
counters, and every operand address is an affine function of the counters
(``x * sx + yhi * syhi + ylo * sylo + zhi * szhi + zlo * szlo``). The encoder turns each mode's
(rows, contract, out, cols) views into those strides, and precomputes the increments the address
generators add (so the hardware only adds, never multiplies addresses):

============  ======================  =====================  ======================
mode          x (P lanes)             y (Q lanes)            z (reduced)
============  ======================  =====================  ======================
forward       o of G[o, k]            (r, c) of A[r, k, c]   k
input_error   k of G[o, k]            (r, c) of A[r, o, c]   o
core_grad     o of E[r, o, c]         k of S[r, k, c]        (r, c)
============  ======================  =====================  ======================

The rank prior's instructions (``ttedge.hw.prior``) address a core's bond digits: in a core's stored
matrix layout the rank index on its left (r0) or right (r1) side is (e // stride) % size of the flat
element index e (:func:`rank_digit`).

Refused with ConfigError: instruction types the hardware does not execute (AdamUpdate, and any
type it does not know), operands wider than the MAC lanes, accumulators wider than the lanes',
softmax logits wider than 31 bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from amaranth import signed, unsigned
from amaranth.lib.data import StructLayout

from ..errors import ConfigError
from ..fixed.program import (
    BiasAdd,
    BiasGrad,
    Contract,
    Instruction,
    LambdaUpdate,
    Narrow,
    PriorGrad,
    Program,
    Relu,
    ReluGrad,
    ScaleControl,
    ScaleRule,
    SgdUpdate,
    SoftmaxXentGrad,
)
from ..fixed.softmax import EXP_MAX_INPUT_BITS
from .config import AcceleratorConfig
from .memmap import MemoryMap

__all__ = ["Op", "FIELDS", "ProgramImage", "encode_program", "contract_fields", "ROUNDING_CODES", "scale_units", "rank_digit"]


class Op(IntEnum):
    """Opcodes (4 bits)."""

    END = 0
    CONTRACT = 1
    BIAS_ADD = 2
    BIAS_GRAD = 3
    RELU = 4
    RELU_GRAD = 5
    SOFTMAX = 6
    SGD = 7
    NARROW = 8
    SCALE = 9
    PRIOR = 10
    LAMBDA = 11


ROUNDING_CODES = {"nearest": 0, "truncate": 1, "stochastic": 2}  # = hw.requant.RoundingMode values

# Every word's fields: ("name", kind) with kind "op", "flag", "id" (a buffer id) or "num" (signed).
FIELDS: tuple[tuple[str, str], ...] = (
    ("op", "op"), ("rounding", "flag2"), ("momentum", "flag"),
    ("pl", "flag"), ("pr", "flag"),  # PriorGrad: the core has a left / right bond
    ("a", "id"), ("b", "id"), ("c", "id"), ("d", "id"),
    # where each slot's buffer lives: its memory (width class) and word offset there
    ("am", "mem"), ("ao", "num"), ("bm", "mem"), ("bo", "num"), ("cm", "mem"), ("co", "num"), ("dm", "mem"), ("do", "num"),
    # counts: contraction loop bounds, or elementwise element counts
    ("nx", "num"), ("nyhi", "num"), ("nylo", "num"), ("nzhi", "num"), ("nzlo", "num"), ("ny", "num"),
    # L operand strides / increments
    ("l_sx", "num"), ("l_szlo", "num"), ("l_zwrap", "num"),
    # R operand
    ("r_sylo", "num"), ("r_ystep1", "num"), ("r_ystepq", "num"), ("r_ywrap", "num"), ("r_szlo", "num"), ("r_zwrap", "num"),
    # output
    ("o_sx", "num"), ("o_sylo", "num"), ("o_ystep1", "num"), ("o_ystepq", "num"), ("o_ywrap", "num"),
    # y advance by 1 and by Q in (hi, lo)
    ("d1hi", "num"), ("d1lo", "num"), ("dqhi", "num"), ("dqlo", "num"),
    # constants: shifts, class counts, which scale unit; the rank prior's coefficients
    ("k1", "num"), ("k2", "num"), ("k3", "num"), ("k4", "num"), ("k5", "num"),
)


def rank_digit(shape: tuple[int, int, int, int], order: str, side: str) -> tuple[int, int]:
    """(stride, size) of a core's left (``side`` "r0") or right ("r1") rank index in its stored
    matrix: (r0 m, n r1) for rtl, (m r1, r0 n) for ltr (``ttedge.tt.apply.core_matrix``)."""
    r0, m, n, r1 = shape
    if order == "rtl":
        return (m * n * r1, r0) if side == "r0" else (1, r1)
    return (n, r0) if side == "r0" else (r0 * n, r1)


def contract_fields(ins: Contract, q: int) -> dict[str, int]:
    """The index-map fields of a contraction for an array with ``q`` y-lanes (module docstring)."""
    R, K, O, C = ins.rows, ins.contract, ins.out_len, ins.cols
    if ins.mode == "forward":
        nx, (nyhi, nylo), (nzhi, nzlo) = O, (R, C), (1, K)
        l = dict(sx=K, szlo=1, szhi=0)
        r = dict(syhi=K * C, sylo=1, szlo=C, szhi=0)
        o = dict(sx=C, syhi=O * C, sylo=1)
    elif ins.mode == "input_error":
        nx, (nyhi, nylo), (nzhi, nzlo) = K, (R, C), (1, O)
        l = dict(sx=1, szlo=K, szhi=0)
        r = dict(syhi=O * C, sylo=1, szlo=C, szhi=0)
        o = dict(sx=C, syhi=K * C, sylo=1)
    elif ins.mode == "core_grad":
        nx, (nyhi, nylo), (nzhi, nzlo) = O, (1, K), (R, C)
        l = dict(sx=C, szlo=1, szhi=O * C)
        r = dict(syhi=0, sylo=C, szlo=1, szhi=K * C)
        o = dict(sx=K, syhi=0, sylo=1)
    else:
        raise ConfigError(f"unknown contraction mode {ins.mode!r}; the engine runs forward, input_error and core_grad.")
    d1hi, d1lo = divmod(1, nylo)
    dqhi, dqlo = divmod(q, nylo)

    def zwrap(s: dict[str, int]) -> int:
        return s["szhi"] - (nzlo - 1) * s["szlo"]

    return {
        "nx": nx, "nyhi": nyhi, "nylo": nylo, "nzhi": nzhi, "nzlo": nzlo, "ny": nyhi * nylo,
        "l_sx": l["sx"], "l_szlo": l["szlo"], "l_zwrap": zwrap(l),
        "r_sylo": r["sylo"], "r_ystep1": d1hi * r["syhi"] + d1lo * r["sylo"],
        "r_ystepq": dqhi * r["syhi"] + dqlo * r["sylo"], "r_ywrap": r["syhi"] - nylo * r["sylo"],
        "r_szlo": r["szlo"], "r_zwrap": zwrap(r),
        "o_sx": o["sx"], "o_sylo": o["sylo"], "o_ystep1": d1hi * o["syhi"] + d1lo * o["sylo"],
        "o_ystepq": dqhi * o["syhi"] + dqlo * o["sylo"], "o_ywrap": o["syhi"] - nylo * o["sylo"],
        "d1hi": d1hi, "d1lo": d1lo, "dqhi": dqhi, "dqlo": dqlo,
    }


@dataclass(frozen=True)
class ProgramImage:
    """The encoded program: ``words[i]`` is a dict of field values of instruction i (then END)."""

    words: tuple[dict[str, int], ...]
    id_bits: int  # bits of a buffer id
    num_bits: int  # bits of a signed count, stride or offset field
    mem_bits: int = 1  # bits of a memory index

    def field_bits(self, kind: str) -> int:
        return {"op": 4, "flag": 1, "flag2": 2, "id": self.id_bits, "num": self.num_bits, "mem": self.mem_bits}[kind]

    @property
    def word_bits(self) -> int:
        """Bits of one instruction word."""
        return sum(self.field_bits(kind) for _, kind in FIELDS)

    def pack(self, word: dict[str, int]) -> int:
        """One word as an unsigned integer, fields from the least significant bit in FIELDS order."""
        value, pos = 0, 0
        for name, kind in FIELDS:
            bits = self.field_bits(kind)
            v = word.get(name, 0)
            low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if kind == "num" else (0, (1 << bits) - 1)
            if not low <= v <= high:
                raise ConfigError(f"field {name} = {v} does not fit its {bits} bits; this is a compiler bug, please report it.")
            value |= (v & ((1 << bits) - 1)) << pos
            pos += bits
        return value

    def unpack(self, value: int) -> dict[str, int]:
        """The fields of a packed word (the inverse of :meth:`pack`)."""
        out, pos = {}, 0
        for name, kind in FIELDS:
            bits = self.field_bits(kind)
            v = (value >> pos) & ((1 << bits) - 1)
            if kind == "num" and v >> (bits - 1):
                v -= 1 << bits
            out[name] = v
            pos += bits
        return out

    def packed(self) -> list[int]:
        return [self.pack(w) for w in self.words]

    def layout(self) -> StructLayout:
        """The word as an Amaranth struct (same bit order as :meth:`pack`)."""
        shapes = {"num": signed(self.num_bits)}
        return StructLayout({name: shapes.get(kind, unsigned(self.field_bits(kind))) for name, kind in FIELDS})


def scale_units(program: Program) -> list[tuple[int, ScaleRule]]:
    """The distinct (width, rule) pairs of the program's ScaleControl instructions, in first-use
    order: the top instantiates one ScaleUnit per pair."""
    out: list[tuple[int, ScaleRule]] = []
    for ins in program.instructions:
        if isinstance(ins, ScaleControl):
            key = (program.buffer(ins.buffer).fmt.width, ins.rule)
            if key not in out:
                out.append(key)
    return out


def _check_width(what: str, width: int, limit: int, knob: str) -> None:
    if width > limit:
        raise ConfigError(f"{what} is {width} bits wide but the accelerator supports at most {limit}; raise AcceleratorConfig.{knob} or narrow the format.")


def _encode(i: int, ins: Instruction, mm: MemoryMap, cfg: AcceleratorConfig) -> dict[str, int]:
    prog = mm.program
    w = lambda name: prog.buffer(name).fmt.width  # noqa: E731
    idx = mm.index
    if isinstance(ins, Contract):
        left, right = (ins.b, ins.a) if ins.mode in ("forward", "input_error") else (ins.a, ins.b)
        for op in (left, right):
            _check_width(f"contraction operand {op.buffer!r}", w(op.buffer), cfg.max_operand_width, "max_operand_width")
        _check_width(f"the accumulator of the contraction into {ins.out.buffer!r}", ins.acc_width, cfg.max_acc_width, "max_acc_width")
        word = {"op": Op.CONTRACT, "rounding": ROUNDING_CODES[ins.rounding],
                "a": idx(left.buffer), "b": idx(right.buffer), "c": idx(ins.out.buffer)}
        word.update(contract_fields(ins, cfg.q))
        return word
    if isinstance(ins, BiasAdd):
        batch, m = prog.buffer(ins.y).shape
        return {"op": Op.BIAS_ADD, "a": idx(ins.y), "b": idx(ins.bias), "c": idx(ins.y), "nx": batch * m, "ny": m}
    if isinstance(ins, BiasGrad):
        batch, m = prog.buffer(ins.error).shape
        return {"op": Op.BIAS_GRAD, "a": idx(ins.error), "c": idx(ins.grad), "nx": m, "nzlo": batch, "ny": m}
    if isinstance(ins, Relu):
        return {"op": Op.RELU, "a": idx(ins.x), "c": idx(ins.x), "nx": prog.buffer(ins.x).numel}
    if isinstance(ins, ReluGrad):
        return {"op": Op.RELU_GRAD, "a": idx(ins.error), "b": idx(ins.activation), "c": idx(ins.error),
                "nx": prog.buffer(ins.error).numel}
    if isinstance(ins, SoftmaxXentGrad):
        _check_width(f"softmax logits {ins.logits!r}", w(ins.logits), EXP_MAX_INPUT_BITS, "(softmax input)")
        batch, m = prog.buffer(ins.logits).shape
        return {"op": Op.SOFTMAX, "a": idx(ins.logits), "b": idx(ins.labels), "c": idx(ins.error),
                "nx": batch, "ny": m, "k1": ins.num_classes}
    if isinstance(ins, SgdUpdate):
        word = {"op": Op.SGD, "rounding": ROUNDING_CODES["stochastic"], "a": idx(ins.param), "b": idx(ins.grad),
                "nx": prog.buffer(ins.param).numel, "k1": ins.lr_shift}
        if ins.velocity is not None:
            word.update(momentum=1, c=idx(ins.velocity), k2=ins.momentum_shift)
        return word
    if isinstance(ins, Narrow):
        return {"op": Op.NARROW, "rounding": ROUNDING_CODES[prog.buffer(ins.compute).fmt.rounding],
                "a": idx(ins.master), "c": idx(ins.compute), "nx": prog.buffer(ins.master).numel}
    if isinstance(ins, ScaleControl):
        # k1: which ScaleUnit (one per distinct (width, rule) of the program, scale_units order)
        return {"op": Op.SCALE, "a": idx(ins.buffer), "nx": prog.buffer(ins.buffer).numel,
                "k1": scale_units(prog).index((w(ins.buffer), ins.rule))}
    if isinstance(ins, PriorGrad):
        left, right = ins.left or ins.right, ins.right or ins.left  # a missing bond reads the other (flag 0)
        (sa, na), (sb, nb) = rank_digit(ins.shape, ins.order, "r0"), rank_digit(ins.shape, ins.order, "r1")
        f_const = ins.coef_frac + prog.buffer(ins.core).fmt.frac + prog.buffer(left).fmt.frac  # type: ignore[arg-type]
        return {"op": Op.PRIOR, "a": idx(ins.core), "b": idx(ins.grad), "c": idx(left), "d": idx(right),  # type: ignore[arg-type]
                "pl": int(ins.left is not None), "pr": int(ins.right is not None), "nx": prog.buffer(ins.core).numel,
                "nylo": sa, "nyhi": na, "nzlo": sb, "nzhi": nb, "k1": ins.coef, "k2": f_const}
    if isinstance(ins, LambdaUpdate):
        lam, prec = prog.buffer(ins.lam).fmt, prog.buffer(ins.prec).fmt
        fg = prog.buffer(ins.left).fmt.frac
        sl, r = rank_digit(ins.left_shape, ins.left_order, "r1")
        sr, _ = rank_digit(ins.right_shape, ins.right_order, "r0")
        return {"op": Op.LAMBDA, "a": idx(ins.left), "b": idx(ins.right), "c": idx(ins.lam), "d": idx(ins.prec),
                "nx": prog.buffer(ins.left).numel, "nylo": sl, "nyhi": r, "nzlo": prog.buffer(ins.right).numel, "nzhi": sr,
                "k1": lam.frac + ins.den_frac - 2 * fg, "k2": ins.damping_shift, "k3": ins.two_beta, "k4": ins.den,
                "k5": prec.frac + lam.frac}
    raise ConfigError(
        f"instruction {i} ({type(ins).__name__}) is not supported by the accelerator; "
        "compile the program without it (e.g. optimizer sgd instead of adam) or extend ttedge.hw."
    )


def encode_program(program: Program, config: AcceleratorConfig) -> ProgramImage:
    """The program image of ``program`` for ``config`` (refusing what the hardware cannot run)."""
    mm = MemoryMap(program, config)
    words = [_encode(i, ins, mm, config) for i, ins in enumerate(program.instructions)]
    words.append({"op": Op.END})
    pls = mm.placements
    for wd in words[:-1]:
        for slot in "abcd":
            pl = pls[wd.get(slot, 0)]
            wd[slot + "m"], wd[slot + "o"] = pl.memory, pl.offset
    words = [{name: int(wd.get(name, 0)) for name, _ in FIELDS} for wd in words]
    id_bits = max(1, (len(program.buffers) - 1).bit_length())
    magnitude = max(abs(v) for wd in words for name, kind in FIELDS if kind == "num" for v in [wd[name]])
    num_bits = max(magnitude.bit_length() + 1, max(mm.depths()).bit_length() + 2, 8)
    mem_bits = max(1, (len(mm.widths) - 1).bit_length())
    return ProgramImage(tuple(words), id_bits, num_bits, mem_bits)
