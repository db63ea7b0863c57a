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

from collections.abc import Sequence
from typing import Any

import torch

from ..errors import ShapeError
from .contract import ContractionPlan, Order, plan_contraction
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


def _product(g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """(out, contract) x (rows, contract, cols) -> (rows, out, cols), as one GEMM where possible."""
    rows, contract, cols = s.shape
    if cols == 1:
        return (s.reshape(rows, contract) @ g.T).unsqueeze(2)
    if rows == 1:
        return (g @ s[0]).unsqueeze(0)
    return torch.matmul(g, s)


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
    return torch.tensordot(e, s, dims=([0, 2], [0, 2]))


class _TTContract(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, plan: ContractionPlan, *cores: torch.Tensor) -> torch.Tensor:
        states, t = [], x
        for step in plan.steps:
            s = t.reshape(step.rows, step.contract, step.cols)
            states.append(s)
            t = _product(core_matrix(cores[step.core], plan.order), s)
        ctx.plan, ctx.input_shape = plan, x.shape
        ctx.save_for_backward(*states, *cores)
        return t

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        plan: ContractionPlan = ctx.plan
        saved = ctx.saved_tensors
        states, cores = saved[: len(plan.steps)], saved[len(plan.steps) :]
        grad_cores: list[torch.Tensor | None] = [None] * len(cores)
        e = grad
        for i in reversed(range(len(plan.steps))):
            step = plan.steps[i]
            e = e.reshape(step.rows, step.out, step.cols)
            g = core_matrix(cores[step.core], plan.order)
            if ctx.needs_input_grad[2 + step.core]:
                grad_cores[step.core] = core_from_matrix(_outer_sum(e, states[i]), cores[step.core].shape, plan.order)
            if i > 0 or ctx.needs_input_grad[0]:
                e = _product_t(g, e)
        grad_x = e.reshape(ctx.input_shape) if ctx.needs_input_grad[0] else None
        return (grad_x, None, *grad_cores)


def tt_apply(x: torch.Tensor, cores: Sequence[torch.Tensor], order: Order = "rtl") -> torch.Tensor:
    """y = W x for every row of x, with W given by its TT cores; differentiable by autograd.

    x: (..., N) with N = n_1 * ... * n_d. Returns (..., M) with M = m_1 * ... * m_d.
    """
    check_cores(cores)
    in_modes = [c.shape[2] for c in cores]
    out_modes = [c.shape[1] for c in cores]
    n_in = prod(in_modes)
    if x.shape[-1] != n_in:
        raise ShapeError(
            f"input has {x.shape[-1]} features but the TT matrix takes {n_in} "
            f"(the product of in_modes {in_modes}); pad or reshape the input to {n_in}."
        )
    lead = x.shape[:-1]
    ranks = [c.shape[3] for c in cores[:-1]]
    plan = plan_contraction(in_modes, out_modes, ranks, prod(lead), order)
    y = _TTContract.apply(x, plan, *cores)  # (rows, out, cols) of the last step
    return y.reshape(*lead, prod(out_modes))
