"""Contraction plans: the matrix products that apply a TT matrix to a batch, with their costs.

y = W x is computed as d batched matrix products, one core at a time, in one of two orders:

- right-to-left ("rtl", core d first, as the research code does). Before core k the state is laid
  out as (B, n_1..n_{k-1}, n_k, r_k, m_{k+1}..m_d); core k, viewed as the (r_{k-1} m_k, n_k r_k)
  matrix it already is in memory, turns (n_k, r_k) into (r_{k-1}, m_k).
- left-to-right ("ltr", core 1 first). Before core k the state is (B, m_1..m_{k-1}, r_{k-1}, n_k,
  n_{k+1}..n_d); core k, permuted to (m_k r_k, r_{k-1} n_k), turns (r_{k-1}, n_k) into (m_k, r_k).

In both layouts the indices a step contracts are adjacent, so every step is one broadcast matrix
product (rows, out, cols) = G (out, contract) @ state (rows, contract, cols) and the state is never
transposed in memory. :class:`ContractionPlan` lists these products with their sizes; ``tt_apply``
(in ``apply.py``) executes exactly this list, so MAC counts and buffer sizes come from the same
description the computation follows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import ShapeError
from .modes import check_modes, prod

__all__ = ["Order", "Step", "ContractionPlan", "plan_contraction", "best_order"]

Order = Literal["rtl", "ltr"]
ORDERS: tuple[Order, ...] = ("rtl", "ltr")


@dataclass(frozen=True)
class Step:
    """One contraction: state (rows, contract, cols) -> (rows, out, cols) with core ``core``."""

    core: int  # index of the core used, 0-based
    rows: int  # independent leading rows: batch times the modes not yet reached
    contract: int  # contracted length (n_k r_k for rtl, r_{k-1} n_k for ltr)
    out: int  # produced length (r_{k-1} m_k for rtl, m_k r_k for ltr)
    cols: int  # independent trailing columns: the modes already produced (rtl) or still to come (ltr)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of this step."""
        return self.rows * self.contract * self.out * self.cols

    @property
    def in_elements(self) -> int:
        return self.rows * self.contract * self.cols

    @property
    def out_elements(self) -> int:
        return self.rows * self.out * self.cols


@dataclass(frozen=True)
class ContractionPlan:
    """The sequence of matrix products that applies a TT matrix to ``batch`` inputs."""

    order: Order
    batch: int
    steps: tuple[Step, ...]

    @property
    def macs(self) -> int:
        """Forward multiply-accumulates. Backward costs twice this (input error and core gradient
        are each one product of the same size per step)."""
        return sum(s.macs for s in self.steps)

    @property
    def peak(self) -> int:
        """Elements of the largest intermediate state, counting the output but not the input."""
        return max(s.out_elements for s in self.steps)


def plan_contraction(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: Sequence[int],
    batch: int = 1,
    order: Order = "rtl",
) -> ContractionPlan:
    """Describe the d products of :func:`tt_apply` for ``batch`` inputs in ``order``."""
    check_modes(in_modes, out_modes, ranks)
    if order not in ORDERS:
        raise ShapeError(f"unknown contraction order {order!r}; use one of {', '.join(ORDERS)}.")
    return _plan(tuple(in_modes), tuple(out_modes), tuple(ranks), batch, order)


# Layers ask for their plan (and TTLinear with order="auto" for its best order) on every forward;
# building both took about 60 us, 5-10% of a batch-1 forward+backward of the MNIST layer. Plans are
# immutable, so each is built once per shape. Only validated arguments reach the caches:
# check_modes rejects bools, which would otherwise hit the entries of the equal ints.
@functools.lru_cache(maxsize=1024)
def _plan(
    n: tuple[int, ...], m: tuple[int, ...], ranks: tuple[int, ...], batch: int, order: Order
) -> ContractionPlan:
    r, d = [1, *ranks, 1], len(n)
    if order == "rtl":
        steps = [
            Step(k, batch * prod(n[:k]), n[k] * r[k + 1], r[k] * m[k], prod(m[k + 1 :]))
            for k in reversed(range(d))
        ]
    else:
        steps = [
            Step(k, batch * prod(m[:k]), r[k] * n[k], m[k] * r[k + 1], prod(n[k + 1 :]))
            for k in range(d)
        ]
    return ContractionPlan(order, batch, tuple(steps))


def best_order(in_modes: Sequence[int], out_modes: Sequence[int], ranks: Sequence[int]) -> Order:
    """The order with fewer MACs, then the smaller peak state (both scale with batch alike)."""
    check_modes(in_modes, out_modes, ranks)
    return _best_order(tuple(in_modes), tuple(out_modes), tuple(ranks))


@functools.lru_cache(maxsize=1024)
def _best_order(n: tuple[int, ...], m: tuple[int, ...], ranks: tuple[int, ...]) -> Order:
    plans = [_plan(n, m, ranks, 1, o) for o in ORDERS]
    return min(plans, key=lambda p: (p.macs, p.peak)).order
