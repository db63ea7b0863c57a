"""The output stage: one element of ``ttedge.fixed.ops.requantize`` with saturation, pipelined.

``OutputStage(in_width, out_width, out_signed=True)`` narrows a signed ``in_width``-bit code with
``from_frac`` fractional bits into an ``out_width``-bit code with ``to_frac`` fractional bits, for
a runtime shift k = from_frac - to_frac and a runtime rounding mode, exactly as ``requantize`` does
for a format with overflow "saturate":

* k > 0: the k low bits are dropped; q = value >> k (floor), then nearest adds bit k-1 of the value
  (round half up), truncate adds nothing, stochastic adds one iff ``random`` < F, F the dropped
  bits left-aligned in 32 bits (D << (32 - k));
* k <= 0: the value shifts left by -k, exactly;
* then the result is clamped to the output range and ``saturated`` says it was out of range (the
  reference counts those in its ``SaturationCount``).

Interface::

    value     : In(signed(in_width))       the wide code
    shift     : In(signed(SHIFT_BITS))     k = from_frac - to_frac, in bits (SHIFT_BITS = 7: -64..63)
    rounding  : In(RoundingMode)           NEAREST, TRUNCATE or STOCHASTIC
    random    : In(32)                     the element's word of ttedge.fixed.rng (stochastic only)
    valid     : In(1)
    code      : Out(signed(out_width))     (unsigned(out_width) when out_signed=False)
    saturated : Out(1)                     the rounded value lay outside the output range
    valid_out : Out(1)

Timing: LATENCY = 6 clock edges, one element per cycle, no stall, each stage short enough for the
accelerator's clock: (1) the shift amounts (clamped k, -k); (2) the shifters' coarse steps
(multiples of 8 bits); (3) their fine steps (0..7 bits); (4) the rounding increment (a 32-bit
comparison for stochastic); (5) the adder; (6) the clamp, which tests the bits above the output's
width instead of comparing.

How every k of ``shift_range`` is exact with bounded shifters: the value is extended by 32 zero
bits, X = value * 2**32 (in_width + 32 bits), and shifted right arithmetically by
min(k, in_width + 32); the high in_width bits are q and the low 32 bits are F (for k <= 32), whose
top bit is bit k-1 of the value for any k >= 1, the nearest-rounding bit. Shifting by more than
in_width + 31 only repeats the sign, so the clamp changes nothing. A left shift by
s >= out_width sends every nonzero value out of range (|value| * 2**s >= 2**out_width) and keeps 0,
so the left shifter takes min(-k, out_width). Stochastic rounding with k > 32 is refused by the
reference (``MAX_STOCHASTIC_SHIFT``); the unit then gives an unspecified code, and
:func:`shift_range` / :func:`check_shift` state the limit for the sequencer's compiler.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError
from ..fixed.format import MAX_FRAC, MAX_WIDTH, MIN_WIDTH, ROUNDINGS
from ..fixed.ops import MAX_STOCHASTIC_SHIFT
from .pipe import delay, stage, valid_chain

__all__ = ["RoundingMode", "OutputStage", "SHIFT_BITS", "shift_range", "check_shift", "check_widths"]

SHIFT_BITS = 7  # signed shift port: -64..63 holds every from_frac - to_frac in -MAX_FRAC..MAX_FRAC
_RANDOM_BITS = 32
_FINE_BITS = 3  # the shifters' second stage moves by 0..7 bits, the first by multiples of 8


class RoundingMode(enum.Enum, shape=2):
    """The rounding of dropped bits, as ``FixedFormat.rounding`` names it (``ROUNDINGS`` order)."""

    NEAREST = 0
    TRUNCATE = 1
    STOCHASTIC = 2

    @classmethod
    def from_name(cls, name: str) -> "RoundingMode":
        """The mode of a ``FixedFormat.rounding`` string ("nearest", "truncate", "stochastic")."""
        if name not in ROUNDINGS:
            raise ConfigError(f"unknown rounding mode {name!r}; use one of {', '.join(ROUNDINGS)}.")
        return cls[name.upper()]


def check_widths(in_width: int, out_width: int, out_signed: bool = True) -> None:
    """Raise ConfigError unless the unit supports these widths (bits): both 2..64 (as the int64
    codes of the reference), an unsigned output at most 63 bits (as ``FixedFormat``)."""
    for name, width in (("input", in_width), ("output", out_width)):
        if not isinstance(width, int) or isinstance(width, bool) or not MIN_WIDTH <= width <= MAX_WIDTH:
            raise ConfigError(
                f"the output stage's {name} width must be an integer from {MIN_WIDTH} to {MAX_WIDTH} bits, "
                f"got {width!r}; requantize wider codes in two steps."
            )
    if not out_signed and out_width == MAX_WIDTH:
        raise ConfigError(
            f"an unsigned output stage holds at most {MAX_WIDTH - 1} bits, got {out_width}; use a signed output."
        )


def shift_range(in_width: int, out_width: int, rounding: str = "nearest") -> tuple[int, int]:
    """(k_min, k_max): the shifts k = from_frac - to_frac (bits) the unit computes exactly.

    Every from_frac and to_frac in 0..MAX_FRAC is supported whatever the widths (the module
    docstring says why), except that stochastic rounding drops at most MAX_STOCHASTIC_SHIFT bits.
    """
    check_widths(in_width, out_width)
    high = MAX_STOCHASTIC_SHIFT if rounding == "stochastic" else MAX_FRAC
    return -MAX_FRAC, high


def check_shift(k: int, in_width: int, out_width: int, rounding: str) -> None:
    """Raise ConfigError unless ``shift_range`` holds the shift ``k`` (bits) for this rounding."""
    low, high = shift_range(in_width, out_width, rounding)
    if not low <= k <= high:
        raise ConfigError(
            f"the output stage shifts by {low} to {high} bits with {rounding} rounding, got {k}; "
            "requantize in two steps or use more fractional bits."
        )


class OutputStage(wiring.Component):
    """One element of ``requantize(..., overflow="saturate")`` per cycle (module docstring)."""

    LATENCY = 6  # clock edges from valid to valid_out

    def __init__(self, in_width: int, out_width: int, out_signed: bool = True) -> None:
        check_widths(in_width, out_width, out_signed)
        self.in_width, self.out_width, self.out_signed = in_width, out_width, out_signed
        out_shape = signed(out_width) if out_signed else unsigned(out_width)
        super().__init__(
            {
                "value": In(signed(in_width)),
                "shift": In(signed(SHIFT_BITS)),
                "rounding": In(RoundingMode),
                "random": In(_RANDOM_BITS),
                "valid": In(1),
                "code": Out(out_shape),
                "saturated": Out(1),
                "valid_out": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        w_in, w_out = self.in_width, self.out_width
        base_width = w_in + w_out  # `base` holds q (right) or the exact value * 2**min(s, out_width)
        fine = _FINE_BITS

        valid = valid_chain(m, self.valid, self.LATENCY)
        m.d.comb += self.valid_out.eq(valid[-1])

        # (1) the shift amounts (k clamped to the right shifter's reach, -k to the left one's; the
        # side the sign of k does not pick is discarded in (3), so neither is clamped at 0).
        k = self.shift
        right_amount = stage(m, Mux(k > w_in + _RANDOM_BITS, w_in + _RANDOM_BITS, k), range(w_in + _RANDOM_BITS + 1), "right_amount")
        left_amount = stage(m, Mux(-k > w_out, w_out, -k), range(w_out + 1), "left_amount")
        right1 = delay(m, k > 0, 2, "right")  # beside the amounts, then beside the coarse steps
        value = stage(m, self.value, signed(w_in), "value0")

        # (2) both shifters' coarse steps (multiples of 2**fine bits).
        wide = Cat(Const(0, _RANDOM_BITS), value).as_signed()  # value * 2**32
        coarse_r = stage(m, wide >> (right_amount >> fine << fine), signed(w_in + _RANDOM_BITS), "coarse_r")
        coarse_l = stage(m, (value << (left_amount >> fine << fine))[:base_width].as_signed(), signed(base_width), "coarse_l")
        fine_r = stage(m, right_amount[:fine], fine, "fine_r")
        fine_l = stage(m, left_amount[:fine], fine, "fine_l")
        mode = delay(m, self.rounding, 3, "mode")
        word = delay(m, self.random, 3, "word")

        # (3) the fine steps: base, and F, the dropped bits left-aligned (0 if k <= 0).
        shifted = (coarse_r >> fine_r).as_signed()
        left = (coarse_l << fine_l)[:base_width].as_signed()
        base = stage(m, Mux(right1, shifted[_RANDOM_BITS:].as_signed(), left), signed(base_width), "base")
        dropped = stage(m, Mux(right1, shifted[:_RANDOM_BITS], 0), _RANDOM_BITS, "dropped")

        # (4) the rounding increment (a 32-bit comparison for stochastic rounding).
        up = Signal()
        with m.Switch(mode):
            with m.Case(RoundingMode.NEAREST):
                m.d.comb += up.eq(dropped[_RANDOM_BITS - 1])
            with m.Case(RoundingMode.STOCHASTIC):
                m.d.comb += up.eq(word < dropped)
            with m.Default():
                m.d.comb += up.eq(0)
        up3 = stage(m, up, 1, "up")
        base3 = stage(m, base, signed(base_width), "base3")

        # (5) the rounded value.
        rounded = stage(m, base3 + up3, signed(base_width + 1), "rounded")

        # (6) the clamp: the value fits iff its bits above the output's are copies of its sign
        # (signed output) or zero (unsigned), which needs no comparator.
        sign = rounded[-1]
        above_bits = rounded[w_out - 1 :] if self.out_signed else rounded[w_out:]
        if self.out_signed:
            low, high = -(1 << (w_out - 1)), (1 << (w_out - 1)) - 1
            above, below = ~sign & above_bits.any(), sign & ~above_bits.all()
        else:
            low, high = 0, (1 << w_out) - 1
            above, below = ~sign & above_bits.any(), sign
        m.d.sync += [
            self.code.eq(Mux(above, high, Mux(below, low, rounded[:w_out]))),
            self.saturated.eq(above | below),
        ]
        return m
