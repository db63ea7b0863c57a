"""Contraction-order search for a TT layer's training step: every order, its MACs and peak state.

y = W x absorbs the d cores into the input one at a time. Any order whose absorbed cores form a
contiguous run at every step is valid without transposes of the weight (a core next to the run
contracts its n mode and the bond it shares with the run); there are 2**(d-1) such orders: the
two sweeps ("ltr" = 0, 1, ..., d-1 and "rtl" = d-1, ..., 0) and the orders that start inside the
train and grow outward, which carry two open bonds at once.

With the run I = [a, b] absorbed, the state holds B x prod(m_I) x prod(n outside I) x r_left x
r_right values (the open bonds at the run's ends, 1 at the train's ends). Absorbing core k on the
right of the run costs

    B * prod(m_I) * prod(n outside I and k) * r_left * (n_k r_b) * (m_k r_k)   MACs

(and symmetrically on the left); the first core costs B * prod(n except n_k) * n_k r_{k-1} * m_k r_k.
A training step repeats every forward product twice more, once for the error of its input and
once for the core's gradient (same three sizes, same MACs), except the input error of the
network's very first product, which nobody needs. So a layer's step costs 3x its forward MACs,
less that one product for the first layer; ``ttedge.fixed.compile_program`` emits exactly these
products for the sweeps, which a test checks against ``Program.macs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from .contract import Order
from .modes import check_modes, prod

__all__ = ["OrderCost", "OrderSearch", "absorption_orders", "order_costs", "search_order"]

Objective = Literal["macs", "peak"]


@dataclass(frozen=True)
class OrderCost:
    """One absorption order of a layer and its costs at a batch size."""

    sequence: tuple[int, ...]  # cores in the order they are absorbed
    forward_macs: int
    step_macs: int  # forward + input errors + core gradients
    peak: int  # largest state between two products, in values (the input and output excluded)

    @property
    def sweep(self) -> Order | None:
        """"ltr" or "rtl" if the order is a sweep (what the program compiler runs), else None."""
        d = len(self.sequence)
        if self.sequence == tuple(range(d)):
            return "ltr"
        if self.sequence == tuple(reversed(range(d))):
            return "rtl"
        return None


@dataclass(frozen=True)
class OrderSearch:
    """Every order of one layer, the best by ``objective``, and the best the compiler can run."""

    objective: Objective
    costs: tuple[OrderCost, ...]  # sorted by the objective, then by the other cost

    @property
    def best(self) -> OrderCost:
        return self.costs[0]

    @property
    def best_sweep(self) -> OrderCost:
        return next(c for c in self.costs if c.sweep is not None)

    def of(self, sequence: Sequence[int]) -> OrderCost:
        return next(c for c in self.costs if c.sequence == tuple(sequence))

    @property
    def rtl(self) -> OrderCost:
        return self.of(tuple(reversed(range(len(self.best.sequence)))))


def absorption_orders(d: int) -> list[tuple[int, ...]]:
    """The 2**(d-1) orders in which d cores can be absorbed keeping the absorbed ones contiguous."""
    out: list[tuple[int, ...]] = []

    def grow(a: int, b: int, seq: tuple[int, ...]) -> None:
        if a == 0 and b == d - 1:
            out.append(seq)
            return
        if a > 0:
            grow(a - 1, b, (*seq, a - 1))
        if b < d - 1:
            grow(a, b + 1, (*seq, b + 1))

    for start in range(d):
        grow(start, start, (start,))
    return sorted(set(out))


def _cost(n: Sequence[int], m: Sequence[int], r: Sequence[int], batch: int, seq: tuple[int, ...],
          input_error: bool) -> OrderCost:
    d = len(n)
    bonds = [1, *r, 1]  # bonds[k] joins core k-1 and core k
    absorbed: set[int] = set()
    forward, first, peak = 0, 0, 0
    for i, k in enumerate(seq):
        rest = prod(n[j] for j in range(d) if j not in absorbed and j != k)
        produced = prod(m[j] for j in absorbed)
        if not absorbed:
            macs = batch * rest * n[k] * bonds[k] * m[k] * bonds[k + 1]
            first = macs
        else:
            a, b = min(absorbed), max(absorbed)
            left, right = bonds[a], bonds[b + 1]
            if k == b + 1:  # contracts n_k and the run's right bond, opens bond k+1
                macs = batch * produced * rest * left * (n[k] * right) * (m[k] * bonds[k + 1])
            else:  # k == a - 1: contracts n_k and the run's left bond, opens bond k
                macs = batch * produced * rest * right * (n[k] * left) * (m[k] * bonds[k])
        forward += macs
        absorbed.add(k)
        if i < d - 1:
            a, b = min(absorbed), max(absorbed)
            state = batch * prod(m[j] for j in absorbed) * prod(n[j] for j in range(d) if j not in absorbed)
            peak = max(peak, state * bonds[a] * bonds[b + 1])
    step = 3 * forward - (0 if input_error else first)
    return OrderCost(seq, forward, step, peak)


def order_costs(in_modes: Sequence[int], out_modes: Sequence[int], ranks: Sequence[int], batch: int,
                input_error: bool = True) -> list[OrderCost]:
    """Costs of every absorption order (``input_error=False`` for a network's first layer)."""
    check_modes(in_modes, out_modes, ranks)
    n, m = list(in_modes), list(out_modes)
    if batch < 1:
        raise ConfigError(f"batch must be at least 1, got {batch}.")
    return [_cost(n, m, list(ranks), batch, seq, input_error) for seq in absorption_orders(len(n))]


def search_order(in_modes: Sequence[int], out_modes: Sequence[int], ranks: Sequence[int], batch: int,
                 objective: Objective = "macs", input_error: bool = True) -> OrderSearch:
    """All orders of a layer ranked by ``objective`` ("macs": training-step MACs; "peak": largest state)."""
    if objective not in ("macs", "peak"):
        raise ConfigError(f"unknown order objective {objective!r}; use macs or peak.")
    costs = order_costs(in_modes, out_modes, ranks, batch, input_error)
    key = (lambda c: (c.step_macs, c.peak)) if objective == "macs" else (lambda c: (c.peak, c.step_macs))
    return OrderSearch(objective, tuple(sorted(costs, key=key)))
