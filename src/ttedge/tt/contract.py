"""Contraction plans: the matrix products that apply a TT matrix to a batch, with their costs.

y = W x is computed as a sweep of batched matrix products, one core at a time, in one of two
directions:

- right-to-left ("rtl", core d first, as the research code does). Before core k the state is laid
  out as (B, n_1..n_{k-1}, n_k, r_k, m_{k+1}..m_d); core k, viewed as the (r_{k-1} m_k, n_k r_k)
  matrix it already is in memory, turns (n_k, r_k) into (r_{k-1}, m_k).
- left-to-right ("ltr", core 1 first). Before core k the state is (B, m_1..m_{k-1}, r_{k-1}, n_k,
  n_{k+1}..n_d); core k, permuted to (m_k r_k, r_{k-1} n_k), turns (r_{k-1}, n_k) into (m_k, r_k).

In both layouts the indices a step contracts are adjacent, so every step is one broadcast matrix
product (rows, out, cols) = G (out, contract) @ state (rows, contract, cols).

A plan may first merge runs of neighbouring cores into one coarser core (cores k..l-1 become one
core (r_{k-1}, m_k..m_{l-1}, n_k..n_{l-1}, r_{l-1})) and sweep over the coarser train. Merging
costs a few products that do not depend on the batch, and can cut the sweep's MACs: for
[8, 8, 8, 8] at rank 16, merging cores (1, 2) and (3, 4) halves them. A plan never merges all cores
of a train with d >= 2 (that would be the dense weight, which training never forms).

Order "auto" picks, for the given batch, the grouping and direction with the lowest
:func:`plan_cost`: forward MACs (merges included) plus a fixed overhead per product, so that at
batch 1, where per-call overhead dominates, it prefers fewer products over fewer MACs. :class:`ContractionPlan` lists all products with their sizes; ``tt_apply`` (in
``apply.py``) executes exactly this list, so MAC counts and buffer sizes come from the same
description the computation follows.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import ShapeError
from .modes import check_modes, prod

__all__ = ["Order", "OrderSetting", "Step", "Merge", "ContractionPlan", "plan_contraction", "plan_cost", "best_order"]

Order = Literal["rtl", "ltr"]  # direction of the sweep
OrderSetting = Literal["rtl", "ltr", "auto"]  # what callers ask for; "auto" also chooses merges
ORDERS: tuple[Order, ...] = ("rtl", "ltr")
SETTINGS: tuple[OrderSetting, ...] = ("auto", "rtl", "ltr")


@dataclass(frozen=True)
class Step:
    """One contraction: state (rows, contract, cols) -> (rows, out, cols) with core ``core``."""

    core: int  # index of the (possibly merged) core used, 0-based, in ContractionPlan.groups
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
class Merge:
    """One product of a core merge: partial (left, rank) @ core (rank, right) -> (left, right).

    The partial product of cores a..k-1 is (r_{a-1}, M, N, r_{k-1}) with M, N the products of their
    modes, so left = r_{a-1} M N; core k is (r_{k-1}, m_k n_k r_k), so right = m_k n_k r_k. The
    result is then permuted to (r_{a-1}, M m_k, N n_k, r_k), the layout of a core.
    """

    group: int  # index of the merged core being built
    core: int  # original core multiplied in (the group's first core is the initial partial)
    left: int
    rank: int
    right: int

    @property
    def macs(self) -> int:
        return self.left * self.rank * self.right

    @property
    def out_elements(self) -> int:
        return self.left * self.right


@dataclass(frozen=True)
class ContractionPlan:
    """The matrix products that apply a TT matrix to ``batch`` inputs: merges, then the sweep."""

    order: Order  # direction of the sweep
    batch: int
    steps: tuple[Step, ...]
    groups: tuple[tuple[int, int], ...]  # original cores [start, stop) forming each swept core
    merges: tuple[Merge, ...] = ()  # in execution order; empty when every group is one core

    @property
    def macs(self) -> int:
        """Forward multiply-accumulates, merges included. Backward costs about twice the sweep's
        (input error and core gradient are each one product of the same size per step) plus twice
        the merges' (kept from forward, each is differentiated by two products)."""
        return sum(s.macs for s in self.steps) + sum(m.macs for m in self.merges)

    @property
    def saved_elements(self) -> int:
        """Entries kept from forward for backward: the state entering each step (the first is the
        input) and every merge's product. Keeping the merged cores costs batch-independent memory
        but saves rebuilding them in backward, a third of a batch-1 step of [8, 8, 8, 8]."""
        return sum(s.in_elements for s in self.steps) + sum(m.out_elements for m in self.merges)

    @property
    def peak(self) -> int:
        """Elements of the largest intermediate state, counting the output but not the input."""
        return max(s.out_elements for s in self.steps)

    def describe(self) -> str:
        """The direction, and the merged core runs (1-based, inclusive) if any: "rtl", "ltr 1-2 3-4"."""
        runs = [f"{a + 1}-{b}" for a, b in self.groups if b - a > 1]
        return " ".join([self.order, *runs])


