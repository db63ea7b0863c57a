"""Bit-exact fixed-point operations on integer codes held in NumPy int64 arrays.

Conventions: a tensor of codes carries no format of its own; the caller tracks how many fractional
bits it has (``frac``). ``mul``, ``add``, ``matmul_exact`` and ``accumulate`` are exact integer
operations whose result has ``frac_a + frac_b`` (products) or the common ``frac`` (sums) fractional
bits; ``requantize`` then narrows such a wide result into a ``FixedFormat`` with its rounding and
overflow modes. Every narrowing returns a ``SaturationCount`` of the values that were out of range.

Intermediate range: every op computes a worst-case bound on |result| from its operands' max |code|
(and the contraction length) with Python integers, and raises OverflowError before computing if
the bound reaches 2**63, so no int64 arithmetic here ever wraps unintentionally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError, ShapeError
from .format import MAX_FRAC, FixedFormat

__all__ = ["SaturationCount", "quantize", "to_float", "requantize", "mul", "add", "matmul_exact", "accumulate"]

_INT64_LIMIT = 1 << 63  # |result| must stay below this
_FLOAT_EXACT_LIMIT = 1 << 53  # every integer below this is exact in float64
MAX_STOCHASTIC_SHIFT = 32  # bits one 32-bit random word can dither


@dataclass(frozen=True)
class SaturationCount:
    """How many values fell above ``max_int`` (``high``) or below ``min_int`` (``low``) of a format.

    Under ``saturate`` they were clamped, under ``wrap`` they wrapped; counts add with ``+``.
    """

    high: int = 0
    low: int = 0

    @property
    def total(self) -> int:
        """All out-of-range values."""
        return self.high + self.low

    def __add__(self, other: SaturationCount) -> SaturationCount:
        return SaturationCount(self.high + other.high, self.low + other.low)


def _codes(x: np.ndarray | int, name: str) -> np.ndarray:
    arr = np.asarray(x)
    too_wide = arr.dtype == np.uint64 and arr.size > 0 and int(arr.max()) >= _INT64_LIMIT
    if arr.dtype.kind not in "iu" or too_wide:
        raise DataError(
            f"{name} must hold integer codes that fit int64, got dtype {arr.dtype}; convert with quantize first."
        )
    return arr.astype(np.int64, copy=False)


def _max_abs(arr: np.ndarray) -> int:
    """max |code| as a Python int (no int64 overflow on -2**63)."""
    return max(abs(int(arr.max())), abs(int(arr.min()))) if arr.size else 0


def _check_bound(bound: int, what: str) -> None:
    if bound >= _INT64_LIMIT:
        raise OverflowError(
            f"{what} could reach {bound} (>= 2**63) and overflow int64; requantize the operands to fewer bits first."
        )


def _random_words(random_bits: np.ndarray | None, shape: tuple[int, ...], fmt: FixedFormat) -> np.ndarray:
    if random_bits is None:
        raise ConfigError(
            f"{fmt} rounds stochastically but no random_bits were given; pass one uint32 word per output element."
        )
    words = np.asarray(random_bits)
    if words.shape != shape or words.dtype != np.uint32:
        raise ShapeError(
            f"random_bits must be a uint32 array of the output shape {shape}, got {words.dtype} {words.shape}; "
            "pass ttedge.fixed.random_bits(seed, stream, step, np.arange(size).reshape(shape))."
        )
    return words.astype(np.int64)


def _overflow(rounded: np.ndarray, fmt: FixedFormat) -> tuple[np.ndarray, SaturationCount]:
    """Apply ``fmt.overflow`` to int64 codes and count those out of [min_int, max_int]."""
    high, low = rounded > fmt.max_int, rounded < fmt.min_int
    count = SaturationCount(int(high.sum()), int(low.sum()))
    if count.total == 0:
        return rounded, count
    if fmt.overflow == "saturate":
        return np.clip(rounded, fmt.min_int, fmt.max_int), count
    # Wrap: keep the low `width` bits (width <= 63 here: a 64-bit signed format cannot overflow int64).
    low_bits = (rounded.view(np.uint64) & np.uint64((1 << fmt.width) - 1)).astype(np.int64)
    if fmt.signed:
        low_bits = np.where(low_bits > fmt.max_int, low_bits + 2 * fmt.min_int, low_bits)  # - 2**width, in int64
    return low_bits, count


def quantize(
    x: np.ndarray | float, fmt: FixedFormat, random_bits: np.ndarray | None = None
) -> tuple[np.ndarray, SaturationCount]:
    """Round real numbers ``x`` (any shape) to codes of ``fmt``, exactly as rational arithmetic would.

    The scaled value s = x * 2**frac is exact in float64; nearest rounds s half up, truncate floors
    it, stochastic adds one LSB iff R < F32 with F32 = floor((s - floor(s)) * 2**32) the first 32
    dropped bits and R the element's word of ``random_bits`` (uint32, shape of ``x``). Then the
    format's overflow mode applies (wrap keeps the low ``width`` bits of the exact rounded integer).
    Returns int64 codes of the shape of ``x`` and the count of out-of-range values.
    """
    xs = np.asarray(x, dtype=np.float64)
    if not np.isfinite(xs).all():
        bad = int((~np.isfinite(xs)).sum())
        raise DataError(f"quantize got {bad} NaN or infinite values; replace them before quantizing.")
    # Bring the scaled value into a range where float64 floor and int64 conversion are exact without
    # changing the outcome: clamp to just beyond the representable range to decide (and count) what
    # is out of range, and for wrap reduce modulo 2**width codes, which rounding commutes with.
    # Both bounds are powers of two, so every step here is exact.
    span = 2.0 ** (fmt.width - fmt.frac)
    rounded = _round_scaled(np.ldexp(np.clip(xs, -span, span), fmt.frac), fmt, random_bits)
    high = rounded >= float(fmt.max_int + 1)  # max_int + 1 is a power of two: an exact comparison
    low = rounded < float(fmt.min_int)
    count = SaturationCount(int(high.sum()), int(low.sum()))
    if fmt.overflow == "wrap":
        rounded = _round_scaled(np.ldexp(np.fmod(xs, span), fmt.frac), fmt, random_bits)
        rounded = np.fmod(rounded, 2.0**fmt.width)  # in (-2**64, 2**64), exact
        rounded = np.where(rounded >= 2.0**63, rounded - 2.0**64, rounded)
        rounded = np.where(rounded < -(2.0**63), rounded + 2.0**64, rounded)
        codes, _ = _overflow(rounded.astype(np.int64), fmt)
        return codes, count
    safe = np.where(high | low, 0.0, rounded).astype(np.int64)
    codes = np.where(high, fmt.max_int, np.where(low, fmt.min_int, safe)).astype(np.int64)
    return codes, count


def _round_scaled(s: np.ndarray, fmt: FixedFormat, random_bits: np.ndarray | None) -> np.ndarray:
    """s (float64, |s| <= 2**64) rounded to an integer-valued float64 by ``fmt.rounding``, exactly."""
    # s = whole + part with |part| < 1 is exact, but floor(s) + rest is not (1 - 2**-200 is not a
    # float), so each rule is written in terms of the signed part.
    part, whole = np.modf(s)
    negative = part < 0
    if fmt.rounding == "nearest":  # floor(s + 1/2)
        return whole + np.where(negative, -1.0 * (part < -0.5), 1.0 * (part >= 0.5))
    floor = whole - 1.0 * negative
    if fmt.rounding == "truncate":
        return floor
    # The first 32 bits of the fraction s - floor(s): of part, or of 1 + part when part < 0.
    fraction32 = np.floor(np.ldexp(part, 32)).astype(np.int64) + np.where(negative, 1 << 32, 0)
    return floor + (_random_words(random_bits, s.shape, fmt) < fraction32)


def to_float(codes: np.ndarray, frac_or_fmt: int | FixedFormat) -> np.ndarray:
    """The real values codes * 2**-frac as float64 (exact while |code| <= 2**53)."""
    frac = frac_or_fmt.frac if isinstance(frac_or_fmt, FixedFormat) else frac_or_fmt
    return np.ldexp(_codes(codes, "codes").astype(np.float64), -frac)


def requantize(
    codes: np.ndarray, from_frac: int, fmt: FixedFormat, random_bits: np.ndarray | None = None
) -> tuple[np.ndarray, SaturationCount]:
    """Narrow int64 ``codes`` with ``from_frac`` fractional bits into ``fmt`` (shape unchanged).

    With k = from_frac - fmt.frac > 0, the k low bits D (0 <= D < 2**k, the two's-complement
    remainder) are dropped: q = codes >> k (arithmetic shift, i.e. floor), then

    * nearest: q + bit k-1 of codes (round half up: exactly floor((codes + 2**(k-1)) / 2**k));
    * truncate: q;
    * stochastic: q + (R < D << (32 - k)), R the element's uint32 word of ``random_bits``; the same
      test as (R >> (32 - k)) < D on the top k bits of R, so P(up) = D / 2**k exactly. k > 32 is
      refused (one word dithers at most 32 bits).

    With k < 0 the codes shift left by -k (exact). Then ``fmt.overflow`` applies to the rounded
    value; out-of-range values are counted either way.
    """
    c = _codes(codes, "codes")
    if not isinstance(from_frac, int) or isinstance(from_frac, bool) or not 0 <= from_frac <= MAX_FRAC:
        raise ConfigError(
            f"from_frac must be an integer from 0 to {MAX_FRAC} bits, got {from_frac!r}; "
            "pass the accumulator's fractional bits."
        )
    k = from_frac - fmt.frac
    if k > 0:
        q = c >> k
        if fmt.rounding == "nearest":
            q = q + ((c >> (k - 1)) & 1)
        elif fmt.rounding == "stochastic":
            if k > MAX_STOCHASTIC_SHIFT:
                raise ConfigError(
                    f"stochastic rounding drops at most {MAX_STOCHASTIC_SHIFT} bits, got a shift of {k} bits "
                    f"into {fmt}; requantize in two steps or use more fractional bits."
                )
            dropped = c & ((1 << k) - 1)
            q = q + (_random_words(random_bits, c.shape, fmt) < (dropped << (MAX_STOCHASTIC_SHIFT - k)))
        return _overflow(q, fmt)
    if k == 0:
        return _overflow(c.copy(), fmt)
    shift = -k
    # Codes whose shifted value would leave int64 are certainly outside fmt (whose codes fit int64):
    # find them first from exact thresholds, then shift the rest.
    high_limit = fmt.max_int >> shift  # c << shift > max_int  <=>  c > floor(max_int / 2**shift)
    low_limit = -((-fmt.min_int) >> shift)  # c << shift < min_int  <=>  c < ceil(min_int / 2**shift)
    high, low = c > high_limit, c < low_limit
    count = SaturationCount(int(high.sum()), int(low.sum()))
    if fmt.overflow == "saturate":
        safe = np.where(high | low, 0, c) << shift
        return np.where(high, fmt.max_int, np.where(low, fmt.min_int, safe)).astype(np.int64), count
    # Wrap: shifting in uint64 keeps the low 64 bits, a superset of the low `width` bits kept.
    shifted = (c.view(np.uint64) << np.uint64(shift)).view(np.int64)
    if fmt.width == 64:
        return shifted, count
    wrapped, _ = _overflow(shifted, fmt)
    return wrapped, count


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The exact elementwise (broadcast) product of int64 codes; fractional bits add."""
    a, b = _codes(a, "a"), _codes(b, "b")
    _check_bound(_max_abs(a) * _max_abs(b), "the product")
    return a * b


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The exact elementwise (broadcast) sum of int64 codes with the same fractional bits."""
    a, b = _codes(a, "a"), _codes(b, "b")
    _check_bound(_max_abs(a) + _max_abs(b), "the sum")
    return a + b


def _matmul_bound(a: np.ndarray, b: np.ndarray) -> int:
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
        raise ShapeError(
            f"cannot multiply codes of shapes {a.shape} and {b.shape}; the contracted dimensions must match."
        )
    return _max_abs(a) * _max_abs(b) * a.shape[-1]


def matmul_exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (NumPy matmul shapes and broadcasting) of int64 codes, exactly; fractional bits add.

    The bound B = max|a| * max|b| * K (K the contracted length) limits every partial sum. If
    B < 2**53 the product runs in float64 BLAS, where every product and partial sum is an exactly
    representable integer whatever the summation order; else if B < 2**63 it runs as an int64
    matmul (exact, slower); else it raises OverflowError.
    """
    a, b = _codes(a, "a"), _codes(b, "b")
    bound = _matmul_bound(a, b)
    if bound < _FLOAT_EXACT_LIMIT:
        return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    _check_bound(bound, "the matrix product")
    return np.matmul(a, b)


def accumulate(acc: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``acc + a @ b`` exactly (a MAC array adding into a wide accumulator of ``acc``'s shape).

    ``acc`` has the fractional bits of the product (frac_a + frac_b); the bound max|acc| +
    max|a| * max|b| * K must stay below 2**63. Narrow the result with ``requantize``.
    """
    acc = _codes(acc, "acc")
    a, b = _codes(a, "a"), _codes(b, "b")
    _check_bound(_max_abs(acc) + _matmul_bound(a, b), "the accumulated matrix product")
    product = matmul_exact(a, b)
    if np.broadcast_shapes(acc.shape, product.shape) != acc.shape:
        raise ShapeError(
            f"the accumulator has shape {acc.shape} but the product has shape {product.shape}; "
            "pass an accumulator of the product's shape."
        )
    return acc + product
