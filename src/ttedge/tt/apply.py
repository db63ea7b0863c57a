"""Applying a TT matrix to a batch without forming the dense matrix: one autograd node.

Forward keeps exactly the state entering each contraction step (the first is the input itself, a
view, not a copy) and nothing else, so what a training step stores is what
:class:`~ttedge.tt.contract.ContractionPlan` says it stores. Backward walks the steps in reverse:

    core gradient   dG = sum over rows and cols of  e[r, :, c] (x) s[r, :, c]    (out, contract)
    input error     s_err[r, :, c] = G^T e[r, :, c]                               (rows, contract, cols)

where s is the kept state and e the error arriving at the step's output. No dense dW is formed:
this is the same schedule the fixed-point training program follows.

A plan is compiled once into a straight-line list of instructions (:func:`_compile`), run either
by the Python functions :func:`_source` renders from it (inside :class:`_TTContract`) or, when it is
built, by the C++ executor of the same instructions (:mod:`ttedge.tt.native`), bit for bit alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ShapeError
from .contract import SETTINGS, ContractionPlan, Order, OrderSetting, checked_plan, plan_contraction
from .cores import check_cores
from . import native
from .modes import prod

__all__ = ["tt_apply", "core_matrix", "core_from_matrix"]


_LTR_PERM, _LTR_INV = (1, 3, 0, 2), (2, 0, 3, 1)  # an ltr core's axes as its matrix takes them, and back


def core_matrix(core: torch.Tensor, order: Order) -> torch.Tensor:
    """Core (r0, m, n, r1) as the (out, contract) matrix of its step: (r0 m, n r1) for rtl,
    (m r1, r0 n) for ltr; a view for rtl (of a contiguous core), a copy for ltr."""
    r0, m, n, r1 = core.shape
    if order == "rtl":
        return core.reshape(r0 * m, n * r1)
    return core.permute(*_LTR_PERM).reshape(m * r1, r0 * n)


def core_from_matrix(mat: torch.Tensor, shape: torch.Size, order: Order) -> torch.Tensor:
    """Inverse of :func:`core_matrix`: an (out, contract) matrix back to core layout."""
    r0, m, n, r1 = shape
    if order == "rtl":
        return mat.reshape(r0, m, n, r1)
    return mat.reshape(m, r1, r0, n).permute(*_LTR_INV)


# How a step's products run. Measured on the benchmark shapes (benchmarks/README.md): torch.matmul
# on (out, contract) @ (rows, contract, cols) and torch.tensordot copy their operands element-wise
# into transposed layouts, which cost as much as the GEMMs at batch 64. A batched GEMM over the rows
# with the core broadcast (stride 0) copies nothing, but re-reads G once per row: when G is larger
# than the caches and cols is narrow, folding the state to (rows * cols, contract) once and running
# one GEMM is faster. With one row or one column a step is a single plain GEMM.
_LARGE_CORE = 1 << 18  # entries of G (1 MiB in float32)
_NARROW = 16
_COLS1, _ROWS1, _FOLD, _BMM = range(4)  # how a step runs: see _Op


@dataclass(frozen=True)
class _Op:
    """One step of a plan, with everything its products need decided once per plan."""

    core: int  # swept core
    rows: int
    contract: int
    out: int
    cols: int
    kind: int  # _COLS1: (rows, contract) @ G^T; _ROWS1: G @ (contract, cols); _FOLD, _BMM: see _product
    outer: int  # core gradient: 0 plain GEMM (kinds _COLS1, _ROWS1), 1 per-row products summed, 2 tensordot
    grads: tuple[int, int]  # original cores [a, b) this swept core stands for


def _kind(rows: int, contract: int, out: int, cols: int) -> int:
    if cols == 1:
        return _COLS1
    if rows == 1:
        return _ROWS1
    if cols <= _NARROW and out * contract >= _LARGE_CORE:
        return _FOLD
    return _BMM


@dataclass(frozen=True, eq=False)
class _MergeOp:
    """One product of a core merge (a ``Merge`` of the plan), with its layouts decided once:
    partial (left, rank) @ core ``core`` (rank, right) is (A, N, m_k, D), whose middle axes a row
    gather of its D-long rows swaps into core layout (A, m_k, N, D) (see :func:`_swap_rows`)."""

    core: int
    left: int
    rank: int
    right: int
    row: int  # D = n_k r_{k+1}
    forward: torch.Tensor  # row order (A, N, m_k) -> (A, m_k, N)
    backward: torch.Tensor  # and back
    shape: tuple[int, ...]  # the new partial (r_a, M m_k, N n_k, r_{k+1}); a group's last merge
    # swept rtl gives the (r_a M m_k, N n_k r_{k+1}) matrix instead, the same memory (no core_matrix)


@dataclass(frozen=True, eq=False)
class _Program:
    """A plan as tt_apply runs it: its steps (_Op), its merges (_MergeOp, per swept core, in order),
    and the straight-line Python that runs them (:func:`_compile`). Made once per plan; passed to
    the autograd node so that forward and backward look nothing up (hashing a plan costs several
    microseconds), do no shape arithmetic and take no branch per call: at batch 1 the Python around
    the products is a large part of a step."""

    order: Order
    groups: tuple[tuple[int, int], ...]
    ops: tuple[_Op, ...]
    merges: tuple[tuple[_MergeOp, ...], ...]
    matrix: tuple[bool, ...]  # per swept core: a merge kept as the (out, contract) matrix an rtl sweep
    # multiplies (the same memory as its core layout), so no core_matrix is needed; else core layout
    shapes: tuple[tuple[int, ...], ...]  # the cores'
    plain: bool
    batch: int
    out_features: int
    listing: Any = None  # its instructions (_Listing; set by _program)
    source: str = ""  # the generated Python functions, for reading (set by _program)
    native: int = -1  # its id in the native executor, once registered there (_native_id)
    forward: Any = None  # (x, bias, cores) -> (y, saved); with ``plain``: (x, cores) -> the last step's output, in autograd ops
    backward: Any = None  # (grad, saved, needs) -> (grad_x, grad_bias, *grad_cores)


@functools.lru_cache(maxsize=1024)
def _program(plan: ContractionPlan, n: tuple[int, ...], m: tuple[int, ...], ranks: tuple[int, ...]) -> _Program:
    """The program of ``plan`` for cores with in_modes n, out_modes m and inner ranks ``ranks``."""
    ops = []
    for s in plan.steps:
        kind = _kind(s.rows, s.contract, s.out, s.cols)
        if kind in (_COLS1, _ROWS1):
            outer = 0
        else:
            # Per-row products summed: a temporary no larger than the operands, and no copies.
            outer = 1 if s.rows * s.out * s.contract <= s.rows * (s.out + s.contract) * s.cols else 2
        a, b = plan.groups[s.core]
        ops.append(_Op(s.core, s.rows, s.contract, s.out, s.cols, kind, outer, (a, b)))
    plain = plan.order == "rtl" and not plan.merges and all(op.kind != _FOLD and op.outer != 2 for op in ops)
    r = (1, *ranks, 1)
    shapes = [(r[k], m[k], n[k], r[k + 1]) for k in range(len(n))]
    matrix = tuple(b - a > 1 and plan.order == "rtl" for a, b in plan.groups)
    merges: list[list[_MergeOp]] = [[] for _ in plan.groups]
    for mg in plan.merges:
        a, b = plan.groups[mg.group]
        ra, mm, nn, _ = shapes[a]
        for k in range(a + 1, mg.core):
            mm, nn = mm * m[k], nn * n[k]
        _, mk, nk, rn = shapes[mg.core]
        shape = (ra * mm * mk, nn * nk * rn) if mg.core == b - 1 and matrix[mg.group] else (ra, mm * mk, nn * nk, rn)
        merges[mg.group].append(_MergeOp(mg.core, mg.left, mg.rank, mg.right, nk * rn, _swap_rows(ra * mm, nn, mk),
                                         _swap_rows(ra * mm, mk, nn), shape))
    prog = _Program(plan.order, plan.groups, tuple(ops), tuple(tuple(g) for g in merges), matrix, tuple(shapes), plain,
                    plan.batch, prod(m))
    listing = _compile(prog)
    source = _source(listing)
    space: dict[str, Any] = {"mm": torch.mm, "addmm": torch.addmm, "bmm": torch.bmm, "tensordot": torch.tensordot, **listing.consts}
    exec(compile(source, f"<tt program {plan.order} {plan.groups} batch {plan.batch}>", "exec"), space)
    object.__setattr__(prog, "listing", listing)
    object.__setattr__(prog, "source", source)
    object.__setattr__(prog, "forward", space["forward"])
    object.__setattr__(prog, "backward", space.get("backward"))
    return prog


# The products of a step, as instructions of a program (_Code). A step of a (rows, contract, cols)
# state multiplies G (out, contract): with one column or one row it is a single plain GEMM on a 2-D
# view of the state; else see the note at _LARGE_CORE.

@dataclass(frozen=True)
class _Ins:
    """One instruction: ``dst = op(*src, *ints)`` on registers named by strings. A block
    instruction (``if_needs``, ``if_bias``, ``if_nobias``; ``dst`` empty) runs the next ``ints[0]``
    instructions only when its condition holds: any of the node inputs ``ints[1:]`` needs a
    gradient (0 x, 1 bias, 2 + k core k), a bias was given, or none was."""

    op: str
    dst: str
    src: tuple[str, ...] = ()
    ints: tuple[int, ...] = ()


# op -> Python (what _render writes) and the native executor's opcode (the order of its enum Op)
_PYTHON = {
    "reshape": "{0}.reshape({ints})", "t": "{0}.t()", "transpose": "{0}.transpose({ints})",
    "permute": "{0}.permute({ints})", "expand": "{0}.expand({ints})", "mm": "mm({0}, {1})",
    "addmm": "addmm({0}, {1}, {2})", "bmm": "bmm({0}, {1})", "gather": "{0}.index_select(0, {1})",
    "sum0": "{0}.sum(0)", "tensordot02": "tensordot({0}, {1}, dims=([0, 2], [0, 2]))", "add_": "{0}.add_({1})",
}
_BLOCKS = ("if_needs", "if_bias", "if_nobias")
OPCODES = {op: k for k, op in enumerate((*_PYTHON, *_BLOCKS))}


class _Code:
    """A straight-line program being written: instructions and the temporaries they name."""

    def __init__(self) -> None:
        self.ins: list[_Ins] = []
        self._temps = 0

    def __call__(self, op: str, *src: str, ints: Sequence[int] = (), dst: str = "") -> str:
        """Append ``dst = op(*src, *ints)`` (dst a fresh temporary unless named); returns dst."""
        if not dst:
            dst, self._temps = f"_{self._temps}", self._temps + 1
        self.ins.append(_Ins(op, dst, src, tuple(ints)))
        return dst

    def block(self, op: str, *inputs: int) -> int:
        """Open a block; close it with :meth:`end` after its body."""
        self.ins.append(_Ins(op, "", (), (0, *inputs)))
        return len(self.ins) - 1

    def end(self, at: int) -> None:
        head = self.ins[at]
        self.ins[at] = _Ins(head.op, "", (), (len(self.ins) - at - 1, *head.ints[1:]))


def _render(code: Sequence[_Ins], indent: str = "    ") -> list[str]:
    """Python lines of ``code``; blocks become if statements (the node's needs_input_grad has the
    program at index 2, so core k's flag is needs[3 + k])."""
    lines, body = [], 0
    for ins in code:
        pad = indent * (2 if body else 1)
        body = max(0, body - 1)
        if ins.op == "if_needs":
            lines.append(f"{pad}if {' or '.join(f'needs[{k if k < 2 else k + 1}]' for k in ins.ints[1:])}:")
        elif ins.op in ("if_bias", "if_nobias"):
            lines.append(f"{pad}if bias is {'not ' if ins.op == 'if_bias' else ''}None:")
        else:
            lines.append(f"{pad}{ins.dst} = {_PYTHON[ins.op].format(*ins.src, ints=', '.join(map(str, ins.ints)))}")
            continue
        body = ins.ints[0]
    return lines


def _operand(c: _Code, kind: int, t: str, rows: int, inner: int, cols: int, dst: str = "") -> str:
    """t, (rows, inner, cols) entries, as a step of this kind multiplies it: (rows, inner) for
    _COLS1, (inner, cols) for _ROWS1, else (rows, inner, cols); a view unless t is strided."""
    shape = {_COLS1: (rows, inner), _ROWS1: (inner, cols)}.get(kind, (rows, inner, cols))
    return c("reshape", t, ints=shape, dst=dst)


def _product(c: _Code, kind: int, g: str, s: str, rows: int, inner: int, cols: int, back: bool = False,
             bias: str | None = None, dst: str = "") -> str:
    """The matrix ``g`` (G, or with ``back`` G^T, of ``inner`` columns either way) applied to the
    operand ``s`` of a (rows, inner, cols) state (see :func:`_operand`): (rows, its rows, cols)
    entries, 2-D for _COLS1 and _ROWS1. A ``bias`` (its rows, cols), given for a one-row last step
    (batch 1), is added by the GEMM."""
    if kind in (_ROWS1, _BMM):
        m = c("t", g) if back else g  # the matrix applied
        if kind == _BMM:
            return c("bmm", c("expand", m, ints=(rows, -1, -1)), s, dst=dst)
        return c("mm", m, s, dst=dst) if bias is None else c("addmm", bias, m, s, dst=dst)
    mt = g if back else c("t", g)  # its transpose
    if kind == _COLS1:
        return c("mm", s, mt, dst=dst)
    # _FOLD: (rows * cols, inner), a copy, through one GEMM; (rows, out, cols) strided
    p = c("mm", c("reshape", c("transpose", s, ints=(1, 2)), ints=(rows * cols, inner)), mt)
    return c("transpose", c("reshape", p, ints=(rows, cols, -1)), ints=(1, 2), dst=dst)


def _outer_sum(c: _Code, outer: int, kind: int, e: str, s: str) -> str:
    """sum_{r, c} e[r, :, c] s[r, :, c]^T, from the operands (see :func:`_operand`) of e
    (rows, out, cols) and s (rows, contract, cols): the (out, contract) core gradient."""
    if kind == _COLS1:
        return c("mm", c("t", e), s)
    if kind == _ROWS1:
        return c("mm", e, c("t", s))
    if outer == 1:
        return c("sum0", c("bmm", e, c("transpose", s, ints=(1, 2))))
    return c("tensordot02", e, s)


@functools.lru_cache(maxsize=256)
def _swap_rows(a: int, b: int, c: int) -> torch.Tensor:
    """Row order that turns rows (a, b, c) into (a, c, b): gathering the d-long rows of a
    (a, b, c, d) tensor in this order swaps its middle axes. permute().contiguous() loops once per
    row with a per-row cost, so for short rows (the merged core of a train's last cores, d = n_d)
    it takes twice as long on the benchmark machine; for long rows the two are equal."""
    return torch.arange(a * b * c).view(a, b, c).transpose(1, 2).reshape(-1)


def _core_matrix(c: _Code, core: str, shape: Sequence[int], order: Order, dst: str = "") -> str:
    """:func:`core_matrix` as instructions."""
    r0, m, n, r1 = shape
    if order == "rtl":
        return c("reshape", core, ints=(r0 * m, n * r1), dst=dst)
    return c("reshape", c("permute", core, ints=_LTR_PERM), ints=(m * r1, r0 * n), dst=dst)


def _core_from_matrix(c: _Code, mat: str, shape: Sequence[int], order: Order, dst: str = "") -> str:
    """:func:`core_from_matrix` as instructions."""
    r0, m, n, r1 = shape
    if order == "rtl":
        return c("reshape", mat, ints=(r0, m, n, r1), dst=dst)
    return c("permute", c("reshape", mat, ints=(m, r1, r0, n)), ints=_LTR_INV, dst=dst)


@dataclass(frozen=True)
class _Listing:
    """A program's instructions (:func:`_compile`): what the Python functions and the native
    executor both run."""

    cores: tuple[str, ...]  # the registers holding the cores, in order
    consts: dict[str, torch.Tensor]  # registers holding row orders, set before a run
    forward: tuple[_Ins, ...]  # from x, bias, cores to y (and the saved registers)
    saved: tuple[str, ...]  # what backward needs, in order
    backward: tuple[_Ins, ...]  # from grad and the saved registers to outs
    outs: tuple[str, ...]  # what backward gives: gx, gb, d0 .. d{n-1} (None where not needed)
    plain: bool  # the forward is in autograd operations and returns the last step's output "t"


def _compile(prog: _Program) -> _Listing:
    """The instructions of ``prog``, every shape a constant, and the row orders it gathers by.

    forward(x, bias, cores): each group's merges (partial @ core, then a row gather into core
    layout, :class:`_MergeOp`), then the steps; gives y (batch, M) and what backward needs: the
    state entering each step, the cores, every merge's product (the merged cores and, for runs of
    three or more, the partial products before them). The plan's saved_elements counts exactly
    these. backward(grad, saved, needs): the steps in reverse (module docstring); a merged core's
    gradient goes back through its merges, each a row gather and two GEMMs; then the bias gradient.
    ``needs`` are the node's needs_input_grad.

    With ``plain`` (rtl, no merges, no folded or tensordot steps) only forward(x, cores), in plain
    autograd operations: every core matrix is a view of its core and every product one mm / bmm,
    so autograd saves exactly what the node would (the state entering each step); at batch 1 this
    saves the node's own overhead, about a third of a step of the MNIST layer.
    """
    ncores = len(prog.shapes)
    cores = tuple(f"c{k}" for k in range(ncores))
    consts: dict[str, torch.Tensor] = {}
    last = prog.ops[-1]
    fw = _Code()
    if prog.plain:
        t = "x"
        for op in prog.ops:
            g = fw("reshape", f"c{op.core}", ints=(op.out, op.contract))
            s = _operand(fw, op.kind, t, op.rows, op.contract, op.cols)
            t = _product(fw, op.kind, g, s, op.rows, op.contract, op.cols, dst="t")
        return _Listing(cores, consts, tuple(fw.ins), (), (), (), True)

    # forward: the swept cores (w<g>), kept merge products (k<g>_<j>), states (s<i>)
    swept, partials, kept = [], [], []
    for gi, ((a, _), merges, matrix) in enumerate(zip(prog.groups, prog.merges, prog.matrix)):
        p, chain = f"c{a}", [f"c{a}"]
        for j, mg in enumerate(merges):
            consts[f"_f{gi}_{j}"], consts[f"_b{gi}_{j}"] = mg.forward, mg.backward
            q = fw("mm", fw("reshape", p, ints=(mg.left, mg.rank)), fw("reshape", f"c{mg.core}", ints=(mg.rank, mg.right)))
            p = fw("reshape", fw("gather", fw("reshape", q, ints=(-1, mg.row)), f"_f{gi}_{j}"), ints=mg.shape, dst=f"k{gi}_{j}")
            chain.append(p)
            kept.append(p)
        partials.append(chain)
        swept.append(p if matrix else f"w{gi}")

    def matrices(c: _Code) -> None:  # the swept cores kept in core layout, as matrices
        for gi, chain in enumerate(partials):
            if not prog.matrix[gi]:
                a = prog.groups[gi][0]
                shape = prog.merges[gi][-1].shape if prog.merges[gi] else prog.shapes[a]
                _core_matrix(c, chain[-1], shape, prog.order, dst=f"w{gi}")

    matrices(fw)
    t = "x"
    for i, op in enumerate(prog.ops):
        s = _operand(fw, op.kind, t, op.rows, op.contract, op.cols, dst=f"s{i}")
        if op is last and op.kind == _ROWS1:  # the bias, if any, added by the last GEMM
            at = fw.block("if_nobias")
            _product(fw, op.kind, swept[op.core], s, op.rows, op.contract, op.cols, dst="t")
            fw.end(at)
            at = fw.block("if_bias")
            b = fw("reshape", "bias", ints=(op.out, op.cols))
            _product(fw, op.kind, swept[op.core], s, op.rows, op.contract, op.cols, bias=b, dst="t")
            fw.end(at)
        else:
            _product(fw, op.kind, swept[op.core], s, op.rows, op.contract, op.cols, dst="t")
        t = "t"
    fw("reshape", "t", ints=(prog.batch, prog.out_features), dst="y")
    if last.kind != _ROWS1:
        at = fw.block("if_bias")
        fw("add_", "y", "bias", dst="y")  # a fresh tensor, saved by nobody
        fw.end(at)
    saved = (*[f"s{i}" for i in range(len(prog.ops))], *cores, *kept)

    bw = _Code()
    matrices(bw)
    e = "grad"
    for i in range(len(prog.ops) - 1, -1, -1):
        op = prog.ops[i]
        a, b = op.grads
        g, matrix = swept[op.core], prog.matrix[op.core]
        e = _operand(bw, op.kind, e, op.rows, op.out, op.cols, dst="e")
        at = bw.block("if_needs", *range(2 + a, 2 + b))
        dg = _outer_sum(bw, op.outer, op.kind, e, f"s{i}")
        chain = partials[op.core]
        if not matrix:
            shape = prog.shapes[a] if b - a == 1 else prog.merges[op.core][-1].shape
            dg = _core_from_matrix(bw, dg, shape, prog.order, dst=f"d{a}" if b - a == 1 else "")
        dp = dg
        for j in range(len(prog.merges[op.core]) - 1, -1, -1):
            mg = prog.merges[op.core][j]
            dq = bw("reshape", bw("gather", bw("reshape", dp, ints=(-1, mg.row)), f"_b{op.core}_{j}"), ints=(mg.left, mg.right))
            bw("reshape", bw("mm", bw("t", bw("reshape", chain[j], ints=(mg.left, mg.rank))), dq), ints=prog.shapes[mg.core], dst=f"d{mg.core}")
            dp = bw("mm", dq, bw("t", bw("reshape", f"c{mg.core}", ints=(mg.rank, mg.right))))  # the partial before
        if b - a > 1 or matrix:
            bw("reshape", dp, ints=prog.shapes[a], dst=f"d{a}")
        bw.end(at)
        if i == 0:
            at = bw.block("if_needs", 0)
        _product(bw, op.kind, g, e, op.rows, op.out, op.cols, back=True, dst="gx" if i == 0 else "e")  # the error entering the step
    bw.end(at)
    at = bw.block("if_needs", 1)
    if prog.batch == 1:
        bw("reshape", "grad", ints=(prog.out_features,), dst="gb")
    else:
        bw("sum0", bw("reshape", "grad", ints=(prog.batch, prog.out_features)), dst="gb")
    bw.end(at)
    return _Listing(cores, consts, tuple(fw.ins), saved, tuple(bw.ins), ("gx", "gb", *[f"d{k}" for k in range(ncores)]), False)


def _source(listing: _Listing) -> str:
    """The Python functions of a listing (module namespace: mm, addmm, bmm, tensordot, consts)."""
    unpack = f"    {', '.join(listing.cores)}, = cores"
    if listing.plain:
        return "\n".join(["def forward(x, cores):", unpack, *_render(listing.forward),
                          "    return t  # (rows, out, cols) entries of the last step; tt_apply shapes them"]) + "\n"
    outs = listing.outs
    return "\n".join([
        "def forward(x, bias, cores):", unpack, *_render(listing.forward),
        f"    return y, ({', '.join(listing.saved)},)", "",
        "def backward(grad, saved, needs):", f"    {', '.join(listing.saved)}, = saved", f"    {' = '.join(outs)} = None",
        *_render(listing.backward), f"    return {', '.join(outs)}"]) + "\n"


class _TTContract(torch.autograd.Function):
    """The sweep of a program as one autograd node, the layer's bias added to its output."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, bias: torch.Tensor | None, prog: _Program,
                *cores: torch.Tensor) -> torch.Tensor:
        y, saved = prog.forward(x, bias, cores)
        ctx.prog, ctx.x_shape = prog, x.shape
        ctx.save_for_backward(*saved)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_x, grad_bias, *grad_cores = ctx.prog.backward(grad, ctx.saved_tensors, ctx.needs_input_grad)
        return (None if grad_x is None else grad_x.reshape(ctx.x_shape), grad_bias, None, *grad_cores)


def _native_id(prog: _Program, executor: Any) -> int:
    """``prog``'s id in the native executor, registering its instructions there on first use."""
    if prog.native < 0:
        lst: _Listing = prog.listing
        regs = {"x": 0, "bias": 1, "grad": 2}
        for ins in (*lst.forward, *lst.backward):
            for name in (*ins.src, ins.dst):
                if name:
                    regs.setdefault(name, len(regs))
        outs = lst.outs
        for name in (*lst.cores, *lst.consts, *outs):
            regs.setdefault(name, len(regs))

        def rows(code: tuple[_Ins, ...]) -> list[list[int]]:
            return [[OPCODES[i.op], regs[i.dst] if i.dst else -1, len(i.src), *[regs[n] for n in i.src], *i.ints] for i in code]

        ident = executor.add_program(list(OPCODES), len(regs), rows(lst.forward), rows(lst.backward), 0, 1, 2, regs["y"],
                                     [regs[c] for c in lst.cores], [regs[n] for n in lst.saved], [regs[n] for n in outs],
                                     [regs[n] for n in lst.consts], list(lst.consts.values()))
        object.__setattr__(prog, "native", ident)
    return prog.native


@functools.lru_cache(maxsize=1024)
def _train_modes(shapes: tuple[torch.Size, ...]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(in_modes, out_modes, inner ranks) of cores with these shapes, validated once per shapes:
    on a batch-1 step the checks cost as much as a small product."""
    check_cores([torch.empty(shape, device="meta") for shape in shapes])
    return tuple(s[2] for s in shapes), tuple(s[1] for s in shapes), tuple(s[3] for s in shapes[:-1])


def tt_apply(
    x: torch.Tensor,
    cores: Sequence[torch.Tensor],
    order: OrderSetting = "rtl",
    plan: ContractionPlan | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """y = W x (+ bias) for every row of x, with W given by its TT cores; differentiable by autograd.

    x: (..., N) with N = n_1 * ... * n_d; bias: (M,). Returns (..., M) with M = m_1 * ... * m_d.
    ``order`` picks the plan (see :func:`~ttedge.tt.contract.plan_contraction`); a ``plan`` given
    instead (for these cores and x's batch) is executed as it is. The bias is added inside the
    contraction's autograd node where there is one (one node fewer per step).
    """
    shapes = tuple([c.shape for c in cores])
    lead = x.shape[:-1]
    batch = prod(lead)
    if plan is None:
        if order not in SETTINGS:
            in_modes, out_modes, ranks = _train_modes(shapes)
            plan_contraction(in_modes, out_modes, ranks, batch, order)  # raises the error for it
        prog, n_out = _setup(shapes, x.shape[-1], batch, order)
    else:
        in_modes, out_modes, ranks = _train_modes(shapes)
        _check_width(x.shape[-1], in_modes)
        if plan != plan_contraction(in_modes, out_modes, ranks, batch, plan.order, plan.groups):
            raise ShapeError("the plan given was made for other cores or another batch size.")
        prog, n_out = _program(plan, in_modes, out_modes, ranks), prod(out_modes)
    if bias is not None and bias.shape != (n_out,):
        raise ShapeError(f"bias has shape {list(bias.shape)} but the TT matrix has {n_out} outputs; "
                         f"give a bias of shape [{n_out}].")
    if prog.plain:
        y = prog.forward(x.contiguous(), cores).reshape(*lead, n_out)
        return y if bias is None else y + bias
    executor = native.executor()
    if executor is not None:
        y = executor.apply(_native_id(prog, executor), x.contiguous(), bias, list(cores))
    else:
        y = _TTContract.apply(x.contiguous(), bias, prog, *cores)  # (batch, M)
    return y if len(lead) == 1 else y.view(*lead, n_out)


def _check_width(width: int, in_modes: tuple[int, ...]) -> None:
    n_in = prod(in_modes)
    if width != n_in:
        raise ShapeError(
            f"input has {width} features but the TT matrix takes {n_in} "
            f"(the product of in_modes {list(in_modes)}); pad or reshape the input to {n_in}."
        )


@functools.lru_cache(maxsize=1024)
def _setup(shapes: tuple[torch.Size, ...], width: int, batch: int, order: OrderSetting) -> tuple[_Program, int]:
    """The program tt_apply runs for cores of these shapes, ``batch`` inputs of ``width`` features
    and an order setting, with the output width; validated and planned once per arguments (errors
    are raised, never cached). On a batch-1 step the lookups it replaces cost as much as a product."""
    in_modes, out_modes, ranks = _train_modes(shapes)
    _check_width(width, in_modes)
    plan = checked_plan(in_modes, out_modes, ranks, batch, order)
    return _program(plan, in_modes, out_modes, ranks), prod(out_modes)
