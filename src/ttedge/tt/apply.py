"""Applying a TT matrix to a batch without forming the dense matrix: one autograd node.

Forward keeps exactly the state entering each contraction step (the first is the input itself, a
view, not a copy) and nothing else, so what a training step stores is what
:class:`~ttedge.tt.contract.ContractionPlan` says it stores. Backward walks the steps in reverse:

    core gradient   dG = sum over rows and cols of  e[r, :, c] (x) s[r, :, c]    (out, contract)
    input error     s_err[r, :, c] = G^T e[r, :, c]                               (rows, contract, cols)

where s is the kept state and e the error arriving at the step's output. No dense dW is formed:
this is the same schedule the fixed-point training program follows.
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
from .modes import prod

__all__ = ["tt_apply", "core_matrix", "core_from_matrix"]


def core_matrix(core: torch.Tensor, order: Order) -> torch.Tensor:
    """Core (r0, m, n, r1) as the (out, contract) matrix of its step: (r0 m, n r1) for rtl,
    (m r1, r0 n) for ltr; a view for rtl (of a contiguous core), a copy for ltr."""
    r0, m, n, r1 = core.shape
    if order == "rtl":
        return core.reshape(r0 * m, n * r1)
    return core.permute(1, 3, 0, 2).reshape(m * r1, r0 * n)


def core_from_matrix(mat: torch.Tensor, shape: torch.Size, order: Order) -> torch.Tensor:
    """Inverse of :func:`core_matrix`: an (out, contract) matrix back to core layout."""
    r0, m, n, r1 = shape
    if order == "rtl":
        return mat.reshape(r0, m, n, r1)
    return mat.reshape(m, r1, r0, n).permute(2, 0, 3, 1)


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
    source: str = ""  # the generated functions, for reading (set by _program)
    forward: Any = None  # (x, bias, cores) -> (y, saved); with ``plain``: (x, cores) -> the last step's output, in autograd ops
    backward: Any = None  # (grad, saved, needs) -> (grad_x, *grad_cores)


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
    source, names = _compile(prog)
    space: dict[str, Any] = {"mm": torch.mm, "addmm": torch.addmm, "bmm": torch.bmm, "tensordot": torch.tensordot,
                             "core_matrix": core_matrix, "core_from_matrix": core_from_matrix, **names}
    exec(compile(source, f"<tt program {plan.order} {plan.groups} batch {plan.batch}>", "exec"), space)
    object.__setattr__(prog, "source", source)
    object.__setattr__(prog, "forward", space["forward"])
    object.__setattr__(prog, "backward", space.get("backward"))
    return prog


# The products of a step, as source (the straight-line functions _compile writes). A step of a
# (rows, contract, cols) state multiplies G (out, contract): with one column or one row it is a
# single plain GEMM on a 2-D view of the state; else see the note at _LARGE_CORE.

def _operand(kind: int, t: str, rows: int, inner: int, cols: int) -> str:
    """t, (rows, inner, cols) entries, as a step of this kind multiplies it: (rows, inner) for
    _COLS1, (inner, cols) for _ROWS1, else (rows, inner, cols); a view unless t is strided."""
    if kind == _COLS1:
        return f"{t}.reshape({rows}, {inner})"
    if kind == _ROWS1:
        return f"{t}.reshape({inner}, {cols})"
    return f"{t}.reshape({rows}, {inner}, {cols})"


def _product(kind: int, g: str, s: str, rows: int, inner: int, cols: int, back: bool = False,
             bias: str | None = None) -> str:
    """The matrix ``g`` (G, or with ``back`` G^T, of ``inner`` columns either way) applied to the
    operand ``s`` of a (rows, inner, cols) state (see :func:`_operand`): (rows, its rows, cols)
    entries, 2-D for _COLS1 and _ROWS1. A ``bias`` (its rows, cols), given for a one-row last step
    (batch 1), is added by the GEMM."""
    g, gt = (f"{g}.t()", g) if back else (g, f"{g}.t()")
    if kind == _COLS1:
        return f"mm({s}, {gt})"
    if kind == _ROWS1:
        return f"mm({g}, {s})" if bias is None else f"addmm({bias}, {g}, {s})"
    if kind == _FOLD:  # (rows * cols, inner), a copy, through one GEMM; (rows, out, cols) strided
        return f"mm({s}.transpose(1, 2).reshape({rows * cols}, {inner}), {gt}).view({rows}, {cols}, -1).transpose(1, 2)"
    return f"bmm({g}.expand({rows}, -1, -1), {s})"


def _outer_sum(outer: int, kind: int, e: str, s: str) -> str:
    """sum_{r, c} e[r, :, c] s[r, :, c]^T, from the operands (see :func:`_operand`) of e
    (rows, out, cols) and s (rows, contract, cols): the (out, contract) core gradient."""
    if kind == _COLS1:
        return f"mm({e}.t(), {s})"
    if kind == _ROWS1:
        return f"mm({e}, {s}.t())"
    if outer == 1:
        return f"bmm({e}, {s}.transpose(1, 2)).sum(0)"
    return f"tensordot({e}, {s}, dims=([0, 2], [0, 2]))"


@functools.lru_cache(maxsize=256)
def _swap_rows(a: int, b: int, c: int) -> torch.Tensor:
    """Row order that turns rows (a, b, c) into (a, c, b): gathering the d-long rows of a
    (a, b, c, d) tensor in this order swaps its middle axes. permute().contiguous() loops once per
    row with a per-row cost, so for short rows (the merged core of a train's last cores, d = n_d)
    it takes twice as long on the benchmark machine; for long rows the two are equal."""
    return torch.arange(a * b * c).view(a, b, c).transpose(1, 2).reshape(-1)


def _compile(prog: _Program) -> tuple[str, dict[str, torch.Tensor]]:
    """Python source of ``forward`` and ``backward`` for ``prog``, every shape a constant, and the
    row orders it gathers by (names in the source).

    forward(x, bias, cores): each group's merges (partial @ core, then a row gather into core
    layout, :class:`_MergeOp`), then the steps; returns y (batch, M) and what backward needs: the
    state entering each step, the cores, every merge's product (the merged cores and, for runs of
    three or more, the partial products before them). The plan's saved_elements counts exactly
    these. backward(grad, saved, needs): the steps in reverse (module docstring); a merged core's
    gradient goes back through its merges, each a row gather and two GEMMs; ``needs`` is the
    autograd node's needs_input_grad (x, bias, prog, *cores).

    With ``plain`` (rtl, no merges, no folded or tensordot steps) only forward(x, cores), in plain
    autograd operations: every core matrix is a view of its core and every product one mm / bmm,
    so autograd saves exactly what the node would (the state entering each step); at batch 1 this
    saves the node's own overhead, about a third of a step of the MNIST layer.
    """
    ncores = len(prog.shapes)
    cores = [f"c{k}" for k in range(ncores)]
    names: dict[str, torch.Tensor] = {}
    out = []
    unpack = f"    {', '.join(cores)}, = cores"
    last = prog.ops[-1]
    if prog.plain:
        out += ["def forward(x, cores):", unpack, "    t = x"]
        for op in prog.ops:
            g = f"c{op.core}.reshape({op.out}, {op.contract})"
            out.append(f"    t = {_product(op.kind, g, _operand(op.kind, 't', op.rows, op.contract, op.cols), op.rows, op.contract, op.cols)}")
        out.append("    return t  # (rows, out, cols) entries of the last step; tt_apply shapes them")
        return "\n".join(out) + "\n", names

    # forward: the swept cores (w<g>), kept merge products (k<g>_<j>), states (s<i>)
    out += ["def forward(x, bias, cores):", unpack]
    swept, partials, kept = [], [], []
    for gi, ((a, _), merges, matrix) in enumerate(zip(prog.groups, prog.merges, prog.matrix)):
        p, chain = f"c{a}", [f"c{a}"]
        for j, mg in enumerate(merges):
            names[f"_f{gi}_{j}"], names[f"_b{gi}_{j}"] = mg.forward, mg.backward
            q = f"mm({p}.reshape({mg.left}, {mg.rank}), c{mg.core}.reshape({mg.rank}, {mg.right}))"
            out.append(f"    k{gi}_{j} = {q}.view(-1, {mg.row}).index_select(0, _f{gi}_{j}).view{mg.shape}")
            p = f"k{gi}_{j}"
            chain.append(p)
            kept.append(p)
        partials.append(chain)
        swept.append(p if matrix else f"w{gi}")
    matrices = [f"    w{gi} = core_matrix({chain[-1]}, {prog.order!r})" for gi, chain in enumerate(partials) if not prog.matrix[gi]]
    out += matrices
    t = "x"
    for i, op in enumerate(prog.ops):
        out.append(f"    s{i} = {_operand(op.kind, t, op.rows, op.contract, op.cols)}")
        product = _product(op.kind, swept[op.core], f"s{i}", op.rows, op.contract, op.cols)
        if op is last and op.kind == _ROWS1:  # the bias, if any, added by the last GEMM
            fused = _product(op.kind, swept[op.core], f"s{i}", op.rows, op.contract, op.cols, bias=f"bias.view({op.out}, {op.cols})")
            out.append(f"    t = {product} if bias is None else {fused}")
        else:
            out.append(f"    t = {product}")
        t = "t"
    out.append(f"    y = t.reshape({prog.batch}, {prog.out_features})")
    if last.kind != _ROWS1:
        out.append("    if bias is not None:\n        y = y.add_(bias)  # a fresh tensor, saved by nobody")
    saved = [f"s{i}" for i in range(len(prog.ops))] + cores + kept
    out.append(f"    return y, ({', '.join(saved)},)")

    # backward
    out += ["", "def backward(grad, saved, needs):", f"    {', '.join(saved)}, = saved",
            f"    {' = '.join(f'd{k}' for k in range(ncores))} = None", *matrices, "    e = grad"]
    for i in range(len(prog.ops) - 1, -1, -1):
        op = prog.ops[i]
        a, b = op.grads
        g, matrix = swept[op.core], prog.matrix[op.core]
        out.append(f"    e = {_operand(op.kind, 'e', op.rows, op.out, op.cols)}")
        out.append(f"    if {' or '.join(f'needs[{3 + k}]' for k in range(a, b))}:")
        dg = _outer_sum(op.outer, op.kind, "e", f"s{i}")
        chain = partials[op.core]
        if not matrix:
            shape = prog.shapes[a] if b - a == 1 else prog.merges[op.core][-1].shape
            dg = f"core_from_matrix({dg}, {shape}, {prog.order!r})"
        if b - a == 1:
            out.append(f"        d{a} = {dg}")
        else:
            out.append(f"        dp = {dg}")
            for j in range(len(prog.merges[op.core]) - 1, -1, -1):
                mg = prog.merges[op.core][j]
                out += [f"        dq = dp.reshape(-1, {mg.row}).index_select(0, _b{op.core}_{j}).view({mg.left}, {mg.right})",
                        f"        d{mg.core} = mm({chain[j]}.reshape({mg.left}, {mg.rank}).t(), dq).view{prog.shapes[mg.core]}",
                        f"        dp = mm(dq, c{mg.core}.reshape({mg.rank}, {mg.right}).t())  # the partial before"]
            out.append(f"        d{a} = dp.view{prog.shapes[a]}")
        back = f"e = {_product(op.kind, g, 'e', op.rows, op.out, op.cols, back=True)}  # the error entering the step"
        out.append(f"    {back}" if i > 0 else f"    if needs[0]:\n        {back}")
    out.append(f"    return (e if needs[0] else None), {', '.join(f'd{k}' for k in range(ncores))}")
    return "\n".join(out) + "\n", names


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
        prog: _Program = ctx.prog
        needs = ctx.needs_input_grad  # x, bias, prog, *cores
        grad_x, *grad_cores = prog.backward(grad, ctx.saved_tensors, needs)
        grad_bias = None
        if needs[1]:
            grad_bias = grad.reshape(prog.out_features) if prog.batch == 1 else grad.reshape(prog.batch, -1).sum(0)
        return (None if grad_x is None else grad_x.reshape(ctx.x_shape), grad_bias, None, *grad_cores)


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
