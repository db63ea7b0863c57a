"""The ECP5 memory check before synthesis (ttedge.synth.memfit)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ttedge.cli import main
from ttedge.hw.config import AcceleratorConfig
from ttedge.synth.devices import Device, ecp5_device
from ttedge.synth.memfit import memory_needs, memory_problem

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hw"))
from test_sim import random_case  # noqa: E402


def test_one_by_one_array_banks_every_memory_that_several_lanes_would_not() -> None:
    program = random_case(0)[0].program
    one = memory_needs(program, AcceleratorConfig(p=1, q=1))
    assert all(n.flip_flops == 0 for n in one) and all(n.banks >= 1 for n in one if n.writes > 1)
    lanes = memory_needs(program, AcceleratorConfig(p=1, q=3))
    outs = [n for n in lanes if n.writes >= 3]
    assert outs and all(n.banks == 0 and n.flip_flops == n.width * n.depth for n in outs)
    assert all(n.built_as.endswith(", each one read and one write port (block RAM)") for n in one)
    assert all(n.built_as == f"{n.writes} write ports: flip-flops ({n.flip_flops:,})" for n in outs)
    assert memory_problem(lanes, ecp5_device("85k")) == ""  # a small network's memories fit in flip-flops
    tiny = Device("ecp5", "TINY", {"lut4": 10, "ff": 10, "mult18x18d": 1, "dp16kd": 1})
    problem = memory_problem(lanes, tiny)
    worst = max(outs, key=lambda n: n.flip_flops)
    assert problem.startswith(f"{worst.name} ({worst.depth} words of {worst.width} bits) has {worst.writes} write ports")
    assert problem.endswith("TINY's 10; with one output lane (--q 1) every memory has one write port and can be block RAM.")


def test_hw_synth_stops_at_once_when_memories_cannot_be_block_ram(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The MNIST reference net at batch 1 on the 16 x 8 array: 8 output lanes into the 16-bit memory.
    args = ["hw", "synth", "--config", "configs/mnist_tt_fixed.toml", "--batch", "1", "--p", "16", "--q", "8",
            "--target", "ecp5", "--out", str(tmp_path / "out")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: mem1 (66944 words of 16 bits) has 8 write ports, so it cannot be block RAM")
    assert "1,071,104 flip-flops, 12.8x the LFE5U-85F's 83,640" in err
    assert not (tmp_path / "out").exists()  # nothing generated, no synthesis started
    assert main([*args[:-4], "--target", "xcup", "--out", str(tmp_path / "out")]) == 1  # the ZU3EG: 141,120 flip-flops
    assert "1,071,104 flip-flops, 7.6x the XCZU3EG's 141,120" in capsys.readouterr().err


def test_pipeline_ecp5_target_stops_before_synthesis(tmp_path: Path, fake_tools: Path, monkeypatch: pytest.MonkeyPatch,
                                                     configs_dir: Path) -> None:
    """The report's ecp5 target on a design whose multi-write-port memories exceed the part's
    flip-flops (a stand-in part with 10): the reason is the missing part's, and no synthesis runs."""
    import ttedge.synth.memfit as memfit
    from ttedge.config import load_config
    from ttedge.pipeline import run_pipeline
    from ttedge.train import RunConfig

    monkeypatch.setattr(memfit, "ecp5_device", lambda size: Device("ecp5", "TINY", {"lut4": 10, "ff": 10, "mult18x18d": 1, "dp16kd": 1}))
    tiny = ["--model.hidden=[16]", "--model.in_modes=[[8, 8], [4, 4]]", "--model.out_modes=[[4, 4], [2, 5]]",
            "--model.ranks=[[3], [3]]", "--train.epochs=1", "--report.sim_steps=1", "--hw.p=1", "--hw.q=3",
            "--report.cpu_steps=2", "--bayes.enabled=false", '--report.targets=["ecp5"]']
    md = run_pipeline(load_config(RunConfig, configs_dir / "digits_pipeline.toml", tiny), tmp_path / "run").read_text()
    line = next(line for line in md.splitlines() if line.startswith("| synth-ecp5 |"))
    assert "write ports, so it cannot be block RAM" in line and "TINY's 10" in line
    assert not (tmp_path / "run" / "synth" / "ecp5").exists()



def test_a_netlist_without_the_top_module_is_a_failed_synthesis_not_a_crash(tmp_path: Path, fake_tools: Path) -> None:
    from ttedge.synth import synthesize

    (tmp_path / "d.v").write_text("module other(); endmodule\n")
    result = synthesize(tmp_path / "d.v", "ttedge_accelerator", "xcup", tmp_path / "out")  # the stand-in writes ExpNeg's netlist
    assert result.status == "synthesis_failed"
    assert result.message.startswith("Yosys wrote a netlist ttedge cannot read (the netlist has no module ttedge_accelerator;")


def test_pipeline_synthesizes_for_the_configured_ecp5_part(tmp_path: Path, fake_tools: Path, configs_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``report.ecp5_device`` names the part: the memory check, place and route and the energy model's
    static power all use it (the stand-in tools replay another design, so synthesis fails; the part is
    still the one recorded)."""
    import ttedge.synth.memfit as memfit
    from ttedge.config import load_config
    from ttedge.pipeline import run_pipeline
    from ttedge.train import RunConfig

    asked: list[str] = []
    real = memfit.ecp5_device
    monkeypatch.setattr(memfit, "ecp5_device", lambda size: (asked.append(size), real(size))[1])
    tiny = ["--model.hidden=[16]", "--model.in_modes=[[8, 8], [4, 4]]", "--model.out_modes=[[4, 4], [2, 5]]",
            "--model.ranks=[[3], [3]]", "--train.epochs=1", "--report.sim_steps=1", "--hw.p=2", "--hw.q=1",
            "--report.cpu_steps=2", "--bayes.enabled=false", '--report.targets=["ecp5"]', "--report.ecp5_device=25k"]
    md = run_pipeline(load_config(RunConfig, configs_dir / "digits_pipeline.toml", tiny), tmp_path / "run").read_text()
    assert asked == ["25k"] and "| ecp5 | ecp5.device | LFE5U-25F |" in md
