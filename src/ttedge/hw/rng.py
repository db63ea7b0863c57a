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
LATENCY = 4 * ROUNDS + 1 = 17 clock edges later. Every stage has at most one 32-bit adder: the
first adds the first round's key to ``a``; then each quarter round takes four stages, ``a + b``,
``c + d``, ``a + b``, ``c + d`` (each followed by its XOR and rotation, which is wiring), the next
round's key being added to ``a`` in the last of them, beside ``c + d``. ``word`` is the XOR of two
stage registers (one LUT level after the last stage).

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

    LATENCY = 4 * ROUNDS + 1  # clock edges from a request (valid) to its word (valid_out)

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
        state = {"a": a, "b": b, "c": c, "d": d, "valid": valid}

        def step(name: str, **new: Value) -> None:  # one pipeline stage: the values changed, all registered
            for x, v in state.items():
                reg = Signal(32 if x != "valid" else 1, name=f"{x}_{name}", reset_less=x != "valid")
                m.d.sync += reg.eq(new.get(x, v))
                state[x] = reg

        step("k0", a=(a + _KEYS[0])[:_WORD])
        for r in range(ROUNDS):
            for half in range(2):
                # The quarter round in two halves; the rotations are (16, 12) then (8, 7).
                rot_d, rot_b = (16, 12) if half == 0 else (8, 7)
                a_next = (state["a"] + state["b"])[:_WORD]
                step(f"r{r}h{half}a", a=a_next, d=_rotl(state["d"] ^ a_next, rot_d))
                c_next = (state["c"] + state["d"])[:_WORD]
                more = {"a": (state["a"] + _KEYS[r + 1])[:_WORD]} if half == 1 and r + 1 < ROUNDS else {}
                step(f"r{r}h{half}c", c=c_next, b=_rotl(state["b"] ^ c_next, rot_b), **more)
        b, d, valid = state["b"], state["d"], state["valid"]
        m.d.comb += [self.word.eq(b ^ d), self.valid_out.eq(valid)]
        return m
