"""Pipeline registers, for the units that split their datapaths into stages.

``stage(m, value, shape, name)`` registers ``value`` (one clock edge) into a new signal of ``shape``
and returns it; ``delay(m, signal, edges, name)`` is ``signal`` delayed by ``edges`` such stages;
``valid_chain(m, valid, edges)`` is the list ``[valid, valid after 1 edge, ..., after edges]``, whose
registers reset to 0 (the datapath stages have no reset: they matter only while their valid is high);
``shift_stages(m, value, amount, left, name)`` is a barrel shift done in registered steps of
:data:`SHIFT_STEP_BITS` amount bits each (:func:`shift_edges` of them).

Call them outside ``m.If`` / ``m.Switch`` blocks: a register added inside one is loaded only when
its condition holds.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.hdl import Shape, ShapeCastable, Value

__all__ = ["stage", "delay", "valid_chain", "shift_stages", "shift_edges", "SHIFT_STEP_BITS"]

SHIFT_STEP_BITS = 3  # amount bits a shifter stage takes: 8 positions, three levels of 2:1 muxes


def stage(m: Module, value: object, shape: Shape | ShapeCastable | int | range, name: str) -> Signal:
    """``value`` registered (one pipeline edge), as a new signal of ``shape`` named ``name``."""
    reg = Signal(shape, name=name, reset_less=True)
    m.d.sync += reg.eq(value)
    return reg


def delay(m: Module, signal: Value, edges: int, name: str) -> Value:
    """``signal`` delayed by ``edges`` pipeline edges (itself when ``edges`` is 0)."""
    for t in range(edges):
        signal = stage(m, signal, signal.shape(), f"{name}_d{t}")
    return signal


def valid_chain(m: Module, valid: Value, edges: int, name: str = "valid") -> list[Value]:
    """``valid`` and its copies delayed by 1 .. ``edges`` edges (registers that reset to 0)."""
    chain = [valid]
    for t in range(edges):
        reg = Signal(name=f"{name}{t + 1}")
        m.d.sync += reg.eq(chain[-1])
        chain.append(reg)
    return chain


def shift_edges(amount_bits: int) -> int:
    """Pipeline edges of :func:`shift_stages` for an amount of ``amount_bits`` bits."""
    return -(-amount_bits // SHIFT_STEP_BITS)


def shift_stages(m: Module, value: Value, amount: Value, left: bool, name: str) -> Signal:
    """``value`` shifted left (truncated to its width) or right (arithmetically if signed) by the
    unsigned ``amount``, in :func:`shift_edges` registered steps, low amount bits first; ``amount``
    must hold for those edges (the callers' amounts are per-instruction registers). Each step moves
    by 0 .. 7 times its weight, so no step is deeper than three 2:1 muxes."""
    shape, bits = value.shape(), len(amount)
    for k in range(shift_edges(bits)):
        part = amount[k * SHIFT_STEP_BITS:(k + 1) * SHIFT_STEP_BITS]
        moved = (value << (part << (k * SHIFT_STEP_BITS))) if left else (value >> (part << (k * SHIFT_STEP_BITS)))
        value = stage(m, moved[:shape.width] if left else moved, shape, f"{name}_s{k}")
    return value
