"""A fixed-point exponential and the softmax cross-entropy gradient, integer-only and bit-exact.

``exp_neg(x)`` for x <= 0 (codes with ``frac_in`` fractional bits, |code| < 2**31), returning codes
with ``frac_out`` <= 30 fractional bits. With e**x = 2**-(k + u), k an integer and 0 <= u < 1::

    Y = (-x_code) * LOG2E                 # LOG2E = round(log2(e) * 2**30) = 1549082005; Y < 2**62
    Z = Y >> frac_in                      # |x| * log2(e) with 30 fractional bits (floor)
    k = Z >> 30;  u = Z & (2**30 - 1)     # integer and fractional part of the base-2 exponent
    j = u >> 22                           # top 8 bits of u: the table segment, 0..255
    r = (u >> 4) & (2**18 - 1)            # next 18 bits: the position inside the segment
    v = T[j] - (((T[j] - T[j+1]) * r + 2**17) >> 18)   # 2**-u with 30 fractional bits
    s = k + 30 - frac_out
    out = v if s == 0 else (v + 2**(s-1)) >> s          # round half up; 0 once s >= 32

T has 257 entries T[j] = round_half_up(2**(-j/256) * 2**30), j = 0..256 (31-bit words; T[0] =
2**30, T[256] = 2**29), generated here with 60-digit decimal arithmetic. Hardware: one
constant multiplier (or shift-add tree) for LOG2E, a 257 x 31-bit ROM, one 22 x 18-bit multiplier
(T[j] - T[j+1] < 2**22) and a barrel shifter with a rounding adder.

Error of v * 2**-(k + 30) against e**x, before the final rounding, summed over its sources:
the chord of the convex 2**-u over a segment of width 1/256 lies above it by at most
(ln 2 / 256)**2 / 8 < 9.17e-7; dropping the 4 low bits of u moves the exponent by < 2**-26
(value error < ln 2 * 2**-26 < 1.04e-8); the floor in Z, < ln 2 * 2**-30; LOG2E's rounding,
|x| * 2**-31 in the exponent, i.e. < ln 2 * |x| e**x * 2**-31 <= 2**-31; the table entries and the
interpolation rounding, 2**-31 each. The total is below EXP_ERROR = 2**-20 (9.54e-7), and the final
rounding adds at most half an output LSB: |out * 2**-frac_out - e**x| <= 2**-(frac_out+1) + 2**-20.

``softmax_xent_grad`` computes softmax(z) - onehot(label) per row of logits z:
m = max_c z_c; e_c = exp_neg(z_c - m) with SOFTMAX_EXP_FRAC = 20 fractional bits (e_max is exactly
2**20); S = sum_c e_c (integer, S >= 2**20); p_c = floor(e_c * 2**30 / S), an exact integer
division (hardware: a restoring divider, one quotient bit per cycle, or a reciprocal of S computed
once per row provided it reproduces this exact floor); g_c = p_c - 2**30 [c == label] with 30
fractional bits, which ``requantize`` narrows into the output format with its rounding and overflow.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np

from ..errors import ConfigError, DataError, ShapeError
from .format import FixedFormat
from .ops import SaturationCount, _codes, requantize

__all__ = [
    "exp_neg",
    "softmax_xent_grad",
    "softmax_xent_grad_error_bound",
    "EXP_TABLE",
    "EXP_ERROR",
    "LOG2E",
    "SOFTMAX_EXP_FRAC",
]

EXP_FRAC = 30  # fractional bits of the exponent Z and of the table
EXP_SEGMENT_BITS = 8  # 2**8 table segments
EXP_INTERP_BITS = 18  # bits of the position inside a segment (an 18-bit multiplier input)
EXP_MAX_INPUT_BITS = 31  # |input code| < 2**31 keeps Y below 2**62
EXP_ERROR = 2.0**-20  # bound on |v * 2**-(k+30) - e**x| before the final rounding (see above)
SOFTMAX_EXP_FRAC = 20  # fractional bits of the exponentials inside the softmax
SOFTMAX_PROB_FRAC = 30  # fractional bits of the probabilities before requantization
LOG2E = 1549082005  # round(log2(e) * 2**30)


def _exp_table() -> np.ndarray:
    with localcontext() as ctx:
        ctx.prec = 60
        scale = Decimal(1 << EXP_FRAC)
        segments = 1 << EXP_SEGMENT_BITS
        entries = [
            int((Decimal(2) ** (Decimal(-j) / segments) * scale).to_integral_value(rounding=ROUND_HALF_UP))
            for j in range(segments + 1)
        ]
    return np.array(entries, dtype=np.int64)


EXP_TABLE = _exp_table()  # (257,) int64: 2**-u at the segment ends, 30 fractional bits
EXP_TABLE.setflags(write=False)


def exp_neg(codes: np.ndarray, frac_in: int, frac_out: int) -> np.ndarray:
    """e**x for x = codes * 2**-frac_in <= 0, as int64 codes with ``frac_out`` fractional bits.

    ``codes``: any shape, int, -2**31 < code <= 0; ``frac_in`` 0..62; ``frac_out`` 0..30. The result
    lies in [0, 2**frac_out] and is within 2**-(frac_out+1) + EXP_ERROR of e**x (module docstring).
    """
    x = _codes(codes, "codes")
    in_ok = isinstance(frac_in, int) and 0 <= frac_in <= 62
    if not (in_ok and isinstance(frac_out, int) and 0 <= frac_out <= EXP_FRAC):
        raise ConfigError(
            f"exp_neg needs frac_in from 0 to 62 and frac_out from 0 to {EXP_FRAC} bits, "
            f"got {frac_in!r} and {frac_out!r}; pick fractional bits in those ranges."
        )
    if x.size and (int(x.max()) > 0 or int(x.min()) <= -(1 << EXP_MAX_INPUT_BITS)):
        raise DataError(
            f"exp_neg takes codes from -(2**{EXP_MAX_INPUT_BITS} - 1) to 0, got {int(x.min())} to {int(x.max())}; "
            "subtract the maximum first and clamp very negative inputs."
        )
    z = ((-x) * LOG2E) >> frac_in
    k = z >> EXP_FRAC
    u = z & ((1 << EXP_FRAC) - 1)
    j = u >> (EXP_FRAC - EXP_SEGMENT_BITS)
    r = (u >> (EXP_FRAC - EXP_SEGMENT_BITS - EXP_INTERP_BITS)) & ((1 << EXP_INTERP_BITS) - 1)
    lo, hi = EXP_TABLE[j], EXP_TABLE[j + 1]
    v = lo - (((lo - hi) * r + (1 << (EXP_INTERP_BITS - 1))) >> EXP_INTERP_BITS)
    # Beyond a shift of 32 the result is 0 (v <= 2**30); capping it keeps the shifts in range.
    s = np.minimum(k + (EXP_FRAC - frac_out), 40)
    half = np.where(s > 0, np.left_shift(1, np.maximum(s - 1, 0)), 0)
    return (v + half) >> s


def softmax_xent_grad(
    logits: np.ndarray,
    labels: np.ndarray,
    fmt_in: FixedFormat,
    fmt_out: FixedFormat,
    random_bits: np.ndarray | None = None,
) -> tuple[np.ndarray, SaturationCount]:
    """d(cross-entropy)/d(logits) = softmax(logits) - onehot(labels), in fixed point.

    ``logits``: (B, C) int64 codes of ``fmt_in`` (width <= 31 bits); ``labels``: (B,) class indices.
    Returns (B, C) codes of ``fmt_out`` (rounded by its mode; ``random_bits`` (B, C) uint32 when it
    is stochastic) and the count of gradients outside its range.
    """
    z = _codes(logits, "logits")
    y = np.asarray(labels)
    if z.ndim != 2 or y.shape != z.shape[:1] or y.dtype.kind not in "iu":
        raise ShapeError(
            f"softmax_xent_grad needs (B, C) logits and (B,) integer labels, got {z.shape} and {y.shape}; "
            "reshape them."
        )
    if y.size and (int(y.min()) < 0 or int(y.max()) >= z.shape[1]):
        raise DataError(
            f"labels must lie in [0, {z.shape[1]}), got {int(y.min())} to {int(y.max())}; fix the labels."
        )
    if fmt_in.width > EXP_MAX_INPUT_BITS:
        raise ConfigError(
            f"softmax logits may have at most {EXP_MAX_INPUT_BITS} bits, got {fmt_in}; use a narrower logit format."
        )
    if z.size and (int(z.min()) < fmt_in.min_int or int(z.max()) > fmt_in.max_int):
        raise DataError(f"logits lie outside {fmt_in}; requantize them into the format first.")
    e = exp_neg(z - z.max(axis=1, keepdims=True), fmt_in.frac, SOFTMAX_EXP_FRAC)  # (B, C), <= 2**20
    total = e.sum(axis=1, keepdims=True)  # (B, 1), >= 2**20
    p = (e << SOFTMAX_PROB_FRAC) // total  # (B, C), floor, 30 fractional bits
    p[np.arange(z.shape[0]), y] -= 1 << SOFTMAX_PROB_FRAC
    return requantize(p, SOFTMAX_PROB_FRAC, fmt_out, random_bits)


def softmax_xent_grad_error_bound(num_classes: int, fmt_out: FixedFormat) -> float:
    """A bound on |fixed - exact| of each gradient element (real units), for in-range gradients.

    Each exponential is within eps = 2**-21 + EXP_ERROR of e**(z - m) and the largest one is exact,
    so each p_c is within eps * (1 + (C - 1) p_c) <= C * eps of the softmax before the floor
    (< 2**-30); the output rounding adds half an LSB (nearest) or one LSB (truncate, stochastic).
    """
    eps = 2.0 ** -(SOFTMAX_EXP_FRAC + 1) + EXP_ERROR
    rounding = fmt_out.lsb / 2 if fmt_out.rounding == "nearest" else fmt_out.lsb
    return num_classes * eps + 2.0**-SOFTMAX_PROB_FRAC + rounding
