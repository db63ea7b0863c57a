"""Synthesis, place and route, baselines and the energy model of the generated accelerator.

``synthesize(verilog, top, "ecp5" | "xcup", out_dir)`` runs Yosys (and nextpnr-ecp5 for ECP5) and
returns a :class:`SynthResult` whose ``to_flat()`` figures are compared with committed baselines by
:func:`check_against_baseline`. :class:`EnergyModel` turns operation and memory-access counts into
energy with cited per-operation constants. The tools come from the ``synth`` extra
(``pip install 'ttedge[synth]'``) or from ``TTEDGE_YOSYS`` / ``TTEDGE_NEXTPNR_ECP5``.
"""

from ..errors import ToolError
from .baseline import BaselineError, Tolerance, check_against_baseline, compare_to_baseline, write_baseline
from .devices import DEVICES, ZU3EG, Device, ResourceUse, ecp5_device
from .energy import ECP5_85F, EnergyModel, OpCounts, latency_s
from .flow import SynthesisError, SynthResult, synthesize
from .tools import find_tool

__all__ = [
    "DEVICES",
    "ECP5_85F",
    "ZU3EG",
    "BaselineError",
    "Device",
    "EnergyModel",
    "OpCounts",
    "ResourceUse",
    "SynthResult",
    "SynthesisError",
    "ToolError",
    "Tolerance",
    "check_against_baseline",
    "compare_to_baseline",
    "ecp5_device",
    "find_tool",
    "latency_s",
    "synthesize",
    "write_baseline",
]
