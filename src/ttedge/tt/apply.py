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
from typing import Any

import torch

from ..errors import ShapeError
from .contract import SETTINGS, ContractionPlan, Order, OrderSetting, checked_plan, plan_contraction
from .cores import check_cores
from .modes import prod

__all__ = ["tt_apply", "core_matrix", "core_from_matrix"]


def core_matrix(core: torch.Tensor, order: Order) -> torch.Tensor:
    """Core (r0, m, n, r1) as the (out, contract) matrix of its step: (r0 m, n r1) for rtl,
    (m r1, r0 n) for ltr."""
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
# one GEMM is faster.
_LARGE_CORE = 1 << 18  # entries of G (1 MiB in float32)
_NARROW = 16


def _product(g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """(out, contract) x (rows, contract, cols) -> (rows, out, cols), as one GEMM where possible."""
    rows, contract, cols = s.shape
    if cols == 1:
        return s.reshape(rows, contract) @ g.T  # (rows, out): the caller reshapes
    if rows == 1:
        return g @ s[0]  # (out, cols)
    if cols <= _NARROW and g.numel() >= _LARGE_CORE:
        folded = s.transpose(1, 2).reshape(rows * cols, contract)  # (rows * cols, contract), a copy
        return (folded @ g.T).view(rows, cols, -1).transpose(1, 2)  # (rows, out, cols), strided
    return torch.bmm(g.expand(rows, *g.shape), s)


def _product_t(g: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """(out, contract)^T x (rows, out, cols) -> (rows, contract, cols)."""
    return _product(g.T, e)


def _outer_sum(e: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """sum_{r, c} e[r, :, c] s[r, :, c]^T: (rows, out, cols), (rows, contract, cols) -> (out, contract)."""
    rows, out, cols = e.shape
    contract = s.shape[1]
    if cols == 1:
        return e.reshape(rows, out).T @ s.reshape(rows, contract)
    if rows == 1:
        return e[0] @ s[0].T
    if rows * out * contract <= rows * (out + contract) * cols:
        # Per-row products summed: a temporary no larger than the operands, and no copies.
        return torch.bmm(e, s.transpose(1, 2)).sum(0)
    return torch.tensordot(e, s, dims=([0, 2], [0, 2]))


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
        q = (p.reshape(ra * mm * nn, rk) @ g.reshape(rk, mk * nk * rn)).view(ra, mm, nn, mk, nk, rn)
        partials.append(q.permute(0, 1, 3, 2, 4, 5).reshape(ra, mm * mk, nn * nk, rn))
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
        dq = dp.view(ra, mm, mk, nn, nk, rn).permute(0, 1, 3, 2, 4, 5).reshape(ra * mm * nn, mk * nk * rn)
        grads[j] = (p.reshape(ra * mm * nn, rk).T @ dq).view(g.shape)
        dp = (dq @ g.reshape(rk, mk * nk * rn).T).view(p.shape)
    grads[0] = dp
    return grads


class _TTContract(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, plan: ContractionPlan, *cores: torch.Tensor) -> torch.Tensor:
        # Merged cores are not saved: backward rebuilds them from the cores (batch-independent work),
        # so what is stored is the states alone, as the plan's in_elements say.
        swept = [cores[a] if b - a == 1 else _merge_partials(cores, a, b)[-1] for a, b in plan.groups]
        states, t = [], x
        for step in plan.steps:
            s = t.reshape(step.rows, step.contract, step.cols)
            states.append(s)
            t = _product(core_matrix(swept[step.core], plan.order), s)
        ctx.plan, ctx.input_shape = plan, x.shape
        ctx.save_for_backward(*states, *cores)
        return t

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        plan: ContractionPlan = ctx.plan
        saved = ctx.saved_tensors
        states, cores = saved[: len(plan.steps)], saved[len(plan.steps) :]
        needs = ctx.needs_input_grad
        partials = [[cores[a]] if b - a == 1 else _merge_partials(cores, a, b) for a, b in plan.groups]
        swept = [p[-1] for p in partials]
        grad_swept: list[torch.Tensor | None] = [None] * len(swept)
        e = grad
        for i in reversed(range(len(plan.steps))):
            step = plan.steps[i]
            a, b = plan.groups[step.core]
            e = e.reshape(step.rows, step.out, step.cols)
            g = core_matrix(swept[step.core], plan.order)
            if any(needs[2 + a : 2 + b]):
                grad_swept[step.core] = core_from_matrix(_outer_sum(e, states[i]), swept[step.core].shape, plan.order)
            if i > 0 or needs[0]:
                e = _product_t(g, e)
        grad_cores: list[torch.Tensor | None] = [None] * len(cores)
        for (a, b), ps, gs in zip(plan.groups, partials, grad_swept):
            if gs is not None:
                grad_cores[a:b] = [gs] if b - a == 1 else _merge_backward(ps, cores, a, gs)
        grad_x = e.reshape(ctx.input_shape) if needs[0] else None
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
    y = _TTContract.apply(x, plan, *cores)  # (rows, out, cols) of the last step
    return y.reshape(*lead, prod(out_modes))
