"""Synthesis, place and route, baselines and the energy model of the generated accelerator.

``synthesize(verilog, top, "ecp5" | "xcup" | "up5k", out_dir)`` runs Yosys (and nextpnr-ecp5 or
nextpnr-ice40 for ECP5 and the iCE40 UP5K) and
returns a :class:`SynthResult` whose ``to_flat()`` figures are compared with committed baselines by
:func:`check_against_baseline`. :class:`EnergyModel` turns operation and memory-access counts into
energy with cited per-operation constants. The tools come from the ``synth`` extra
(``pip install 'ttedge[synth]'``) or from ``TTEDGE_YOSYS`` / ``TTEDGE_NEXTPNR_ECP5`` /
``TTEDGE_NEXTPNR_ICE40``. :func:`plan_up5k_memories` places a training program's buffers in the
UP5K's SPRAM and block RAM; :func:`serial_wrapper` lets a unit with many ports be placed on its pins.
"""

from ..errors import ToolError
from .baseline import BaselineError, Tolerance, check_against_baseline, compare_to_baseline, write_baseline
from .devices import DEVICES, UP5K, ZU3EG, Device, ResourceUse, ecp5_device
from .energy import ECP5_85F, EnergyModel, OpCounts, latency_s
from .fit import Up5kFit, fit_up5k
from .flow import SynthesisError, SynthResult, synthesize
from .netcheck import NetlistCheck, check_netlist
from .pins import serial_wrapper
from .tools import find_tool
from .up5k import Up5kMemoryPlan, plan_up5k_memories, render_up5k_plan

__all__ = [
    "Up5kFit",
    "fit_up5k",
    "DEVICES",
    "ECP5_85F",
    "UP5K",
    "ZU3EG",
    "BaselineError",
    "Device",
    "EnergyModel",
    "NetlistCheck",
    "OpCounts",
    "ResourceUse",
    "SynthResult",
    "SynthesisError",
    "ToolError",
    "Tolerance",
    "Up5kMemoryPlan",
    "check_against_baseline",
    "check_netlist",
    "compare_to_baseline",
    "ecp5_device",
    "find_tool",
    "latency_s",
    "plan_up5k_memories",
    "render_up5k_plan",
    "serial_wrapper",
    "synthesize",
    "write_baseline",
]
