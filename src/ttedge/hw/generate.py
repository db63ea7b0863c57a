"""Generation of the accelerator for a run config: Verilog, program image, memory images, memory map.

:func:`build` turns a :class:`~ttedge.train.config.RunConfig` with ``[fixed]`` enabled into the
program and its reference interpreter (the model's initial weights, as ``ttedge train`` would
start); :func:`generate` writes, into one folder:

* ``accelerator.v``: the top level (``amaranth.back.verilog``) and one module per memory, each
  initialized by ``$readmemh`` from its ``mem<k>.hex`` (so run the vendor flow in this folder);
* ``program.hex``: the program image, one instruction word per line (hex, ``word_bits`` bits);
* ``mem<k>.hex``: each on-chip memory's initial words (hex two's complement, ``width`` bits);
* ``memmap.txt``: the host map and the memories (``MemoryMap.describe``);
* ``cycles.json``: the cycle model's prediction per instruction, per kind and per step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..fixed.interpreter import Interpreter
from ..fixed.program import Program
from .config import AcceleratorConfig
from .cycles import cycles_by_kind, instruction_cycles, step_cycles, utilization
from .isa import encode_program
from .memmap import MemoryMap
from .top import Accelerator

__all__ = ["build", "generate", "write_memory_images"]


def build(cfg: Any, batch: int | None = None) -> tuple[Program, Interpreter]:
    """The program (batch ``batch``, default ``cfg.train.batch_size``) and interpreter of ``cfg``."""
    from ..errors import ConfigError

    if not cfg.fixed.enabled:
        raise ConfigError("the accelerator runs fixed-point programs; use a config with [fixed] enabled = true.")
    model, program = cfg.build_fixed(batch or cfg.train.batch_size)
    return program, Interpreter(program, model)


def _hex(values: list[int], bits: int) -> str:
    digits = -(-bits // 4)
    mask = (1 << bits) - 1
    return "".join(f"{v & mask:0{digits}x}\n" for v in values)


def write_memory_images(mm: MemoryMap, state: dict[str, np.ndarray], out: Path) -> list[Path]:
    """Write ``mem<k>.hex`` for every memory into ``out`` (``$readmemh`` format); returns the paths."""
    files = []
    for k, (width, words) in enumerate(zip(mm.widths, mm.images(state))):
        files.append(out / f"mem{k}.hex")
        files[-1].write_text(_hex(words, width))
    return files


def generate(program: Program, state: dict[str, np.ndarray], config: AcceleratorConfig, out_dir: str | Path,
             verilog: bool = True) -> dict[str, Path]:
    """Write the files of the module docstring into ``out_dir``; returns them by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image = encode_program(program, config)
    mm = MemoryMap(program, config)
    files: dict[str, Path] = {}

    def put(name: str, text: str) -> None:
        files[name] = out / name
        files[name].write_text(text)

    put("program.hex", _hex(image.packed(), image.word_bits))
    for f in write_memory_images(mm, state, out):
        files[f.name] = f
    memories = "\n".join(f"mem{k}: {d} words x {w} bits" for k, (w, d) in enumerate(zip(mm.widths, mm.depths())))
    put("memmap.txt", f"{memories}\n\n{mm.describe()}\n")
    per = instruction_cycles(program, config)
    put("cycles.json", json.dumps({
        "p": config.p, "q": config.q, "step_cycles": step_cycles(program, config),
        "utilization": utilization(program, config), "macs": program.macs,
        "by_kind": cycles_by_kind(program, config),
        "instructions": [{"position": i, "kind": type(ins).__name__, "cycles": c, "macs": ins.macs}
                         for i, (ins, c) in enumerate(zip(program.instructions, per))],
    }, indent=2) + "\n")
    if verilog:
        dut = Accelerator(program, config, state, external_memories=True)
        put("accelerator.v", dut.verilog([f"mem{k}.hex" for k in range(len(mm.widths))]))
    return files
