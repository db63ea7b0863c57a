"""Reference ops against exact rational arithmetic (fractions.Fraction and Python integers)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ttedge.errors import ConfigError, DataError, ShapeError
from ttedge.fixed import (
    OVERFLOWS,
    ROUNDINGS,
    FixedFormat,
    SaturationCount,
    accumulate,
    add,
    matmul_exact,
    mul,
    quantize,
    random_bits,
    requantize,
    to_float,
)

WORDS = st.integers(0, 2**32 - 1)


@st.composite
def formats(draw: st.DrawFn, rounding: str | None = None) -> FixedFormat:
    signed = draw(st.booleans())
    return FixedFormat(
        draw(st.integers(2, 64 if signed else 63)),
        draw(st.integers(0, 62)),
        signed=signed,
        rounding=rounding or draw(st.sampled_from(ROUNDINGS)),
        overflow=draw(st.sampled_from(OVERFLOWS)),
    )


def reference(value: Fraction, fmt: FixedFormat, word: int) -> tuple[int, int, int]:
    """(code, high, low): the exact rounding of value into fmt, and whether it was above/below range."""
    scaled = value * 2**fmt.frac
    floor = math.floor(scaled)
    rest = scaled - floor
    if fmt.rounding == "nearest":
        rounded = floor + (rest >= Fraction(1, 2))
    elif fmt.rounding == "truncate":
        rounded = floor
    else:
        rounded = floor + (word < math.floor(rest * 2**32))
    high, low = int(rounded > fmt.max_int), int(rounded < fmt.min_int)
    if fmt.overflow == "saturate":
        return min(max(rounded, fmt.min_int), fmt.max_int), high, low
    return (rounded - fmt.min_int) % 2**fmt.width + fmt.min_int, high, low


def check_against_reference(codes, count, values, fmt, words) -> None:
    expected = [reference(v, fmt, w) for v, w in zip(values, words)]
    assert codes.dtype == np.int64
    assert [int(c) for c in codes] == [e[0] for e in expected]
    assert count == SaturationCount(sum(e[1] for e in expected), sum(e[2] for e in expected))


def near_range(fmt: FixedFormat) -> st.SearchStrategy[float]:
    """Floats on and around the format's grid and range edges, plus arbitrary finite floats."""
    edge = st.sampled_from([fmt.min_int, fmt.max_int, 0, fmt.max_int + 1, fmt.min_int - 1, 2**fmt.width])
    offset = st.sampled_from([0.0, 0.5, -0.5, 0.25, 0.75, 1e-9, -1e-9])
    on_grid = st.builds(lambda c, o: math.ldexp(float(c) + o, -fmt.frac), edge | st.integers(-(2**70), 2**70), offset)
    return on_grid | st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.data(), formats())
def test_quantize_equals_exact_rounding(data: st.DataObject, fmt: FixedFormat) -> None:
    values = data.draw(st.lists(near_range(fmt), min_size=1, max_size=6))
    words = data.draw(st.lists(WORDS, min_size=len(values), max_size=len(values)))
    codes, count = quantize(np.array(values), fmt, np.array(words, dtype=np.uint32))
    check_against_reference(codes, count, [Fraction(v) for v in values], fmt, words)


@settings(max_examples=300, deadline=None)
@given(st.data(), formats(), st.integers(0, 62))
def test_requantize_equals_exact_rounding(data: st.DataObject, fmt: FixedFormat, from_frac: int) -> None:
    assume(fmt.rounding != "stochastic" or from_frac - fmt.frac <= 32)
    edges = st.sampled_from([-(2**63), 2**63 - 1, 0, -1, 1, fmt.max_int, fmt.min_int])
    ints = st.lists(edges | st.integers(-(2**63), 2**63 - 1) | st.integers(-(2**20), 2**20), min_size=1, max_size=6)
    codes_in = data.draw(ints)
    words = data.draw(st.lists(WORDS, min_size=len(codes_in), max_size=len(codes_in)))
    codes, count = requantize(np.array(codes_in, dtype=np.int64), from_frac, fmt, np.array(words, dtype=np.uint32))
    check_against_reference(codes, count, [Fraction(c, 2**from_frac) for c in codes_in], fmt, words)


def test_wrap_is_twos_complement_modulo() -> None:
    fmt = FixedFormat(8, 0, overflow="wrap")
    codes, count = requantize(np.arange(-1000, 1000, dtype=np.int64), 0, fmt)
    assert np.array_equal(codes, ((np.arange(-1000, 1000) + 128) % 256) - 128)
    assert count == SaturationCount(1000 - 128, 1000 - 128)
    unsigned = FixedFormat(8, 0, signed=False, overflow="wrap")
    codes, _ = requantize(np.arange(-1000, 1000, dtype=np.int64), 0, unsigned)
    assert np.array_equal(codes, np.arange(-1000, 1000) % 256)


