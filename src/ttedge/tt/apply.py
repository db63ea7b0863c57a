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
    view: bool  # the state entering this step is contiguous (a view suffices, no copy)
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
class _Program:
    """A plan as tt_apply runs it: its steps as _Ops, and whether plain autograd may run them (see
    ``_plain``). Made once per plan; passed to the autograd node so that forward and backward need
    not look it up again (hashing a plan costs several microseconds)."""

    order: Order
    groups: tuple[tuple[int, int], ...]
    ops: tuple[_Op, ...]
    plain: bool


@functools.lru_cache(maxsize=1024)
def _program(plan: ContractionPlan) -> _Program:
    ops, contiguous = [], True  # the input is made contiguous by tt_apply
    for s in plan.steps:
        kind = _kind(s.rows, s.contract, s.out, s.cols)
        if kind in (_COLS1, _ROWS1):
            outer = 0
        else:
            # Per-row products summed: a temporary no larger than the operands, and no copies.
            outer = 1 if s.rows * s.out * s.contract <= s.rows * (s.out + s.contract) * s.cols else 2
        ops.append(_Op(s.core, s.rows, s.contract, s.out, s.cols, kind, contiguous, outer, plan.groups[s.core]))
        contiguous = kind != _FOLD
    plain = plan.order == "rtl" and not plan.merges and all(op.kind != _FOLD and op.outer != 2 for op in ops)
    return _Program(plan.order, plan.groups, tuple(ops), plain)


def _product(kind: int, g: torch.Tensor, s: torch.Tensor, rows: int, contract: int, cols: int) -> torch.Tensor:
    """G (out, contract) applied to s, laid out as (rows, contract, cols): (rows, out, cols) entries."""
    if kind == _COLS1:
        return torch.mm(s.view(rows, contract), g.t())  # (rows, out)
    if kind == _ROWS1:
        return torch.mm(g, s.view(contract, cols))  # (out, cols)
    s = s.view(rows, contract, cols)
    if kind == _FOLD:
        folded = s.transpose(1, 2).reshape(rows * cols, contract)  # (rows * cols, contract), a copy
        return torch.mm(folded, g.t()).view(rows, cols, -1).transpose(1, 2)  # (rows, out, cols), strided
    return torch.bmm(g.expand(rows, *g.shape), s)


def _outer_sum(outer: int, e: torch.Tensor, s: torch.Tensor, op: _Op) -> torch.Tensor:
    """sum_{r, c} e[r, :, c] s[r, :, c]^T: (rows, out, cols), (rows, contract, cols) -> (out, contract)."""
    if op.kind == _COLS1:
        return torch.mm(e.view(op.rows, op.out).t(), s.view(op.rows, op.contract))
    if op.kind == _ROWS1:
        return torch.mm(e.view(op.out, op.cols), s.view(op.contract, op.cols).t())
    e, s = e.view(op.rows, op.out, op.cols), s.view(op.rows, op.contract, op.cols)
    if outer == 1:
        return torch.bmm(e, s.transpose(1, 2)).sum(0)
    return torch.tensordot(e, s, dims=([0, 2], [0, 2]))


@functools.lru_cache(maxsize=256)
def _swap_rows(a: int, b: int, c: int) -> torch.Tensor:
    """Row order that turns rows (a, b, c) into (a, c, b): see :func:`_swap_middle`."""
    return torch.arange(a * b * c).view(a, b, c).transpose(1, 2).reshape(-1)


def _swap_middle(t: torch.Tensor, a: int, b: int, c: int, d: int) -> torch.Tensor:
    """t viewed as (a, b, c, d), with its middle axes swapped: a contiguous (a, c, b, d).

    Done as a gather of the d-long rows: permute().contiguous() loops once per row with a per-row
    cost, so for short rows (the merged core of a train's last cores, d = n_d) it takes twice as
    long on the benchmark machine; for long rows the two are equal.
    """
    return t.reshape(a * b * c, d).index_select(0, _swap_rows(a, b, c)).view(a, c, b, d)


def _merge_partials(cores: Sequence[torch.Tensor], a: int, b: int) -> list[torch.Tensor]:
    """The partial products of cores a..b-1, each in core layout: [G_a, G_a G_{a+1}, ..., merged].

    Partial (r_a, M, N, r_k) times core k (r_k, m_k, n_k, r_{k+1}) is one matrix product
    (r_a M N, r_k) @ (r_k, m_k n_k r_{k+1}) followed by a permutation that interleaves the modes
    into (r_a, M m_k, N n_k, r_{k+1}), the layout of a core.
    """
    partials = [cores[a]]
    for k in range(a + 1, b):
        p, g = partials[-1], cores[k]
        ra, mm, nn, rk = p.shape
        _, mk, nk, rn = g.shape
        q = torch.mm(p.reshape(ra * mm * nn, rk), g.reshape(rk, mk * nk * rn))  # (ra, mm, nn, mk, nk, rn)
        partials.append(_swap_middle(q, ra * mm, nn, mk, nk * rn).view(ra, mm * mk, nn * nk, rn))
    return partials


