"""The native executor runs the same programs as the generated Python, to the bit."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ttedge.errors import ToolError
from ttedge.tt import init_cores, native, tt_apply
from ttedge.tt.apply import _setup


@pytest.fixture(scope="module")
def built():
    """The executor, built here if `./run setup` did not (skipped only where no compiler exists)."""
    try:
        native.build()
    except ToolError as err:
        pytest.skip(str(err))
    assert native.executor() is not None
    yield
    native.set_enabled(True)


def _run(enabled: bool, x, bias, cores, order, needs):
    native.set_enabled(enabled)
    inputs = [t.detach().clone().requires_grad_(n) for t, n in zip([x, bias, *cores], needs) if t is not None]
    xs, rest = inputs[0], inputs[1:]
    b = rest.pop(0) if bias is not None else None
    y = tt_apply(xs, rest, order, bias=b)
    probe = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
    wanted = [t for t in inputs if t.requires_grad]
    grads = torch.autograd.grad((y * probe).sum(), wanted) if wanted else ()
    return y.detach(), grads


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4), st.data(), st.sampled_from(["rtl", "ltr", "auto"]), st.booleans(), st.integers(0, 2**31 - 1))
def test_native_equals_python_to_the_bit(built, d, data, order, with_bias, seed) -> None:
    in_modes = data.draw(st.lists(st.integers(1, 5), min_size=d, max_size=d))
    out_modes = data.draw(st.lists(st.integers(1, 5), min_size=d, max_size=d))
    ranks = data.draw(st.lists(st.integers(1, 6), min_size=d - 1, max_size=d - 1))
    lead = data.draw(st.sampled_from([(1,), (3,), (2, 3)]))
    g = torch.Generator().manual_seed(seed)
    cores = init_cores(in_modes, out_modes, ranks, g, torch.float64)
    x = torch.randn(*lead, torch.Size(in_modes).numel(), generator=g, dtype=torch.float64)
    bias = torch.randn(torch.Size(out_modes).numel(), generator=g, dtype=torch.float64) if with_bias else None
    needs = [data.draw(st.booleans()) for _ in range(2 + d)]
    if bias is None:
        needs[1] = False
    y_py, g_py = _run(False, x, bias, cores, order, needs)
    y_nat, g_nat = _run(True, x, bias, cores, order, needs)
    assert torch.equal(y_py, y_nat)
    assert len(g_py) == len(g_nat) and all(torch.equal(a, b) for a, b in zip(g_py, g_nat))


def test_the_benchmark_layer_runs_natively(built) -> None:
    """The 4096x4096 [8, 8, 8, 8] layer's merged program (the case the executor exists for)."""
    g = torch.Generator().manual_seed(0)
    cores = [c.requires_grad_() for c in init_cores([8] * 4, [8] * 4, [16] * 3, g)]
    bias = torch.zeros(4096, requires_grad=True)
    prog, _ = _setup(tuple(c.shape for c in cores), 4096, 1, "auto")
    assert not prog.plain and any(prog.merges)  # a node, with merges, runs here
    x = torch.randn(1, 4096, generator=g)
    y = tt_apply(x, cores, "auto", bias=bias)
    assert type(y.grad_fn).__name__ != "_TTContractBackward"  # the C++ node, not the Python one
    native.set_enabled(False)
    y_py = tt_apply(x, cores, "auto", bias=bias)
    native.set_enabled(True)
    assert type(y_py.grad_fn).__name__ == "_TTContractBackward"
    assert torch.equal(y.detach(), y_py.detach())


def test_inplace_change_of_a_saved_input_is_caught(built) -> None:
    g = torch.Generator().manual_seed(1)
    cores = [c.requires_grad_() for c in init_cores([4, 4], [4, 4], [3], g)]
    x = torch.randn(2, 16, generator=g)
    y = tt_apply(x, cores, "ltr")  # ltr: a node (rtl would be plain autograd operations)
    assert type(y.grad_fn).__name__ != "_TTContractBackward"
    x.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_missing_compiler_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TTEDGE_NATIVE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(ToolError, match="no C\\+\\+ compiler 'no-such-compiler-xyz' on PATH"):
        native.build()
    assert not any(tmp_path.iterdir())


def test_turned_off(built) -> None:
    native.set_enabled(False)
    assert native.executor() is None
    native.set_enabled(True)
    assert native.executor() is not None
