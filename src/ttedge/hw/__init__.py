"""The training accelerator in Amaranth HDL: it executes a compiled fixed-point training
:class:`~ttedge.fixed.program.Program` bit for bit as the reference interpreter does.

Modules: ``config`` (array size and limits), ``memmap`` (buffers in on-chip memories, the host map),
``isa`` (instruction words, the program image), ``engine`` (the P x Q contraction engine),
``elementwise`` (bias, ReLU, SGD, narrowing, scaling), ``top`` (sequencer, memories, registers,
host port), ``cycles`` (the cycle model), ``sim`` (simulated steps checked against the
interpreter); arithmetic units in ``rng``, ``requant``, ``scale``, ``arith``.
"""

from .config import AcceleratorConfig
from .cycles import contract_cycles
from .engine import ContractionEngine
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
    "SimReport",
    "simulate",
]
