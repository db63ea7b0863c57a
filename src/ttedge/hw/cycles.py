"""The cycle model: clock cycles of every instruction from the program and the accelerator config.

Each count follows the timing rules the units' docstrings state (no fitted constants); the tests
check them against the simulated counts cycle for cycle. Per instruction the sequencer spends
:data:`SEQUENCER` cycles (fetch, decode, issue), then waits for its unit, and after it
``top.WAIT`` cycles (its busy's way to the sequencer, or its last write's way into the buffer's
max |code|, ``scale.TRACK_DELAY``, whichever is longer):

* Contract: the engine's count (:func:`contract_cycles`) plus ``OUTPUT_LATENCY`` (random word and
  rounding of the last drained sum);
* elementwise instructions: one issue per element (BiasGrad: per output and batch row), plus
  ``elementwise.FLUSH``;
* ScaleControl: none (the buffer's max |code| was tracked as it was written);
* SoftmaxXentGrad: per batch row, the label's read (``memories.READ_LATENCY`` cycles), the unit's
  start and ``softmax_row_cycles(C)`` (``ttedge.hw.loss``), plus one cycle;
* PriorGrad: one issue per core element plus ``prior.PRIOR_FLUSH``; LambdaUpdate: one issue per
  element of both cores, ``prior.LAMBDA_DRAIN``, and ``prior.LAMBDA_PER_RANK`` per rank index
  (both none while the host register ``prior.on`` is 0: ``prior_on=False``);
* the END word: fetch, decode and issue.
"""

from __future__ import annotations

from ..fixed.program import Contract, LambdaUpdate, PriorGrad, Program, ScaleControl, SoftmaxXentGrad
from .config import AcceleratorConfig
from .elementwise import FLUSH
from .engine import MAC_LATENCY
from .isa import Op, contract_fields, encode_program
from .memories import READ_LATENCY
from .prior import LAMBDA_DRAIN, LAMBDA_PER_RANK, PRIOR_FLUSH
from .requant import OutputStage
from .rng import RandomLane
from .top import WAIT
from .softmax import softmax_row_cycles

__all__ = ["SEQUENCER", "contract_cycles", "instruction_cycles", "step_cycles", "utilization", "cycles_by_kind"]

SEQUENCER = 3  # fetch, decode and issue cycles of every instruction word
OUTPUT_LATENCY = RandomLane.LATENCY + OutputStage.LATENCY  # = top.OUTPUT_LATENCY (23), pinned by a test


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def contract_cycles(ins: Contract, config: AcceleratorConfig) -> int:
    """Cycles from the engine's start cycle to the first cycle its ``busy`` is low.

    Q set-up cycles, then a tile every max(Z, P) cycles (Z summed products per output, P drain
    cycles of the previous tile), the last tile's Z issues, MAC_LATENCY cycles to its last MAC and
    its P-cycle drain.
    """
    f = contract_fields(ins, config.q)
    P, Q, D = config.p, config.q, config.p
    tiles = _ceil(f["nx"], P) * _ceil(f["ny"], Q)
    z = f["nzhi"] * f["nzlo"]
    last_start = Q + 1 + (tiles - 1) * max(z, D)
    return last_start + z + MAC_LATENCY + D


def instruction_cycles(program: Program, config: AcceleratorConfig, prior_on: bool = True) -> list[int]:
    """Cycles of each instruction of ``program``, in program order (module docstring)."""
    words = encode_program(program, config).words
    out = []
    for ins, word in zip(program.instructions, words):
        if isinstance(ins, ScaleControl) or (isinstance(ins, (PriorGrad, LambdaUpdate)) and not prior_on):
            out.append(SEQUENCER)  # no unit runs
            continue
        if isinstance(ins, Contract):
            unit = contract_cycles(ins, config) + OUTPUT_LATENCY
        elif isinstance(ins, PriorGrad):
            unit = word["nx"] + PRIOR_FLUSH
        elif isinstance(ins, LambdaUpdate):
            unit = word["nx"] + word["nzlo"] + LAMBDA_DRAIN + word["nyhi"] * LAMBDA_PER_RANK
        elif isinstance(ins, SoftmaxXentGrad):
            unit = word["nx"] * (READ_LATENCY + 1 + softmax_row_cycles(ins.num_classes)) + 1
        else:
            unit = word["nx"] * (word["nzlo"] if word["op"] == Op.BIAS_GRAD else 1) + FLUSH
        out.append(SEQUENCER + unit + WAIT)
    return out


def step_cycles(program: Program, config: AcceleratorConfig, prior_on: bool = True) -> int:
    """Cycles of one training step: every instruction plus the END word."""
    return sum(instruction_cycles(program, config, prior_on)) + SEQUENCER


def utilization(program: Program, config: AcceleratorConfig) -> float:
    """Useful MACs / (step cycles x P x Q), predicted."""
    return program.macs / (step_cycles(program, config) * config.lanes)


def cycles_by_kind(program: Program, config: AcceleratorConfig) -> dict[str, dict[str, float]]:
    """Per instruction kind (Contract split by mode): cycles, MACs and MAC-array utilization while
    that kind runs (MACs / (cycles x P x Q))."""
    out: dict[str, dict[str, float]] = {}
    for ins, cyc in zip(program.instructions, instruction_cycles(program, config)):
        kind = f"Contract.{ins.mode}" if isinstance(ins, Contract) else type(ins).__name__
        row = out.setdefault(kind, {"count": 0, "cycles": 0, "macs": 0})
        row["count"] += 1
        row["cycles"] += cyc
        row["macs"] += ins.macs
    for row in out.values():
        row["utilization"] = row["macs"] / (row["cycles"] * config.lanes) if row["cycles"] else 0.0
    return out
