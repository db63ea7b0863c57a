"""TT contractions against the dense product they stand for."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ttedge.errors import ShapeError
from ttedge.tt import best_order, init_cores, plan_contraction, to_dense, tt_apply
from ttedge.tt.contract import PRODUCT_OVERHEAD_MACS, plan_cost


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


@st.composite
def grouped_shapes(draw: st.DrawFn) -> tuple[list[int], list[int], list[int], int, list[tuple[int, int]]]:
    """A TT shape with d >= 2 and a split of its cores into runs of neighbours (not all in one)."""
    in_modes, out_modes, ranks, batch = draw(tt_shapes().filter(lambda s: len(s[0]) >= 2))
    d = len(in_modes)
    cuts = draw(st.sets(st.integers(1, d - 1), min_size=1))
    bounds = [0, *sorted(cuts), d]
    return in_modes, out_modes, ranks, batch, list(zip(bounds[:-1], bounds[1:]))


@settings(max_examples=60, deadline=None)
@given(grouped_shapes(), st.sampled_from(["rtl", "ltr"]), st.integers(0, 2**31 - 1))
def test_merged_plans_equal_dense_product_and_gradients(shape, order, seed) -> None:
    in_modes, out_modes, ranks, batch, groups = shape
    plan = plan_contraction(in_modes, out_modes, ranks, batch, order, groups=groups)
    cores = _random_cores(in_modes, out_modes, ranks, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, torch.Size(in_modes).numel(), generator=g, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(batch, torch.Size(out_modes).numel(), generator=g, dtype=torch.float64)

    y = tt_apply(x, cores, plan=plan)
    y_ref = x @ to_dense(cores).T
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    grads = torch.autograd.grad((y * probe).sum(), [x, *cores])
    grads_ref = torch.autograd.grad((y_ref * probe).sum(), [x, *cores])
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    # The core gradients alone (x is data) take the same path without the input error.
    grads = torch.autograd.grad((tt_apply(x.detach(), cores, plan=plan) * probe).sum(), cores)
    for got, want in zip(grads, grads_ref[1:]):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(grouped_shapes(), st.sampled_from(["rtl", "ltr"]), st.integers(0, 2**31 - 1))
def test_gradients_of_a_subset_of_inputs(shape, order, seed) -> None:
    """Only x and the last core need gradients (the first cores frozen, as when fine-tuning): the
    program computes those, equal to the dense reconstruction's, and no others."""
    in_modes, out_modes, ranks, batch, groups = shape
    plan = plan_contraction(in_modes, out_modes, ranks, batch, order, groups=groups)
    cores = _random_cores(in_modes, out_modes, ranks, seed)
    frozen = [c.detach() for c in cores[:-1]] + [cores[-1]]
    g = torch.Generator().manual_seed(seed + 2)
    x = torch.randn(batch, torch.Size(in_modes).numel(), generator=g, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(batch, torch.Size(out_modes).numel(), generator=g, dtype=torch.float64)
    got = torch.autograd.grad((tt_apply(x, frozen, plan=plan) * probe).sum(), [x, cores[-1]])
    want = torch.autograd.grad(((x @ to_dense(frozen).T) * probe).sum(), [x, cores[-1]])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert all(c.grad is None for c in cores)


@settings(max_examples=40, deadline=None)
@given(tt_shapes())
def test_auto_plan_is_the_cheapest_and_never_dense(shape) -> None:
    in_modes, out_modes, ranks, batch = shape
    d = len(in_modes)
    auto = plan_contraction(in_modes, out_modes, ranks, batch, "auto")
    assert d == 1 or len(auto.groups) >= 2  # never the dense weight
    cuts = [c for k in range(d) for c in itertools.combinations(range(1, d), k)]
    for cut in cuts:
        bounds = [0, *cut, d]
        if d >= 2 and len(bounds) == 2:
            continue
        for order in ("rtl", "ltr"):
            other = plan_contraction(in_modes, out_modes, ranks, batch, order, groups=list(zip(bounds, bounds[1:])))
            assert plan_cost(auto) <= plan_cost(other)
    # Merges: each multiplies one more core into the run's partial product.
    r = [1, *ranks, 1]
    for m in auto.merges:
        a, _ = auto.groups[m.group]
        assert m.rank == r[m.core] and m.right == out_modes[m.core] * in_modes[m.core] * r[m.core + 1]
        assert m.left == r[a] * torch.Size(in_modes[a : m.core]).numel() * torch.Size(out_modes[a : m.core]).numel()
    for a, b in zip(auto.steps, auto.steps[1:]):
        assert a.out_elements == b.in_elements


def test_merging_halves_the_macs_of_the_4096_layer() -> None:
    # [8, 8, 8, 8] rank 16: merging (1, 2) and (3, 4) costs 2 * 64*16 * 64*16 = 2,097,152 MACs once,
    # then sweeps a [64, 64] train: 2 * B * 64 * 1024 * 64 for a batch of B, under half of rtl's.
    modes = ([8] * 4, [8] * 4, [16] * 3)
    auto = plan_contraction(*modes, batch=64, order="auto")
    assert auto.groups == ((0, 2), (2, 4)) and auto.describe() == "rtl 1-2 3-4"
    assert auto.macs == 2 * 64 * 16 * 64 * 16 + 2 * 64 * 64 * 1024 * 64
    assert auto.macs < 0.48 * plan_contraction(*modes, batch=64, order="rtl").macs
    # Per-call overhead: at batch 1 the MNIST layer sweeps right to left without merges (fewer,
    # larger products, and no custom autograd node) although ltr 1-2 has fewer MACs.
    mnist = ([7, 4, 2, 16], [4, 4, 2, 16], [16] * 3)
    assert plan_contraction(*mnist, batch=1, order="auto").describe() == "rtl"
    assert plan_contraction(*mnist, batch=1, order="ltr", groups=[(0, 2), (2, 3), (3, 4)]).macs < plan_contraction(*mnist, batch=1, order="rtl").macs
    assert plan_cost(plan_contraction(*mnist, batch=1, order="rtl")) == 1_662_976 + 4 * PRODUCT_OVERHEAD_MACS
    assert plan_contraction(*modes, batch=1, order="auto").describe() == "rtl 1-2 3-4"
    # Modes [64, 64] have no merge left but the dense weight, which a plan never forms.
    assert plan_contraction([64, 64], [64, 64], [16], batch=64, order="auto").merges == ()


def test_bad_groups_and_foreign_plan_errors() -> None:
    with pytest.raises(ShapeError, match=r"^groups \[\(0, 2\)\] must split cores 0\.\.1 into runs \[start, stop\) of neighbours, in order, and not all into one run\.$"):
        plan_contraction([2, 2], [2, 2], [2], order="rtl", groups=[(0, 2)])
    with pytest.raises(ShapeError, match=r"^order 'auto' chooses the groups itself; pass rtl or ltr with groups\.$"):
        plan_contraction([2, 2], [2, 2], [2], order="auto", groups=[(0, 1), (1, 2)])
    cores = init_cores([2, 3], [2, 2], [2])
    plan = plan_contraction([2, 3], [2, 2], [2], batch=2)
    with pytest.raises(ShapeError, match=r"^the plan given was made for other cores or another batch size\.$"):
        tt_apply(torch.zeros(3, 6), cores, plan=plan)


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
    with pytest.raises(ShapeError, match=r"^unknown contraction order 'zigzag'; use one of rtl, ltr, auto\.$"):
        plan_contraction([2], [2], [], order="zigzag")  # type: ignore[arg-type]


@pytest.mark.parametrize(("order", "groups"), [("rtl", None), ("ltr", None), ("rtl", [(0, 2), (2, 4)]),
                                               ("ltr", [(0, 1), (1, 3), (3, 4)]), ("rtl", [(0, 3), (3, 4)])])
@pytest.mark.parametrize("batch", [1, 5])
def test_saved_tensors_are_the_states_and_merges(order, groups, batch) -> None:
    # What backward keeps is the state entering each step and each merge's product, as the plan
    # (and the memory account, tests/test_memory.py) says: on the plain-autograd path (rtl without
    # merges) and in the custom node (ltr, merges) alike; core views share the parameters' storage
    # and are not counted.
    in_modes, out_modes, ranks = [2, 3, 2, 2], [3, 2, 2, 2], [3, 4, 2]
    cores = [c.requires_grad_() for c in init_cores(in_modes, out_modes, ranks)]
    plan = plan_contraction(in_modes, out_modes, ranks, batch, order, groups=groups)
    params = {c.untyped_storage().data_ptr() for c in cores}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in params:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes() // t.element_size()
        return t

    x = torch.randn(batch, 24)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = tt_apply(x, cores, plan=plan)
    assert sum(saved.values()) == plan.saved_elements
    y.sum().backward()
    assert all(c.grad is not None and c.grad.shape == c.shape for c in cores)


@pytest.mark.parametrize(("order", "groups"), [("rtl", None), ("ltr", None), ("rtl", [(0, 2), (2, 4)]),
                                               ("ltr", [(0, 1), (1, 3), (3, 4)]), ("rtl", [(0, 3), (3, 4)])])
@pytest.mark.parametrize("lead", [(1,), (5,), (2, 3)])
def test_bias_inside_the_contraction(order, groups, lead) -> None:
    # The bias is added by the contraction's own autograd node (fused into the last GEMM at batch 1):
    # output and every gradient equal the dense product plus bias.
    in_modes, out_modes, ranks = [2, 3, 2, 2], [3, 2, 2, 2], [3, 4, 2]
    cores = _random_cores(in_modes, out_modes, ranks, 7)
    g = torch.Generator().manual_seed(8)
    bias = torch.randn(24, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(*lead, 24, generator=g, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(*lead, 24, generator=g, dtype=torch.float64)
    batch = torch.Size(lead).numel()
    plan = plan_contraction(in_modes, out_modes, ranks, batch, order, groups=groups)
    y = tt_apply(x, cores, plan=plan, bias=bias)
    y_ref = x @ to_dense(cores).T + bias
    assert y.shape == y_ref.shape
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    grads = torch.autograd.grad((y * probe).sum(), [x, bias, *cores])
    grads_ref = torch.autograd.grad((y_ref * probe).sum(), [x, bias, *cores])
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_bias_shape_error() -> None:
    cores = init_cores([2, 2], [3, 2], [2])
    with pytest.raises(ShapeError, match=r"^bias has shape \[5\] but the TT matrix has 6 outputs; give a bias of shape \[6\]\.$"):
        tt_apply(torch.zeros(1, 4), cores, bias=torch.zeros(5))