def _merge_backward(partials: list[torch.Tensor], cores: Sequence[torch.Tensor], a: int,
                    grad: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of cores a..b-1 from the gradient of their merged core (r_a, M, N, r_b)."""
    grads = [torch.empty(0)] * len(partials)
    dp = grad
    for j in reversed(range(1, len(partials))):
        p, g = partials[j - 1], cores[a + j]
        ra, mm, nn, rk = p.shape
        _, mk, nk, rn = g.shape
        dq = _swap_middle(dp, ra * mm, mk, nn, nk * rn).view(ra * mm * nn, mk * nk * rn)
        grads[j] = torch.mm(p.reshape(ra * mm * nn, rk).t(), dq).view(g.shape)
        dp = torch.mm(dq, g.reshape(rk, mk * nk * rn).t()).view(p.shape)
    grads[0] = dp
    return grads


def _plain(x: torch.Tensor, ops: tuple[_Op, ...], cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """The sweep as ordinary autograd operations, for rtl plans without merges whose products
    autograd differentiates as _TTContract would (no folded or tensordot steps).

    Every core matrix is then a view of its core and every product a single mm / bmm, so autograd
    saves exactly what _TTContract saves: the state entering each step (the views of the cores
    share the parameters' storage). At batch 1 this saves the custom Function's Python forward and
    backward, about a third of a step of the MNIST layer.
    """
    t = x
    for op in ops:
        c = cores[op.core]
        t = _product(op.kind, c.reshape(op.out, op.contract), t, op.rows, op.contract, op.cols)
    return t


class _TTContract(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, prog: _Program, *cores: torch.Tensor) -> torch.Tensor:
        # Kept for backward: the state entering each step and every merge's product (the merged
        # cores and, for runs of three or more, the partial products before them); the plan's
        # saved_elements counts exactly these.
        order, ops = prog.order, prog.ops
        partials = [[cores[a]] if b - a == 1 else _merge_partials(cores, a, b) for a, b in prog.groups]
        mats = [core_matrix(ps[-1], order) for ps in partials]
        states, t = [], x
        for op in ops:
            s = t if op.view else t.reshape(op.rows, op.contract, op.cols)
            states.append(s)
            t = _product(op.kind, mats[op.core], s, op.rows, op.contract, op.cols)
        ctx.prog = prog
        ctx.save_for_backward(*states, *cores, *(p for ps in partials for p in ps[1:]))
        return t

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        prog: _Program = ctx.prog
        order, ops, groups = prog.order, prog.ops, prog.groups
        saved = ctx.saved_tensors
        nsteps = len(ops)
        ncores = groups[-1][1]
        states, cores, kept = saved[:nsteps], saved[nsteps:nsteps + ncores], iter(saved[nsteps + ncores:])
        needs = ctx.needs_input_grad
        partials = [[cores[a], *(next(kept) for _ in range(b - a - 1))] for a, b in groups]
        grad_swept: list[torch.Tensor | None] = [None] * len(partials)
        e = grad.contiguous()
        for i in range(nsteps - 1, -1, -1):
            op = ops[i]
            a, b = op.grads
            core = partials[op.core][-1]
            g = core_matrix(core, order)
            if any(needs[2 + a : 2 + b]):
                dg = _outer_sum(op.outer, e, states[i], op)
                grad_swept[op.core] = core_from_matrix(dg, core.shape, order)
            if i > 0 or needs[0]:
                e = _product(op.kind, g.t(), e, op.rows, op.out, op.cols)
                if op.kind == _FOLD:
                    e = e.contiguous()  # strided (rows, contract, cols)
        grad_cores: list[torch.Tensor | None] = [None] * len(cores)
        for (a, b), ps, gs in zip(groups, partials, grad_swept):
            if gs is not None:
                grad_cores[a:b] = [gs] if b - a == 1 else _merge_backward(ps, cores, a, gs)
        grad_x = e.view(states[0].shape) if needs[0] else None
        return (grad_x, None, *grad_cores)


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
) -> torch.Tensor:
    """y = W x for every row of x, with W given by its TT cores; differentiable by autograd.

    x: (..., N) with N = n_1 * ... * n_d. Returns (..., M) with M = m_1 * ... * m_d.
    ``order`` picks the plan (see :func:`~ttedge.tt.contract.plan_contraction`); a ``plan`` given
    instead (for these cores and x's batch) is executed as it is.
    """
    in_modes, out_modes, ranks = _train_modes(tuple(c.shape for c in cores))
    n_in = prod(in_modes)
    if x.shape[-1] != n_in:
        raise ShapeError(
            f"input has {x.shape[-1]} features but the TT matrix takes {n_in} "
            f"(the product of in_modes {list(in_modes)}); pad or reshape the input to {n_in}."
        )
    lead = x.shape[:-1]
    batch = prod(lead)
    if plan is None:
        if order not in SETTINGS:
            plan_contraction(in_modes, out_modes, ranks, batch, order)  # raises the error for it
        plan = checked_plan(in_modes, out_modes, ranks, batch, order)
    elif plan != plan_contraction(in_modes, out_modes, ranks, batch, plan.order, plan.groups):
        raise ShapeError("the plan given was made for other cores or another batch size.")
    prog = _program(plan)
    if prog.plain:
        y = _plain(x.contiguous(), prog.ops, cores)
    else:
        y = _TTContract.apply(x.contiguous(), prog, *cores)  # (rows, out, cols) of the last step
    return y.reshape(*lead, prod(out_modes))
