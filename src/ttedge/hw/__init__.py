"""The training accelerator in Amaranth HDL: it executes a compiled fixed-point training
:class:`~ttedge.fixed.program.Program` bit for bit as the reference interpreter does.

Modules: ``config`` (array size and limits), ``memmap`` (buffers in on-chip memories, the host map),
``isa`` (instruction words, the program image), ``engine`` (the P x Q contraction engine),
``elementwise`` (bias, ReLU, SGD, narrowing), ``loss`` (softmax cross-entropy rows), ``memories``
(width-class memories and their ports), ``banks`` (which ports each instruction uses; memories split
into single-port banks), ``top`` (sequencer, registers, scaling, host port),
``cycles`` (the cycle model), ``sim`` (simulated steps checked against the interpreter),
``generate`` (Verilog and memory images); arithmetic units in ``rng``, ``requant``, ``scale``,
``arith``, ``softmax``.
"""

from .config import AcceleratorConfig
from .cycles import contract_cycles, cycles_by_kind, instruction_cycles, step_cycles, utilization
from .engine import ContractionEngine
from .generate import build, generate
from .isa import Op, ProgramImage, encode_program
from .memmap import MemoryMap, Placement
from .sim import SimReport, simulate
from .top import Accelerator

__all__ = [
    "AcceleratorConfig",
    "MemoryMap",
    "Placement",
    "Op",
    "ProgramImage",
    "encode_program",
    "ContractionEngine",
    "Accelerator",
    "contract_cycles",
    "instruction_cycles",
    "step_cycles",
    "utilization",
    "cycles_by_kind",
    "build",
    "generate",
    "SimReport",
    "simulate",
]