def plan_contraction(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: Sequence[int],
    batch: int = 1,
    order: OrderSetting = "rtl",
    groups: Sequence[tuple[int, int]] | None = None,
) -> ContractionPlan:
    """Describe the products of :func:`tt_apply` for ``batch`` inputs.

    "rtl" and "ltr" sweep the cores as they are, or, with ``groups`` (runs [start, stop) of
    0-based core indices covering all cores in order), the cores merged run by run. "auto" returns
    the plan with the lowest :func:`plan_cost` at this batch over both directions and every grouping.
    """
    check_modes(in_modes, out_modes, ranks)
    if order not in SETTINGS:
        raise ShapeError(f"unknown contraction order {order!r}; use one of {', '.join(ORDERS)}, auto.")
    d = len(in_modes)
    if groups is None:
        return checked_plan(tuple(in_modes), tuple(out_modes), tuple(ranks), batch, order)
    if order == "auto":
        raise ShapeError("order 'auto' chooses the groups itself; pass rtl or ltr with groups.")
    runs = tuple((int(a), int(b)) for a, b in groups)
    if runs not in _groupings(d):
        raise ShapeError(
            f"groups {list(groups)} must split cores 0..{d - 1} into runs [start, stop) of neighbours, "
            f"in order, and not all into one run."
        )
    return _plan(tuple(in_modes), tuple(out_modes), tuple(ranks), batch, order, runs)


def checked_plan(
    n: tuple[int, ...], m: tuple[int, ...], ranks: tuple[int, ...], batch: int, order: OrderSetting
) -> ContractionPlan:
    """:func:`plan_contraction` without ``groups``, for modes and order already validated (the
    per-call path of ``tt_apply``, which validates once per core shapes)."""
    if order == "auto":
        return _auto_plan(n, m, ranks, batch)
    return _plan(n, m, ranks, batch, order, tuple((k, k + 1) for k in range(len(n))))


# Layers ask for their plan on every forward; building one took about 30 us, and "auto" compares
# 2^d of them. Plans are immutable, so each is built once per shape. Only validated arguments reach
# the caches: check_modes rejects bools, which would otherwise hit the entries of the equal ints.
@functools.lru_cache(maxsize=1024)
def _plan(
    n: tuple[int, ...], m: tuple[int, ...], ranks: tuple[int, ...], batch: int, order: Order,
    groups: tuple[tuple[int, int], ...],
) -> ContractionPlan:
    r = [1, *ranks, 1]
    merges = []
    for g, (a, b) in enumerate(groups):
        for k in range(a + 1, b):
            left = r[a] * prod(m[a:k]) * prod(n[a:k])
            merges.append(Merge(g, k, left, r[k], m[k] * n[k] * r[k + 1]))
    # The coarser train the sweep sees.
    gn = [prod(n[a:b]) for a, b in groups]
    gm = [prod(m[a:b]) for a, b in groups]
    gr = [r[a] for a, _ in groups] + [1]
    d = len(groups)
    if order == "rtl":
        steps = [
            Step(k, batch * prod(gn[:k]), gn[k] * gr[k + 1], gr[k] * gm[k], prod(gm[k + 1 :]))
            for k in reversed(range(d))
        ]
    else:
        steps = [
            Step(k, batch * prod(gm[:k]), gr[k] * gn[k], gm[k] * gr[k + 1], prod(gn[k + 1 :]))
            for k in range(d)
        ]
    return ContractionPlan(order, batch, tuple(steps), groups, tuple(merges))


