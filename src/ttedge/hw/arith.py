"""Iterative integer units: a restoring divider and a restoring square root, one result bit per cycle.

Both share one handshake::

    start : In(1)    at an edge where busy is low, the operands are taken and the unit starts
    busy  : Out(1)   an operation is under way; start is ignored meanwhile
    done  : Out(1)   high for one cycle when the result is ready; the result then holds until the next start

From the edge that takes ``start`` to the cycle where ``done`` reads high there are exactly
``cycles()`` clock edges: one to load the operands plus one per result bit. ``busy`` is low again
in the cycle where ``done`` is high, so a new ``start`` can be taken at the very next edge (one
operation per ``cycles()`` edges, back to back).

``Divider(num_width, den_width, quotient_width=num_width)``: unsigned floor division
``quotient = num // den`` and ``remainder = num % den`` (``Out(quotient_width)``,
``Out(den_width)``), for ``num``: In(num_width) and ``den``: In(den_width). With a quotient
narrower than the numerator the caller guarantees num < den * 2**quotient_width (the quotient
fits), and the unit skips the leading bits whose quotient bits are known to be zero: the softmax
divides e * 2**30 by S >= e, whose quotient is at most 2**30, in 31 steps instead of 51.
Cycles: quotient_width + 1. A zero ``den`` gives an all-ones quotient (unspecified remainder).

``FloorDivider(num_width, den_width, quotient_width=num_width - 1)``: the same with a signed
numerator (``num``: In(signed(num_width))) and Python's floor semantics, as the Adam update's
U = floor(M * 2**e / D) needs (M is signed): ``quotient`` = num // den (Out(signed(quotient_width +
1))), ``remainder`` = num % den (0 <= remainder < den). For num < 0 it divides ~num = -num - 1
(num_width - 1 bits, never negative) and returns ~q' = -q' - 1 and den - 1 - r', which is exactly
floor(num / den): two rows of inverters around a ``Divider(num_width - 1, den_width,
quotient_width)``. Same handshake and cycles (quotient_width + 1); den must be nonzero, and with a
narrow quotient |num // den| < 2**quotient_width (for num < 0: ~num < den * 2**quotient_width).

``ISqrt(width)``: ``root = floor(sqrt(n))`` (``Out(ceil(width / 2))``) of ``n``: In(width), digit
by digit in base 2 (two radicand bits per step), equal to ``ttedge.fixed.interpreter.isqrt``.
Cycles: ceil(width / 2) + 1.

The iterations are restoring: each step forms a trial remainder with one (divider) or two (root)
more bits and subtracts the divisor (or 4 * root + 1) when the trial is not smaller, which sets the
result bit. The datapath registers have no reset; ``busy`` and ``done`` reset to 0.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError

__all__ = ["Divider", "FloorDivider", "ISqrt", "divider_cycles", "isqrt_cycles"]


def _check_positive(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive number of bits, got {value!r}; pass an integer of at least 1.")
    return value


def divider_cycles(quotient_width: int) -> int:
    """Clock edges from start to done of a ``Divider`` with a ``quotient_width``-bit quotient."""
    return _check_positive("the quotient width", quotient_width) + 1


def isqrt_cycles(width: int) -> int:
    """Clock edges from start to done of an ``ISqrt`` of a ``width``-bit radicand."""
    return (_check_positive("the radicand width", width) + 1) // 2 + 1


class Divider(wiring.Component):
    """Restoring unsigned floor division, one quotient bit per cycle (module docstring)."""

    def __init__(self, num_width: int, den_width: int, quotient_width: int | None = None) -> None:
        _check_positive("the numerator width", num_width)
        _check_positive("the denominator width", den_width)
        quotient_width = num_width if quotient_width is None else quotient_width
        _check_positive("the quotient width", quotient_width)
        if quotient_width > num_width:
            raise ConfigError(
                f"the quotient width ({quotient_width} bits) exceeds the numerator width ({num_width} bits); "
                "pass at most the numerator width."
            )
        self.num_width, self.den_width, self.quotient_width = num_width, den_width, quotient_width
        super().__init__(
            {
                "start": In(1),
                "num": In(num_width),
                "den": In(den_width),
                "busy": Out(1),
                "done": Out(1),
                "quotient": Out(quotient_width),
                "remainder": Out(den_width),
            }
        )

    def cycles(self) -> int:
        """Clock edges from the edge that takes ``start`` to the cycle where ``done`` is high."""
        return divider_cycles(self.quotient_width)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        q_bits, d_bits = self.quotient_width, self.den_width
        rem = Signal(d_bits, reset_less=True)  # < den between steps
        work = Signal(q_bits, reset_less=True)  # numerator bits still to bring down, then quotient bits
        den = Signal(d_bits, reset_less=True)
        count = Signal(range(q_bits + 1), reset_less=True)
        trial = Signal(d_bits + 1)
        m.d.comb += [trial.eq(Cat(work[-1], rem)), self.quotient.eq(work), self.remainder.eq(rem)]
        m.d.sync += self.done.eq(0)
        with m.If(self.busy):
            take = trial >= den
            with m.If(take):
                m.d.sync += rem.eq(trial - den)
            with m.Else():
                m.d.sync += rem.eq(trial)
            m.d.sync += [work.eq(Cat(take, work[:-1])), count.eq(count - 1)]
            with m.If(count == 1):
                m.d.sync += [self.busy.eq(0), self.done.eq(1)]
        with m.Elif(self.start):
            m.d.sync += [
                rem.eq(self.num >> q_bits),
                work.eq(self.num[:q_bits]),
                den.eq(self.den),
                count.eq(q_bits),
                self.busy.eq(1),
            ]
        return m


class FloorDivider(wiring.Component):
    """Signed-numerator floor division (Python ``//`` and ``%``) around a ``Divider`` (module docstring)."""

    def __init__(self, num_width: int, den_width: int, quotient_width: int | None = None) -> None:
        if not isinstance(num_width, int) or isinstance(num_width, bool) or num_width < 2:
            raise ConfigError(
                f"a signed numerator needs at least 2 bits, got {num_width!r}; pass the numerator's width with its sign."
            )
        self.divider = Divider(num_width - 1, den_width, quotient_width)
        self.num_width, self.den_width = num_width, den_width
        self.quotient_width = self.divider.quotient_width
        super().__init__(
            {
                "start": In(1),
                "num": In(signed(num_width)),
                "den": In(den_width),
                "busy": Out(1),
                "done": Out(1),
                "quotient": Out(signed(self.quotient_width + 1)),
                "remainder": Out(den_width),
            }
        )

    def cycles(self) -> int:
        """Clock edges from the edge that takes ``start`` to the cycle where ``done`` is high."""
        return self.divider.cycles()

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.divider = divider = self.divider
        negative = Signal(reset_less=True)
        den = Signal(self.den_width, reset_less=True)
        with m.If(self.start & ~divider.busy):
            m.d.sync += [negative.eq(self.num < 0), den.eq(self.den)]
        magnitude = Mux(self.num < 0, ~self.num, self.num)  # -num - 1 when negative: num_width - 1 bits
        m.d.comb += [
            divider.start.eq(self.start),
            divider.num.eq(magnitude[: self.num_width - 1]),
            divider.den.eq(self.den),
            self.busy.eq(divider.busy),
            self.done.eq(divider.done),
            self.quotient.eq(Mux(negative, ~Cat(divider.quotient, Const(0, 1)).as_signed(), divider.quotient)),
            self.remainder.eq(Mux(negative, den - 1 - divider.remainder, divider.remainder)),
        ]
        return m


class ISqrt(wiring.Component):
    """Restoring bit-by-bit floor(sqrt(n)), one root bit per cycle (module docstring)."""

    def __init__(self, width: int) -> None:
        self.width = _check_positive("the radicand width", width)
        self.root_width = (width + 1) // 2
        super().__init__(
            {"start": In(1), "n": In(width), "busy": Out(1), "done": Out(1), "root": Out(self.root_width)}
        )

    def cycles(self) -> int:
        """Clock edges from the edge that takes ``start`` to the cycle where ``done`` is high."""
        return isqrt_cycles(self.width)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        r_bits = self.root_width
        root = Signal(r_bits, reset_less=True)
        rem = Signal(r_bits + 1, reset_less=True)  # n_so_far - root**2 <= 2 * root < 2**(r_bits+1)
        work = Signal(2 * r_bits, reset_less=True)  # radicand bits still to bring down, two per step
        count = Signal(range(r_bits + 1), reset_less=True)
        trial_rem = Signal(r_bits + 3)
        trial = Signal(r_bits + 2)
        m.d.comb += [
            trial_rem.eq(Cat(work[-2:], rem)),  # 4 * rem + next two bits
            trial.eq(Cat(Const(1, 2), root)),  # 4 * root + 1
            self.root.eq(root),
        ]
        m.d.sync += self.done.eq(0)
        with m.If(self.busy):
            take = trial_rem >= trial
            with m.If(take):
                m.d.sync += rem.eq(trial_rem - trial)
            with m.Else():
                m.d.sync += rem.eq(trial_rem)
            m.d.sync += [root.eq(Cat(take, root)), work.eq(work << 2), count.eq(count - 1)]
            with m.If(count == 1):
                m.d.sync += [self.busy.eq(0), self.done.eq(1)]
        with m.Elif(self.start):
            m.d.sync += [rem.eq(0), root.eq(0), work.eq(self.n), count.eq(r_bits), self.busy.eq(1)]
        return m
