"""Training steps of the accelerator in ``amaranth.sim``, checked against the reference interpreter.

:func:`simulate` builds the :class:`~ttedge.hw.top.Accelerator` from an
:class:`~ttedge.fixed.interpreter.Interpreter`'s current state (its memories' initial contents),
then for every batch: loads the sample codes and labels through the host port, starts the step,
waits for done, steps the interpreter on the same batch, and compares with ``==`` every buffer
(state and working buffers: activations, errors, gradients, compute copies) and every state
register. It returns the cycles of every instruction and step and the MAC-array utilization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from amaranth.sim import Simulator

from ..fixed.interpreter import Interpreter
from .config import AcceleratorConfig
from .memmap import CTRL
from .top import Accelerator

__all__ = ["SimReport", "simulate"]


@dataclass
class SimReport:
    """What a simulation measured: cycles per instruction (per step), per step, and utilization."""

    config: AcceleratorConfig
    instruction_cycles: list[list[int]] = field(default_factory=list)  # [step][instruction position]
    step_cycles: list[int] = field(default_factory=list)  # from start to done, per step
    macs: int = 0  # useful multiply-accumulates of one step (Program.macs)
    mismatches: list[str] = field(default_factory=list)  # "step k: name" of every differing buffer/register
    compared: int = 0  # buffers and registers compared (all steps together)

    def record(self, total: int, ends: Sequence[int]) -> None:
        """One step's cycles: ``total`` (start to done) and the step's cycle counter as each
        instruction finished (the accelerator's performance counters)."""
        self.step_cycles.append(total)
        self.instruction_cycles.append([end - start for start, end in zip([0, *ends[:-1]], ends)])

    def check(self, step: int, want: Mapping[str, np.ndarray], buffers: Mapping[str, np.ndarray],
              registers: Mapping[str, int]) -> None:
        """Compare the buffers' words and the registers the hardware holds after ``step`` with the
        interpreter's (``want``: its working buffers and state); a difference is listed."""
        for name, got in buffers.items():
            if name not in want:
                continue
            self.compared += 1
            if not np.array_equal(got, np.asarray(want[name]).reshape(-1)):
                self.mismatches.append(f"step {step}: {name}")
        for name, value in registers.items():
            self.compared += 1
            if value != int(want[name]):
                self.mismatches.append(f"step {step}: {name} = {value} != {int(want[name])}")

    @property
    def utilization(self) -> float:
        """Useful MACs / (cycles x P x Q) over all simulated steps."""
        total = sum(self.step_cycles)
        return self.macs * len(self.step_cycles) / (total * self.config.lanes) if total else 0.0


def simulate(interp: Interpreter, config: AcceleratorConfig, batches: Sequence[tuple[np.ndarray, np.ndarray]],
             check: bool = True) -> SimReport:
    """Run ``len(batches)`` training steps on the accelerator and on ``interp`` (which advances).

    ``batches``: (x codes (B, N), labels (B,)) pairs. With ``check`` every buffer and register is
    compared after every step; mismatches are listed in the report, not raised.
    """
    program = interp.program
    dut = Accelerator(program, config, interp.state_dict())
    report = SimReport(config, macs=program.macs)
    mm = dut.mmap

    async def write(ctx, addr: int, value: int) -> None:  # type: ignore[no-untyped-def]
        ctx.set(dut.host_addr, addr)
        ctx.set(dut.host_wdata, value)
        ctx.set(dut.host_we, 1)
        await ctx.tick()
        ctx.set(dut.host_we, 0)

    def compare(ctx, step: int) -> None:  # type: ignore[no-untyped-def]
        want = {**interp.buffers, **interp.state}
        buffers = {name: np.array([ctx.get(mem.data[offset + k]) for k in range(depth)], np.int64)
                   for name, (mem, offset, depth) in dut.memories.items() if name in want}
        report.check(step, want, buffers, {name: ctx.get(sig) for name, sig in dut.registers.items()})

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        for step, (x, labels) in enumerate(batches):
            x, labels = np.asarray(x, np.int64), np.asarray(labels, np.int64)
            for base, values in ((mm.placement(program.input).base, x.reshape(-1)), (mm.placement(program.labels).base, labels)):
                for k, v in enumerate(values):
                    await write(ctx, base + k, int(v))
            await write(ctx, CTRL, 1)
            await ctx.tick().until(dut.done)
            report.record(ctx.get(dut.cycles), [ctx.get(dut.profile.data[i]) for i in range(len(program.instructions))])
            interp.step(x, labels)
            if check:
                compare(ctx, step)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return report
