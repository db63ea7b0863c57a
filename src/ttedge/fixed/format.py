"""The fixed-point number format: one immutable, hashable value with a canonical string.

A value of format ``FixedFormat(width, frac, signed, rounding, overflow)`` is an integer *code* c
stored in ``width`` bits and standing for the real number c * 2**-frac. Codes are held in NumPy
int64 arrays by the reference ops (``ttedge.fixed.ops``), so

* signed codes are two's complement: min_int = -2**(width-1), max_int = 2**(width-1) - 1;
* unsigned codes: min_int = 0, max_int = 2**width - 1 (hence width <= 63 when unsigned);
* ``frac`` (fractional bits) lies in 0..62; it may exceed ``width``, in which case every value is
  a fraction smaller than one (``int_bits`` is then negative, as in HLS ap_fixed with I < 0).

``int_bits`` follows the HLS ``ap_fixed<W, I>`` convention: I = width - frac, counting the sign bit
of a signed format. METHOD.md's research-code types read as ``fx<4,1>`` (weights, LSB 1/8),
``fx<16,9>`` (activations, LSB 1/128) and ``fx<32,11>`` (accumulators, LSB 2**-21).

Rounding, applied whenever bits below the LSB are dropped (all exact, integer-only):

* ``nearest``: round half up, i.e. add half an LSB, then floor. It is the cheapest round-to-nearest
  in hardware (one adder on the kept bits, fed by the most significant dropped bit) and is unbiased
  except for exact ties, which go towards +infinity (so -2.5 -> -2 and 2.5 -> 3).
* ``truncate``: floor (drop the bits of a two's-complement number; rounds towards -infinity).
* ``stochastic``: floor, plus one LSB iff R < F, where F is the dropped fraction left-aligned in 32
  bits and R a 32-bit word of ``ttedge.fixed.rng``; P(up) = dropped fraction, exactly.

Overflow, applied to the rounded code: ``saturate`` clamps to [min_int, max_int], ``wrap`` keeps the
low ``width`` bits (two's complement for signed formats). Either way the reference ops count the
out-of-range values and return that count; nothing overflows silently.

Canonical string (configs and reports): ``fx<W,I>`` for signed, ``ufx<W,I>`` for unsigned, followed
by the modes that differ from the defaults (nearest, saturate) in the order rounding, overflow:
``fx<16,9>``, ``fx<4,1,stochastic>``, ``ufx<8,0,truncate,wrap>``. Unlike ap_fixed, whose defaults
are truncation and wrap-around, the defaults here are nearest and saturate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, get_args

from ..errors import ConfigError

__all__ = ["FixedFormat", "Rounding", "Overflow", "ROUNDINGS", "OVERFLOWS"]

Rounding = Literal["nearest", "truncate", "stochastic"]
Overflow = Literal["saturate", "wrap"]
ROUNDINGS: tuple[str, ...] = get_args(Rounding)
OVERFLOWS: tuple[str, ...] = get_args(Overflow)

MIN_WIDTH, MAX_WIDTH = 2, 64  # bits; 64 fills an int64 code
MAX_FRAC = 62  # fractional bits; keeps 2**frac and 2**-frac exact in int64 and float64

_PATTERN = re.compile(r"^(u?)fx<\s*([+-]?\d+)\s*,\s*([+-]?\d+)\s*((?:,\s*[a-z]+\s*)*)>$")
_FORMS = "write it as fx<W,I> or ufx<W,I> with optional rounding and overflow modes, e.g. fx<16,9,stochastic,wrap>"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format; see the module docstring for the bit-level meaning of each field."""

    width: int  # total bits, sign included: 2..64 (2..63 unsigned)
    frac: int  # fractional bits: a code c stands for c * 2**-frac; 0..62
    signed: bool = True  # two's complement if True, else unsigned
    rounding: Rounding = "nearest"  # how dropped bits round: nearest (half up), truncate, stochastic
    overflow: Overflow = "saturate"  # what an out-of-range code becomes: saturate or wrap

    def __post_init__(self) -> None:
        if not _is_int(self.width) or not MIN_WIDTH <= self.width <= MAX_WIDTH:
            raise ConfigError(
                f"fixed-point width must be an integer from {MIN_WIDTH} to {MAX_WIDTH} bits, "
                f"got {self.width!r}; pick a width in that range."
            )
        if not _is_int(self.frac) or not 0 <= self.frac <= MAX_FRAC:
            raise ConfigError(
                f"fixed-point fractional bits must be an integer from 0 to {MAX_FRAC}, "
                f"got {self.frac!r}; pick a value in that range."
            )
        if not isinstance(self.signed, bool):
            raise ConfigError(f"fixed-point signed must be True or False, got {self.signed!r}; pass a bool.")
        if not self.signed and self.width > MAX_WIDTH - 1:
            raise ConfigError(
                f"an unsigned fixed-point format has at most {MAX_WIDTH - 1} bits to fit int64 codes, "
                f"got {self.width}; use a narrower or a signed format."
            )
        if self.rounding not in ROUNDINGS:
            raise ConfigError(f"unknown rounding mode {self.rounding!r}; use one of {', '.join(ROUNDINGS)}.")
        if self.overflow not in OVERFLOWS:
            raise ConfigError(f"unknown overflow mode {self.overflow!r}; use one of {', '.join(OVERFLOWS)}.")

    @classmethod
    def parse(cls, text: str) -> FixedFormat:
        """The format written as ``fx<W,I[,rounding][,overflow]>`` or ``ufx<...>`` (I = W - frac).

        Spaces after commas are accepted; modes may come in either order but at most one of each.
        """
        match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ConfigError(f"cannot parse fixed-point format {text!r}; {_FORMS}.")
        unsigned, width_text, int_text, mode_text = match.groups()
        width, int_bits = int(width_text), int(int_text)
        modes = [m.strip() for m in mode_text.split(",")[1:]]
        rounding = [m for m in modes if m in ROUNDINGS]
        overflow = [m for m in modes if m in OVERFLOWS]
        unknown = [m for m in modes if m not in ROUNDINGS and m not in OVERFLOWS]
        if unknown:
            raise ConfigError(
                f"unknown mode {unknown[0]!r} in fixed-point format {text!r}; "
                f"use rounding {', '.join(ROUNDINGS)} or overflow {', '.join(OVERFLOWS)}."
            )
        if len(rounding) > 1 or len(overflow) > 1:
            raise ConfigError(
                f"fixed-point format {text!r} names more than one rounding or overflow mode; keep one of each."
            )
        return cls(
            width,
            width - int_bits,
            signed=not unsigned,
            rounding=rounding[0] if rounding else "nearest",  # type: ignore[arg-type]
            overflow=overflow[0] if overflow else "saturate",  # type: ignore[arg-type]
        )

    def __str__(self) -> str:
        modes = ""
        if self.rounding != "nearest":
            modes += f",{self.rounding}"
        if self.overflow != "saturate":
            modes += f",{self.overflow}"
        return f"{'' if self.signed else 'u'}fx<{self.width},{self.int_bits}{modes}>"

    @property
    def int_bits(self) -> int:
        """HLS ap_fixed I: integer bits including the sign bit, width - frac (negative if frac > width)."""
        return self.width - self.frac

    @property
    def min_int(self) -> int:
        """The smallest code."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        """The largest code."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def lsb_exact(self) -> Fraction:
        """The value of one code step, 2**-frac, exactly."""
        return Fraction(1, 1 << self.frac)

    def min_exact(self) -> Fraction:
        """The smallest representable value, exactly."""
        return self.min_int * self.lsb_exact()

    def max_exact(self) -> Fraction:
        """The largest representable value, exactly."""
        return self.max_int * self.lsb_exact()

    @property
    def lsb(self) -> float:
        """The value of one code step as a float (exact)."""
        return float(self.lsb_exact())

    @property
    def min(self) -> float:
        """The smallest representable value as a float (exact for width <= 54)."""
        return float(self.min_exact())

    @property
    def max(self) -> float:
        """The largest representable value as the nearest float (exact for width <= 53)."""
        return float(self.max_exact())
