"""The fixed-point exponential and softmax cross-entropy gradient against exact and float references."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttedge.errors import ConfigError, DataError
from ttedge.fixed import (
    EXP_ERROR,
    EXP_TABLE,
    LOG2E,
    FixedFormat,
    SaturationCount,
    exp_neg,
    random_bits,
    softmax_xent_grad,
    softmax_xent_grad_error_bound,
    to_float,
)

# float64 evaluation of the references (np.exp, softmax) is off by a few ulps of values <= 1.
FLOAT_SLACK = 2.0**-50


def test_constants_are_correctly_rounded() -> None:
    with localcontext() as ctx:
        ctx.prec = 50
        ln2 = Decimal(2).ln()
        assert abs(Decimal(LOG2E) - Decimal(2**30) / ln2) <= Decimal("0.5")
        assert EXP_TABLE.shape == (257,) and EXP_TABLE[0] == 2**30 and EXP_TABLE[256] == 2**29
        for j, entry in enumerate(EXP_TABLE.tolist()):
            exact = (-ln2 * j / 256).exp() * 2**30  # another route to 2**(-j/256) than the module's
            assert abs(Decimal(entry) - exact) <= Decimal("0.5")
    assert int((EXP_TABLE[:-1] - EXP_TABLE[1:]).max()) < 2**22  # a 22 x 18-bit multiplier suffices


@pytest.mark.parametrize("frac_out", [8, 16, 20, 30])
def test_exp_error_over_the_whole_16_bit_input_range(frac_out: int) -> None:
    fmt = FixedFormat.parse("fx<16,9>")
    codes = np.arange(fmt.min_int, 1, dtype=np.int64)  # every x <= 0 of the format
    out = exp_neg(codes, fmt.frac, frac_out)
    error = np.abs(to_float(out, frac_out) - np.exp(to_float(codes, fmt)))
    assert error.max() <= 2.0 ** -(frac_out + 1) + EXP_ERROR + FLOAT_SLACK
    assert out[-1] == 2**frac_out  # e**0 is exact
    assert np.all(np.diff(out) >= 0)  # monotone in x
    assert out.min() >= 0


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 62), st.integers(0, 30), st.lists(st.integers(-(2**31) + 1, 0), min_size=1, max_size=8))
def test_exp_error_bound_holds_for_any_scaling(frac_in: int, frac_out: int, codes: list[int]) -> None:
    out = exp_neg(np.array(codes, dtype=np.int64), frac_in, frac_out)
    for code, got in zip(codes, out.tolist()):
        exact = math.exp(math.ldexp(code, -frac_in))
        assert abs(math.ldexp(got, -frac_out) - exact) <= 2.0 ** -(frac_out + 1) + EXP_ERROR + FLOAT_SLACK


def float_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return p


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(2, 12),
    st.sampled_from(["fx<16,9>", "fx<8,4>", "fx<24,6>"]),
    st.sampled_from(["fx<16,2>", "fx<16,2,truncate>", "fx<12,2>", "fx<32,2>"]),
    st.data(),
)
def test_softmax_gradient_is_close_to_float(batch: int, classes: int, fmt_in_text: str, fmt_out_text: str, data: st.DataObject) -> None:
    fmt_in, fmt_out = FixedFormat.parse(fmt_in_text), FixedFormat.parse(fmt_out_text)
    codes = np.array(
        data.draw(st.lists(st.integers(fmt_in.min_int, fmt_in.max_int), min_size=batch * classes, max_size=batch * classes)),
        dtype=np.int64,
    ).reshape(batch, classes)
    labels = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)))
    grad, count = softmax_xent_grad(codes, labels, fmt_in, fmt_out)
    assert count == SaturationCount(0, 0)  # fx<W,2> holds [-1, 1]
    error = np.abs(to_float(grad, fmt_out) - float_grad(to_float(codes, fmt_in), labels))
    assert error.max() <= softmax_xent_grad_error_bound(classes, fmt_out) + classes * FLOAT_SLACK


def test_softmax_gradient_stochastic_is_unbiased() -> None:
    fmt_in, fmt_out = FixedFormat.parse("fx<16,9>"), FixedFormat.parse("fx<8,2,stochastic>")
    rng = np.random.default_rng(3)
    batch, classes = 4096, 10
    codes = rng.integers(-512, 512, (batch, classes))
    labels = rng.integers(0, classes, batch)
    words = random_bits(1, 2, 3, np.arange(batch * classes).reshape(batch, classes))
    grad, _ = softmax_xent_grad(codes, labels, fmt_in, fmt_out, words)
    exact, _ = softmax_xent_grad(codes, labels, fmt_in, FixedFormat(32, 30))
    n = grad.size
    # Stochastic rounding of the same 30-bit result: errors in (-LSB, LSB), std <= LSB / 2.
    assert abs((to_float(grad, fmt_out) - to_float(exact, 30)).mean()) <= 5 * (fmt_out.lsb / 2) / math.sqrt(n)


def test_saturation_of_the_gradient_is_counted() -> None:
    fmt_in = FixedFormat.parse("fx<16,9>")
    narrow = FixedFormat.parse("fx<8,1>")  # [-1, 1 - 2**-7]: a gradient of +1 saturates
    codes = np.array([[0, 20 * 128], [20 * 128, 0]], dtype=np.int64)
    grad, count = softmax_xent_grad(codes, np.array([0, 0]), fmt_in, narrow)
    assert grad.tolist() == [[-128, 127], [0, 0]]
    assert count == SaturationCount(high=1, low=0)


def test_misuse_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^softmax logits may have at most 31 bits, got fx<32,11>; use a narrower logit format\.$"):
        softmax_xent_grad(np.zeros((1, 2), dtype=np.int64), np.array([0]), FixedFormat.parse("fx<32,11>"), FixedFormat(16, 14))
    with pytest.raises(DataError, match=r"^labels must lie in \[0, 2\), got 2 to 2; fix the labels\.$"):
        softmax_xent_grad(np.zeros((1, 2), dtype=np.int64), np.array([2]), FixedFormat(16, 7), FixedFormat(16, 14))
    with pytest.raises(DataError, match=r"^exp_neg takes codes from -\(2\*\*31 - 1\) to 0, got 0 to 1; subtract the maximum first and clamp very negative inputs\.$"):
        exp_neg(np.array([0, 1]), 7, 16)
    with pytest.raises(ConfigError, match=r"^exp_neg needs frac_in from 0 to 62 and frac_out from 0 to 30 bits, got 7 and 31; pick fractional bits in those ranges\.$"):
        exp_neg(np.array([0]), 7, 31)
