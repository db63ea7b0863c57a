"""Pipeline registers, for the units that split their datapaths into stages.

``stage(m, value, shape, name)`` registers ``value`` (one clock edge) into a new signal of ``shape``
and returns it; ``delay(m, signal, edges, name)`` is ``signal`` delayed by ``edges`` such stages;
``valid_chain(m, valid, edges)`` is the list ``[valid, valid after 1 edge, ..., after edges]``, whose
registers reset to 0 (the datapath stages have no reset: they matter only while their valid is high).
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.hdl import Shape, ShapeCastable, Value

__all__ = ["stage", "delay", "valid_chain"]


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