@functools.lru_cache(maxsize=16)
def _groupings(d: int) -> list[tuple[tuple[int, int], ...]]:
    """Every split of cores 0..d-1 into runs of neighbours, except one run of all d when d >= 2."""
    out = []
    for cuts in itertools.product((False, True), repeat=d - 1):
        bounds = [0, *(k + 1 for k, cut in enumerate(cuts) if cut), d]
        if d == 1 or len(bounds) > 2:
            out.append(tuple(zip(bounds[:-1], bounds[1:])))
    return out


# Order "auto" minimizes an estimated time, in MAC-equivalents: the plan's forward MACs plus a fixed
# overhead per product. At batch 1 the MNIST layer's whole step is a few million MACs and its time
# is mostly per-call overhead (dispatch, Python, the autograd node): there fewer, larger products
# win even with more MACs (rtl without merges, 1.7M MACs, ran faster than ltr 1-2 at 0.7M). An ltr
# step also permutes its core into a copy, forward and backward; a merge is a product in forward,
# kept and differentiated in backward. Plans with either run inside one custom autograd node,
# whose Python forward and backward cost about two units more; an rtl sweep without merges runs as
# plain autograd operations (``apply.py``). At batch 64 the MACs dominate and "auto" keeps the
# MAC-minimal plans. One overhead unit is about what this many MACs cost in a small GEMM on one
# core of the benchmark machine (benchmarks/README.md).
PRODUCT_OVERHEAD_MACS = 250_000
_STEP_UNITS = {"rtl": 1, "ltr": 2}
_MERGE_UNITS = 3
_NODE_UNITS = 2


def plan_cost(plan: ContractionPlan) -> int:
    """The estimate "auto" minimizes: forward MACs plus PRODUCT_OVERHEAD_MACS per unit of
    per-call overhead (1 per rtl step, 2 per ltr step, 3 per merge, 2 for a custom autograd node,
    which every plan but an rtl sweep without merges needs)."""
    units = _STEP_UNITS[plan.order] * len(plan.steps) + _MERGE_UNITS * len(plan.merges)
    if plan.order == "ltr" or plan.merges:
        units += _NODE_UNITS
    return plan.macs + PRODUCT_OVERHEAD_MACS * units


@functools.lru_cache(maxsize=1024)
def _auto_plan(n: tuple[int, ...], m: tuple[int, ...], ranks: tuple[int, ...], batch: int) -> ContractionPlan:
    plans = [_plan(n, m, ranks, batch, o, g) for g in _groupings(len(n)) for o in ORDERS]
    # Cheapest estimate; on a tie fewer MACs, fewer merges (less work in backward), the smaller peak.
    return min(plans, key=lambda p: (plan_cost(p), p.macs, len(p.merges), p.peak))


def best_order(in_modes: Sequence[int], out_modes: Sequence[int], ranks: Sequence[int]) -> Order:
    """The direction with fewer MACs without merging, then the smaller peak state (both scale with
    batch alike)."""
    check_modes(in_modes, out_modes, ranks)
    return _best_order(tuple(in_modes), tuple(out_modes), tuple(ranks))


@functools.lru_cache(maxsize=1024)
def _best_order(n: tuple[int, ...], m: tuple[int, ...], ranks: tuple[int, ...]) -> Order:
    groups = tuple((k, k + 1) for k in range(len(n)))
    plans = [_plan(n, m, ranks, 1, o, groups) for o in ORDERS]
    return min(plans, key=lambda p: (p.macs, p.peak)).order
