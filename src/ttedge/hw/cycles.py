"""The cycle model: clock cycles of every instruction from the program and the accelerator config.

Each function mirrors the timing rules its unit's docstring states (no fitted constants); the tests
check them against the simulated counts cycle for cycle.
"""

from __future__ import annotations

from ..fixed.program import Contract
from .config import AcceleratorConfig
from .isa import contract_fields

__all__ = ["contract_cycles"]


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def contract_cycles(ins: Contract, config: AcceleratorConfig) -> int:
    """Cycles the engine is busy on ``ins``, from its start cycle to the cycle ``busy`` falls."""
    f = contract_fields(ins, config.q)
    P, Q, D = config.p, config.q, config.p * config.q
    tiles = _ceil(f["nx"], P) * _ceil(f["ny"], Q)
    z = f["nzhi"] * f["nzlo"]
    last_start = Q + 1 + (tiles - 1) * max(z, D)
    return last_start + z + 1 + D
