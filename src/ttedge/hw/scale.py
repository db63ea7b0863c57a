"""The dynamic-scaling controller in hardware: ``ScaleRule.update`` and a streaming max |code|.

``ScaleUnit(width, rule)`` is ``ttedge.fixed.program.ScaleRule.update`` for a buffer of ``width``
bits in two stages (LATENCY = 1: its outputs give the rule's result for the inputs of the previous
edge; the first stage compares m with the thresholds and finds the step, the second moves and
clamps frac; the sequencer writes the outputs into the frac/over/under registers at the next edge,
still before the next instruction reads them). The thresholds
HI = (hi_num * MAX) // den and LO = (lo_num * MAX) // den (MAX = 2**(width-1) - 1) are Python
constants at elaboration, so the hardware is two comparators against constants, a one-hot of m's
highest set bit with the step each position gives (a table of constants, ORed: no adder or
priority chain), and small adders::

    m         : In(width)               max |code| of the buffer (unsigned; values >= MAX act as MAX)
    frac      : In(FRAC_BITS)           the buffer's fractional bits before the step (0..MAX_FRAC)
    over      : In(bit_length(up_after))     steps in a row above HI so far (0..up_after-1)
    under     : In(bit_length(down_after))   steps in a row below LO so far (0..down_after-1)
    new_frac, new_over, new_under : Out(same shapes)   the rule's result, clamped to frac_min..frac_max

The counter inputs hold the states the rule itself produces (a counter reaching its limit resets to
0), which is what the state registers contain when they start at 0.

``MaxAbs(width)`` accumulates max |code| over a stream of signed ``width``-bit codes, with a code of
-2**(width-1) counting as MAX (the rule clamps m to MAX anyway, so the result feeds ``ScaleUnit.m``
unchanged)::

    clear  : In(1)                 start a new stream at this edge (this cycle's code, if valid, is its first)
    valid  : In(1)                 ``code`` is an element of the stream
    code   : In(signed(width))
    max    : Out(width)            max |code| of the stream so far (0 after a clear alone), LATENCY edges late

LATENCY = 2 edges: |code| is registered, then compared; a code (or clear) presented at edge t is in
``max`` after edge t + 1. In the accelerator the write stream reaches the units through
:data:`TRACK_REGS` registers, so a unit's last write is in its buffer's maximum :data:`TRACK_DELAY`
cycles after the unit's busy falls; the sequencer waits that long.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError
from ..fixed.format import MAX_FRAC, MAX_WIDTH, MIN_WIDTH
from ..fixed.program import ScaleRule
from .pipe import stage, valid_chain

__all__ = ["ScaleUnit", "MaxAbs", "FRAC_BITS", "TRACK_REGS", "TRACK_DELAY"]

FRAC_BITS = MAX_FRAC.bit_length()  # 6: the frac registers hold 0..MAX_FRAC
TRACK_REGS = 1  # registers on the write stream's way to the MaxAbs units (the write muxes, then the units)


def _check_width(width: int, unit: str) -> None:
    if not isinstance(width, int) or isinstance(width, bool) or not MIN_WIDTH <= width <= MAX_WIDTH:
        raise ConfigError(
            f"{unit} takes a buffer width from {MIN_WIDTH} to {MAX_WIDTH} bits, got {width!r}; "
            "use the buffer format's width."
        )


def _check_rule(rule: ScaleRule) -> None:
    if rule.den < 1 or rule.up_after < 1 or rule.down_after < 1 or rule.max_step < 1:
        raise ConfigError(
            f"the scale unit needs den, up_after, down_after and max_step of at least 1, got {rule}; "
            "fix the scale rule."
        )
    if not 0 <= rule.frac_min <= rule.frac_max <= MAX_FRAC:
        raise ConfigError(
            f"the scale unit needs 0 <= frac_min <= frac_max <= {MAX_FRAC}, got {rule.frac_min} and "
            f"{rule.frac_max}; fix the scale rule."
        )


class ScaleUnit(wiring.Component):
    """``ScaleRule.update(width, m, frac, over, under)`` in two pipeline stages (module docstring)."""

    LATENCY = 1  # edges from the inputs to their result on the outputs

    def __init__(self, width: int, rule: ScaleRule) -> None:
        _check_width(width, "the scale unit")
        _check_rule(rule)
        self.width, self.rule = width, rule
        over_bits, under_bits = rule.up_after.bit_length(), rule.down_after.bit_length()
        super().__init__(
            {
                "m": In(width),
                "frac": In(FRAC_BITS),
                "over": In(over_bits),
                "under": In(under_bits),
                "new_frac": Out(FRAC_BITS),
                "new_over": Out(over_bits),
                "new_under": Out(under_bits),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        rule, width = self.rule, self.width
        top = (1 << (width - 1)) - 1
        hi, lo = (rule.hi_num * top) // rule.den, (rule.lo_num * top) // rule.den
        # m clamped to MAX: its top bit set means m > MAX, and then every lower bit counts as set.
        clamped = Signal(width - 1)
        m.d.comb += clamped.eq(self.m[: width - 1] | self.m[width - 1].replicate(width - 1))

        def step_for(bit_length: int) -> int:  # min(max_step, max(1, jump)), jump = (W - 2) - bit_length
            return min(rule.max_step, max(1, (width - 2) - bit_length))

        step = Signal(signed(FRAC_BITS + 3))  # 1..W-2
        table = Mux(clamped.any(), 0, step_for(0))
        for i in range(width - 1):  # clamped's highest set bit is i: bit_length i + 1
            highest = clamped[i] & ~clamped[i + 1:].any() if i < width - 2 else clamped[i]
            table = table | Mux(highest, step_for(i + 1), 0)
        m.d.comb += step.eq(table)

        # Stage 1: the comparisons, the counters' next values and the step, registered.
        old = Signal(signed(FRAC_BITS + 4), reset_less=True)  # signed: frac - 1 may go below 0 before the clamp
        step_r = Signal.like(step, reset_less=True)
        at_top, above, below, over_hit, under_hit = (Signal(name=n, reset_less=True) for n in
                                                     ("at_top", "above", "below", "over_hit", "under_hit"))
        over_up, under_up = Signal.like(self.new_over, reset_less=True), Signal.like(self.new_under, reset_less=True)
        m.d.sync += [
            old.eq(self.frac), step_r.eq(step),
            at_top.eq(self.m >= top), above.eq(self.m > hi), below.eq(self.m < lo),  # m, not clamped: at_top wins
            over_hit.eq(self.over + 1 >= rule.up_after), under_hit.eq(self.under + 1 >= rule.down_after),
            over_up.eq(self.over + 1), under_up.eq(self.under + 1),
        ]

        # Stage 2: the new frac (before the clamp: -1..MAX_FRAC + W - 2) and counters.
        frac = Signal(signed(FRAC_BITS + 4))
        over, under = Signal.like(self.new_over), Signal.like(self.new_under)
        m.d.comb += [frac.eq(old), over.eq(0), under.eq(0)]
        with m.If(at_top):
            m.d.comb += frac.eq(old - 1)
        with m.Elif(above):
            with m.If(over_hit):
                m.d.comb += frac.eq(old - 1)
            with m.Else():
                m.d.comb += over.eq(over_up)
        with m.Elif(below):
            with m.If(under_hit):
                m.d.comb += frac.eq(old + step_r)
            with m.Else():
                m.d.comb += under.eq(under_up)
        m.d.comb += [
            self.new_frac.eq(Mux(frac < rule.frac_min, rule.frac_min, Mux(frac > rule.frac_max, rule.frac_max, frac))),
            self.new_over.eq(over),
            self.new_under.eq(under),
        ]
        return m


class MaxAbs(wiring.Component):
    """Streaming max |code| of signed ``width``-bit codes, -2**(width-1) counting as MAX (module docstring)."""

    LATENCY = 2  # edges from a presented code (or clear) to its effect on ``max``

    def __init__(self, width: int) -> None:
        _check_width(width, "the max-abs unit")
        self.width = width
        super().__init__({"clear": In(1), "valid": In(1), "code": In(signed(width)), "max": Out(width)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        top = (1 << (self.width - 1)) - 1
        magnitude = stage(m, Mux(self.code < -top, top, Mux(self.code < 0, -self.code, self.code)), self.width, "magnitude")
        valid, clear = valid_chain(m, self.valid, 1, "valid_r")[-1], valid_chain(m, self.clear, 1, "clear_r")[-1]
        current = Mux(clear, 0, self.max)
        with m.If(valid & (magnitude > current)):
            m.d.sync += self.max.eq(magnitude)
        with m.Elif(clear):
            m.d.sync += self.max.eq(0)
        return m


# Cycles after a unit's busy falls (the cycle after its last write) until that write is in its
# buffer's maximum: the write stream's registers, then the MaxAbs pipeline. The sequencer waits them.
TRACK_DELAY = TRACK_REGS + MaxAbs.LATENCY - 1