def test_saturation_clamps_and_counts() -> None:
    fmt = FixedFormat.parse("fx<4,1>")
    codes, count = quantize(np.array([-3.0, -1.0, -0.0625, 0.0625, 0.875, 0.95, 5.0]), fmt)
    assert codes.tolist() == [-8, -8, 0, 1, 7, 7, 7]
    assert count == SaturationCount(high=2, low=1) and count.total == 3
    assert count + count == SaturationCount(4, 2)


def test_nearest_rounds_ties_up() -> None:
    codes, _ = requantize(np.array([-5, -3, -1, 1, 3, 5]), 1, FixedFormat(8, 0))
    assert codes.tolist() == [-2, -1, 0, 1, 2, 3]


@pytest.mark.parametrize("shift", [1, 4, 7])
def test_stochastic_rounding_up_probability_is_exact(shift: int) -> None:
    # Every value of the top `shift` random bits once: exactly D of the 2**shift words round up.
    fmt = FixedFormat(16, 0, rounding="stochastic")
    tops = np.arange(2**shift, dtype=np.uint32) << np.uint32(32 - shift)
    for dropped in range(2**shift):
        codes = np.full(2**shift, 3 * 2**shift + dropped, dtype=np.int64)
        out, _ = requantize(codes, shift, fmt, tops)
        assert int((out - 3).sum()) == dropped


@pytest.mark.parametrize("fmt_text", ["fx<8,4,stochastic>", "fx<16,9,stochastic>"])
def test_stochastic_rounding_is_unbiased(fmt_text: str) -> None:
    fmt = FixedFormat.parse(fmt_text)
    n = 1 << 16
    gen = np.random.default_rng(0)
    acc = gen.integers(fmt.min_int << 11, fmt.max_int << 11, n)  # 12 bits below the output LSB, in range
    words = random_bits(7, 1, 0, np.arange(n))
    out, count = requantize(acc, fmt.frac + 12, fmt, words)
    assert count.total == 0
    # Each error lies in (-LSB, LSB) with mean 0 if unbiased, so its std is at most LSB / 2.
    error = (to_float(out, fmt) - np.ldexp(acc.astype(np.float64), -(fmt.frac + 12))).mean()
    assert abs(error) <= 5 * (fmt.lsb / 2) / math.sqrt(n)
    values = gen.uniform(fmt.min / 2, fmt.max / 2, n)
    codes, _ = quantize(values, fmt, words)
    assert abs((to_float(codes, fmt) - values).mean()) <= 5 * (fmt.lsb / 2) / math.sqrt(n)


def test_to_float_is_exact() -> None:
    codes = np.array([-(2**53), -3, 0, 5, 2**53], dtype=np.int64)
    assert to_float(codes, 3).tolist() == [float(Fraction(int(c), 8)) for c in codes]
    assert to_float(codes, FixedFormat(64, 3)).tolist() == to_float(codes, 3).tolist()


def test_left_shift_saturates_and_wraps_exactly() -> None:
    big = np.array([2**62, -(2**62), 3, -3], dtype=np.int64)
    codes, count = requantize(big, 0, FixedFormat(64, 4))
    assert codes.tolist() == [2**63 - 1, -(2**63), 48, -48] and count == SaturationCount(1, 1)
    codes, count = requantize(big, 0, FixedFormat(64, 4, overflow="wrap"))
    assert codes.tolist() == [0, 0, 48, -48] and count == SaturationCount(1, 1)


@st.composite
def int_matrices(draw: st.DrawFn, limit: int) -> tuple[np.ndarray, np.ndarray]:
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    # Entries up to limit per operand, with the extremes present so the bound is attained.
    entries = st.integers(-limit, limit) | st.sampled_from([-limit, limit])
    a = draw(st.lists(entries, min_size=m * k, max_size=m * k))
    b = draw(st.lists(entries, min_size=k * n, max_size=k * n))
    return np.array(a, dtype=np.int64).reshape(m, k), np.array(b, dtype=np.int64).reshape(k, n)


def python_matmul(a: np.ndarray, b: np.ndarray) -> list[list[int]]:
    return [[sum(int(x) * int(y) for x, y in zip(row, col)) for col in b.T] for row in a]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([2**5, 2**24, 2**26 - 1, 2**26 + 1, 2**29]).flatmap(int_matrices))
def test_matmul_exact_equals_python_integers(ab: tuple[np.ndarray, np.ndarray]) -> None:
    # Limits straddle 2**53 / K for the float64 path and reach 2**60 for the int64 path.
    a, b = ab
    assert matmul_exact(a, b).tolist() == python_matmul(a, b)
    acc = np.full((a.shape[0], b.shape[1]), -(2**40), dtype=np.int64)
    assert accumulate(acc, a, b).tolist() == [[v - 2**40 for v in row] for row in python_matmul(a, b)]


