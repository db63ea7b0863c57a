"""A pipelined lane of the counter-based rounding generator (``ttedge.fixed.rng``).

``RandomLane`` computes ``random_bits_scalar(seed, stream, step, index)`` bit for bit. The round
constants (``_INIT``, ``_KEYS``) and the round count (``ROUNDS``) are imported from the reference
module, so the two cannot drift apart.

Interface (all words 32-bit unsigned)::

    seed, stream, step, index : In(32)   the four coordinates of the element
    valid                     : In(1)    the inputs of this cycle are a request
    word                      : Out(32)  the random word of the request made LATENCY cycles ago
    valid_out                 : Out(1)   ``word`` belongs to a request

Timing: fully pipelined, one request per cycle, no stall. A request presented with ``valid`` high
before clock edge t appears on ``word`` with ``valid_out`` high after edge t + LATENCY - 1, i.e.
LATENCY = 2 * ROUNDS = 8 clock edges later. Each pipeline stage holds half a round (two 32-bit
adders, two XORs and two rotations, which are wiring); the key of the next round is added to ``a``
in the stage before it, beside ``c + d``, so the longest path is two chained adders (``a + b`` then
``c + d``). ``word`` is the XOR of two stage registers (one LUT level after the last stage).

Datapath registers have no reset (they carry no state that matters while ``valid_out`` is low);
only the valid chain resets.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

from amaranth import Cat, Module, Signal
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fixed.rng import _INIT, _KEYS, ROUNDS

__all__ = ["RandomLane"]

_WORD = 32


def _rotl(x: Value, r: int) -> Value:
    """A left rotation of a 32-bit value by a constant: only wiring."""
    return Cat(x[_WORD - r :], x[: _WORD - r])


class RandomLane(wiring.Component):
    """One random word per cycle, equal to ``ttedge.fixed.rng.random_bits_scalar`` (module docstring)."""

    LATENCY = 2 * ROUNDS  # clock edges from a request (valid) to its word (valid_out)

    seed: In(32)
    stream: In(32)
    step: In(32)
    index: In(32)
    valid: In(1)
    word: Out(32)
    valid_out: Out(1)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        a = self.seed ^ _INIT[0]
        b = self.stream ^ _INIT[1]
        c = self.step ^ _INIT[2]
        d = self.index ^ _INIT[3]
        valid: Value = self.valid
        a = (a + _KEYS[0])[:_WORD]  # each round's key is added to a one stage early (see below)
        for r in range(ROUNDS):
            for half in range(2):
                # The quarter round in two halves; the rotations are (16, 12) then (8, 7).
                rot_d, rot_b = (16, 12) if half == 0 else (8, 7)
                a_next = (a + b)[:_WORD]
                d_next = _rotl(d ^ a_next, rot_d)
                c_next = (c + d_next)[:_WORD]
                b_next = _rotl(b ^ c_next, rot_b)
                if half == 1 and r + 1 < ROUNDS:  # the next round's a + K, beside c + d: two adders deep
                    a_next = (a_next + _KEYS[r + 1])[:_WORD]
                regs = [Signal(32, name=f"{x}_r{r}h{half}", reset_less=True) for x in "abcd"]
                v = Signal(name=f"valid_r{r}h{half}")
                m.d.sync += [regs[0].eq(a_next), regs[1].eq(b_next), regs[2].eq(c_next), regs[3].eq(d_next)]
                m.d.sync += v.eq(valid)
                a, b, c, d = regs
                valid = v
        m.d.comb += [self.word.eq(b ^ d), self.valid_out.eq(valid)]
        return m
