"""Contraction-order search: every contiguous order is a valid way to apply W, its cost formula is
the pairwise contraction's, and for the sweeps it is what the program compiler emits."""

from __future__ import annotations

import math
import string

import pytest
import torch

from ttedge.errors import ConfigError, ShapeError
from ttedge.fixed import PrecisionConfig, compile_program
from ttedge.models import MLP
from ttedge.tt import TTLinear, plan_contraction, to_dense
from ttedge.tt.order_search import absorption_orders, order_costs, search_order

CASES = [([7, 4, 2, 16], [4, 4, 2, 16], [5, 6, 3]), ([3, 2, 4], [2, 5, 3], [4, 2]), ([4, 3], [2, 5], [3])]


def absorb(x: torch.Tensor, cores: list[torch.Tensor], seq: tuple[int, ...]) -> tuple[torch.Tensor, int, int]:
    """Apply the TT matrix by pairwise einsums in order ``seq``; returns y, the MACs (product of every
    index size a contraction touches) and the largest intermediate state."""
    d = len(cores)
    letters = iter(string.ascii_letters)
    n = [next(letters) for _ in range(d)]
    m = [next(letters) for _ in range(d)]
    bonds = [next(letters) for _ in range(d + 1)]
    batch = "Z"
    state, names = x.reshape(x.shape[0], *[c.shape[2] for c in cores]), [batch, *n]
    sizes = {batch: x.shape[0]}
    for k, c in enumerate(cores):
        sizes.update({bonds[k]: c.shape[0], m[k]: c.shape[1], n[k]: c.shape[2], bonds[k + 1]: c.shape[3]})
    macs, peak = 0, 0
    for i, k in enumerate(seq):
        core_names = [bonds[k], m[k], n[k], bonds[k + 1]]
        shared = set(names) & set(core_names)
        out = [a for a in names if a not in shared] + [a for a in core_names if a not in shared]
        macs += math.prod(sizes[a] for a in set(names) | set(core_names))
        state = torch.einsum(f"{''.join(names)},{''.join(core_names)}->{''.join(out)}", state, cores[k])
        names = out
        if i < d - 1:
            peak = max(peak, state.numel())
    keep = [batch, *m]  # the outer bonds have size 1
    state = state.reshape([sizes[a] if a not in (bonds[0], bonds[d]) else 1 for a in names])
    state = state.squeeze(names.index(bonds[d])) if bonds[d] in names else state
    names = [a for a in names if a != bonds[d]]
    state = state.squeeze(names.index(bonds[0])) if bonds[0] in names else state
    names = [a for a in names if a != bonds[0]]
    y = state.permute([names.index(a) for a in keep]).reshape(x.shape[0], -1)
    return y, macs, peak


@pytest.mark.parametrize(("n", "m", "r"), CASES)
@pytest.mark.parametrize("batch", [1, 3])
def test_every_order_applies_w_and_costs_what_its_formula_says(n: list[int], m: list[int], r: list[int], batch: int) -> None:
    gen = torch.Generator().manual_seed(0)
    layer = TTLinear(n, m, r, bias=False, generator=gen).double()
    x = torch.randn(batch, math.prod(n), generator=gen, dtype=torch.float64)
    want = x @ to_dense(list(layer.cores)).T
    costs = {c.sequence: c for c in order_costs(n, m, r, batch)}
    assert len(costs) == 2 ** (len(n) - 1) == len(absorption_orders(len(n)))
    for seq, cost in costs.items():
        y, macs, peak = absorb(x, [c.detach() for c in layer.cores], seq)
        assert torch.allclose(y, want, rtol=1e-10, atol=1e-12)
        assert cost.forward_macs == macs and cost.step_macs == 3 * macs and cost.peak == peak
    for order in ("ltr", "rtl"):
        plan = plan_contraction(n, m, r, batch, order)
        sweep = next(c for c in costs.values() if c.sweep == order)
        assert sweep.forward_macs == sum(s.macs for s in plan.steps)


def test_the_compiled_program_costs_what_the_search_says() -> None:
    """For the sweeps the compiler runs, the program's MACs are the sum of the layers' step MACs
    (the first layer without its input error)."""
    for order in ("ltr", "rtl"):
        gen = torch.Generator().manual_seed(1)
        model = MLP([TTLinear([4, 4, 4], [2, 4, 4], [3, 5], order=order, generator=gen),  # type: ignore[arg-type]
                     TTLinear([4, 8], [2, 5], [4], order=order, generator=gen)], 10)  # type: ignore[arg-type]
        for batch in (1, 4):
            program = compile_program(model, PrecisionConfig(acc_width=40), batch)
            layers = list(model.layers)
            want = sum(next(c for c in order_costs(l.in_modes, l.out_modes, l.ranks, batch, input_error=i > 0)
                            if c.sweep == order).step_macs for i, l in enumerate(layers))
            assert program.macs == want


def test_search_on_the_mnist_reference_net_beats_right_to_left() -> None:
    """The MNIST step at batch 1: the searched order needs 1.78x fewer MACs than right-to-left, and
    no order of any layer (middle-out ones included) does better than the chosen sweep."""
    fc1 = search_order([7, 4, 2, 16], [4, 4, 2, 16], [16, 16, 16], 1, "macs", input_error=False)
    fc2 = search_order([32, 16], [1, 16], [16], 1, "macs")
    chosen = fc1.best_sweep.step_macs + fc2.best_sweep.step_macs
    assert fc1.best == fc1.best_sweep and fc2.best == fc2.best_sweep and fc1.best.sweep == "ltr"
    assert chosen == 2_904_064
    assert fc1.rtl.step_macs + fc2.rtl.step_macs == 5_177_344 and 5_177_344 / chosen > 1.5
    peak = search_order([7, 4, 2, 16], [4, 4, 2, 16], [16, 16, 16], 1, "peak", input_error=False)
    assert peak.best.peak <= min(c.peak for c in peak.costs)


def test_bad_searches_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown order objective 'time'; use macs or peak."):
        search_order([4, 4], [4, 4], [2], 1, "time")  # type: ignore[arg-type]
    with pytest.raises(ShapeError):
        order_costs([4, 4], [4], [2], 1)
    with pytest.raises(ConfigError, match="batch must be at least 1"):
        order_costs([4, 4], [4, 4], [2], 0)