def test_matmul_exact_just_below_and_above_the_float_limit() -> None:
    # Bound 3 * (2**51 + 1) < 2**53 runs in float64; 3 * (2**52 + 1) needs int64 (float64 would round).
    ones = np.ones((3, 1), dtype=np.int64)
    below = np.full((1, 3), 2**51 + 1, dtype=np.int64)
    assert matmul_exact(below, ones).tolist() == [[3 * 2**51 + 3]]
    above = np.full((1, 3), 2**52 + 1, dtype=np.int64)
    assert matmul_exact(above, ones).tolist() == [[3 * 2**52 + 3]]
    assert matmul_exact(np.stack([above, -above]), ones).tolist() == [[[3 * 2**52 + 3]], [[-3 * 2**52 - 3]]]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**31), 2**31), min_size=1, max_size=5), st.integers(-(2**31), 2**31))
def test_mul_and_add_are_exact(values: list[int], other: int) -> None:
    a = np.array(values, dtype=np.int64)
    assert mul(a, other).tolist() == [v * other for v in values]
    assert add(a, other).tolist() == [v + other for v in values]


def test_overflow_risks_are_refused() -> None:
    big = np.array([[2**31, 2**31]], dtype=np.int64)
    with pytest.raises(OverflowError, match=r"^the matrix product could reach 9223372036854775808 \(>= 2\*\*63\) and overflow int64; requantize the operands to fewer bits first\.$"):
        matmul_exact(big, big.T)
    with pytest.raises(OverflowError, match=r"^the product could reach 2\*\*63|^the product could reach 9223372036854775808 "):
        mul(np.array([2**32]), np.array([2**31]))
    with pytest.raises(OverflowError, match=r"^the sum could reach 9223372036854775808 \(>= 2\*\*63\) .*\.$"):
        add(np.array([2**62]), np.array([2**62]))
    with pytest.raises(OverflowError, match=r"^the accumulated matrix product could reach .*\.$"):
        accumulate(np.array([[2**62 + 2**61]]), big[:, :1], big[:, :1].T)


def test_misuse_is_named() -> None:
    stochastic = FixedFormat.parse("fx<8,4,stochastic>")
    with pytest.raises(ConfigError, match=r"^fx<8,4,stochastic> rounds stochastically but no random_bits were given; pass one uint32 word per output element\.$"):
        requantize(np.arange(3), 8, stochastic)
    with pytest.raises(ShapeError, match=r"^random_bits must be a uint32 array of the output shape \(3,\), got uint32 \(2,\); pass ttedge\.fixed\.random_bits\(seed, stream, step, np\.arange\(size\)\.reshape\(shape\)\)\.$"):
        quantize(np.zeros(3), stochastic, np.zeros(2, dtype=np.uint32))
    with pytest.raises(ConfigError, match=r"^stochastic rounding drops at most 32 bits, got a shift of 36 bits into fx<8,4,stochastic>; requantize in two steps or use more fractional bits\.$"):
        requantize(np.arange(3), 40, stochastic, np.zeros(3, dtype=np.uint32))
    with pytest.raises(ConfigError, match=r"^from_frac must be an integer from 0 to 62 bits, got 63; pass the accumulator's fractional bits\.$"):
        requantize(np.arange(3), 63, stochastic)
    with pytest.raises(DataError, match=r"^quantize got 2 NaN or infinite values; replace them before quantizing\.$"):
        quantize(np.array([np.nan, 1.0, np.inf]), stochastic)
    with pytest.raises(DataError, match=r"^codes must hold integer codes that fit int64, got dtype float64; convert with quantize first\.$"):
        requantize(np.zeros(3), 4, stochastic)
    with pytest.raises(ShapeError, match=r"^cannot multiply codes of shapes \(2, 3\) and \(2, 3\); the contracted dimensions must match\.$"):
        matmul_exact(np.zeros((2, 3), dtype=np.int64), np.zeros((2, 3), dtype=np.int64))


def test_wrap_at_63_bits() -> None:
    fmt = FixedFormat(63, 0, overflow="wrap")
    codes, count = requantize(np.array([2**62, -(2**62) - 1, 2**63 - 1], dtype=np.int64), 0, fmt)
    assert codes.tolist() == [-(2**62), 2**62 - 1, -1] and count == SaturationCount(2, 1)
    codes, count = quantize(np.array([2.0**62, -(2.0**62) - 2**11]), fmt)
    assert codes.tolist() == [-(2**62), 2**62 - 2**11] and count == SaturationCount(1, 1)
