"""TT contractions against the dense product they stand for."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ttedge.errors import ShapeError
from ttedge.tt import best_order, init_cores, plan_contraction, to_dense, tt_apply


@st.composite
def tt_shapes(draw: st.DrawFn) -> tuple[list[int], list[int], list[int], int]:
    d = draw(st.integers(1, 4))
    in_modes = draw(st.lists(st.integers(1, 4), min_size=d, max_size=d))
    out_modes = draw(st.lists(st.integers(1, 4), min_size=d, max_size=d))
    ranks = draw(st.lists(st.integers(1, 5), min_size=d - 1, max_size=d - 1))
    batch = draw(st.integers(1, 3))
    return in_modes, out_modes, ranks, batch


def _random_cores(in_modes, out_modes, ranks, seed):
    g = torch.Generator().manual_seed(seed)
    return [c.double().requires_grad_() for c in init_cores(in_modes, out_modes, ranks, g, torch.float64)]


@settings(max_examples=60, deadline=None)
@given(tt_shapes(), st.sampled_from(["rtl", "ltr"]), st.integers(0, 2**31 - 1))
def test_apply_equals_dense_product_and_gradients(shape, order, seed) -> None:
    in_modes, out_modes, ranks, batch = shape
    cores = _random_cores(in_modes, out_modes, ranks, seed)
    g = torch.Generator().manual_seed(seed + 1)
    n = torch.Size(in_modes).numel()
    x = torch.randn(batch, n, generator=g, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(batch, torch.Size(out_modes).numel(), generator=g, dtype=torch.float64)

    y = tt_apply(x, cores, order)
    dense = to_dense(cores)
    y_ref = x @ dense.T
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)

    grads = torch.autograd.grad((y * probe).sum(), [x, *cores])
    grads_ref = torch.autograd.grad((y_ref * probe).sum(), [x, *cores])
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(tt_shapes())
def test_plan_counts_match_the_products(shape) -> None:
    in_modes, out_modes, ranks, batch = shape
    for order in ("rtl", "ltr"):
        plan = plan_contraction(in_modes, out_modes, ranks, batch, order)
        assert [s.core for s in plan.steps] == sorted(range(len(in_modes)), reverse=order == "rtl")
        # Each step consumes exactly what the previous one produced.
        first = plan.steps[0]
        assert first.in_elements == batch * torch.Size(in_modes).numel()
        for a, b in zip(plan.steps, plan.steps[1:]):
            assert a.out_elements == b.in_elements
        assert plan.steps[-1].out_elements == batch * torch.Size(out_modes).numel()
        assert plan.macs == sum(s.rows * s.contract * s.out * s.cols for s in plan.steps)


def test_reference_layer_costs_and_auto_order() -> None:
    # MNIST fc1 of METHOD.md: the counts below are worked out by hand from the step formulas.
    modes = ([7, 4, 2, 16], [4, 4, 2, 16], [16, 16, 16])
    rtl = plan_contraction(*modes, batch=1, order="rtl")
    ltr = plan_contraction(*modes, batch=1, order="ltr")
    # rtl core 4: rows 7*4*2=56, contract 16*1, out 16*16, cols 1 -> 229,376 MACs.
    assert rtl.steps[0].macs == 56 * 16 * 256
    # ltr core 1: rows 1, contract 1*7, out 4*16, cols 4*2*16=128 -> 57,344 MACs.
    assert ltr.steps[0].macs == 7 * 64 * 128
    assert best_order(*modes) == ("ltr" if ltr.macs < rtl.macs else "rtl")
    assert plan_contraction(*modes, batch=64, order="ltr").macs == 64 * ltr.macs


def test_input_width_error() -> None:
    cores = init_cores([2, 3], [2, 2], [2])
    with pytest.raises(ShapeError, match=r"^input has 5 features but the TT matrix takes 6 \(the product of in_modes \[2, 3\]\); pad or reshape the input to 6\.$"):
        tt_apply(torch.zeros(4, 5), cores)


def test_mismatched_core_ranks_error() -> None:
    cores = [torch.zeros(1, 2, 2, 3), torch.zeros(2, 2, 2, 1)]
    with pytest.raises(ShapeError, match=r"^core 0 ends with rank 3 but core 1 starts with rank 2; neighbouring ranks must match\.$"):
        tt_apply(torch.zeros(1, 4), cores)


def test_unknown_order_error() -> None:
    with pytest.raises(ShapeError, match=r"^unknown contraction order 'zigzag'; use one of rtl, ltr\.$"):
        plan_contraction([2], [2], [], order="zigzag")  # type: ignore[arg-type]
