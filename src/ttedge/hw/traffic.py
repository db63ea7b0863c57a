"""Operations and on-chip memory traffic of one training step on the accelerator (energy inputs).

Counted from the program and the engine's dataflow (``ttedge.hw.engine``): a Contract's output
tile of P x Q sums stays in the lanes while z runs, so each x-tile row re-reads the R operand and
each y-tile column re-reads the L operand:

    L reads = ceil(ny / Q) * Z * nx elements,   R reads = ceil(nx / P) * Z * ny elements,
    multiplies = adds = nx * ny * Z (useful MACs; idle edge lanes are gated), writes = nx * ny

at the operands' and output's widths (L is the core for forward and input-error products, the
error for core gradients). Elementwise instructions read every element of the buffers they read
and write every element of those they write, with one add per written element at its width.
SoftmaxXentGrad counts its divider and exponential as adds of the divider's width per class, and
its logits and errors as traffic. Counts are per training step of ``Program.batch`` samples.
"""

from __future__ import annotations

from collections import Counter

from ..fixed.program import Contract, Program, ScaleControl, SoftmaxXentGrad
from .config import AcceleratorConfig
from .isa import contract_fields

__all__ = ["StepTraffic", "step_traffic"]


class StepTraffic:
    """Multiplies by operand widths, adds by width, and memory bits read and written, per step."""

    def __init__(self) -> None:
        self.mults: Counter[tuple[int, int]] = Counter()
        self.adds: Counter[int] = Counter()
        self.read_bits = 0
        self.write_bits = 0

    def as_dict(self) -> dict[str, object]:
        return {"mults": {f"{a}x{b}": n for (a, b), n in self.mults.items()}, "adds": {str(w): n for w, n in self.adds.items()},
                "read_bits": self.read_bits, "write_bits": self.write_bits}


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def step_traffic(program: Program, config: AcceleratorConfig) -> StepTraffic:
    """What one training step of ``program`` does on an accelerator of ``config`` (module docstring)."""
    t = StepTraffic()
    width = {b.name: b.fmt.width for b in program.buffers}
    numel = {b.name: b.numel for b in program.buffers}
    masters = dict(program.masters)
    for ins in program.instructions:
        if isinstance(ins, Contract):
            f = contract_fields(ins, config.q)
            nx, ny, z = f["nx"], f["ny"], f["nzhi"] * f["nzlo"]
            left, right = (ins.a.buffer, ins.b.buffer) if ins.mode == "core_grad" else (ins.b.buffer, ins.a.buffer)
            t.mults[(width[left], width[right])] += nx * ny * z
            t.adds[ins.acc_width] += nx * ny * z
            ml, mr = width[masters.get(left, left)], width[masters.get(right, right)]  # a compute copy is read from its master
            t.read_bits += _ceil(ny, config.q) * z * nx * ml + _ceil(nx, config.p) * z * ny * mr
            t.write_bits += nx * ny * width[ins.out.buffer]
        elif isinstance(ins, ScaleControl):
            continue  # the max |code| was tracked on the write stream
        elif isinstance(ins, SoftmaxXentGrad):
            rows, classes = program.batch, ins.num_classes
            t.adds[64] += rows * classes * 64  # exp and restoring division: at most one 64-bit add per quotient bit
            t.read_bits += numel[ins.logits] * width[ins.logits]
            t.write_bits += numel[ins.error] * width[ins.error]
        else:
            for name in ins.reads:
                t.read_bits += numel[name] * width[masters.get(name, name)]
            for name in ins.writes:
                t.write_bits += numel[name] * width[name]
                t.adds[width[name]] += numel[name]
    return t
