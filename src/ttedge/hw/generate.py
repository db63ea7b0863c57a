"""Generation of the accelerator for a run config: Verilog, program image, memory images, memory map.

:func:`build` turns a :class:`~ttedge.train.config.RunConfig` with ``[fixed]`` enabled into the
program and its reference interpreter (the model's initial weights, as ``ttedge train`` would
start); :func:`generate` writes, into one folder:

* ``accelerator.v``: the top level (``amaranth.back.verilog``) and one module per memory, each
  initialized by ``$readmemh`` from its images (so run the vendor flow in this folder);
* ``program.hex``: the program image, one instruction word per line (hex, ``word_bits`` bits);
* ``mem<k>.hex``, or ``mem<k>_<b>_<p>_<s>.hex`` per block RAM (slice ``s`` of piece ``p`` of bank
  ``b``, ``ttedge.hw.banks.BankLayout``) of a banked memory: each on-chip memory's initial words
  (hex two's complement, ``width`` bits; a slice's bits of them);
* ``memmap.txt``: the host map and the memories (``MemoryMap.describe``);
* ``cycles.json``: the cycle model's prediction per instruction, per kind and per step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..fixed.interpreter import Interpreter
from ..fixed.program import Program
from .config import AcceleratorConfig
from .cycles import cycles_by_kind, instruction_cycles, step_cycles, utilization
from .banks import Banks, bank_images, bank_layouts, plan_banks
from .isa import encode_program
from .memmap import MemoryMap
from .memories import image_files
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


def write_memory_images(mm: MemoryMap, state: dict[str, np.ndarray], out: Path,
                        banks: Sequence[Banks | None]) -> list[Path]:
    """Write every memory's ``$readmemh`` images into ``out``: ``mem<k>.hex``, or one file per block
    RAM of a banked memory (``Accelerator.banks``; module docstring); returns the paths."""
    files = []
    for k, (width, words) in enumerate(zip(mm.widths, mm.images(state))):
        layouts = bank_layouts(banks[k], width)
        for name, (part, bits) in zip(image_files(k, layouts), bank_images(words, width, layouts)):
            files.append(out / name)
            files[-1].write_text(_hex(part, bits))
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
    banks = plan_banks(mm, image.words, config)
    for f in write_memory_images(mm, state, out, banks):
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
        put("accelerator.v", dut.verilog(""))
    return files
