"""Does a whole training accelerator fit the iCE40 UP5K? Its memories planned, its logic measured.

The accelerator's memories are multi-ported (``ttedge.hw.memories``), which the UP5K's single-port
SPRAM cannot hold as they are, so the whole design cannot go through the UP5K flow directly. The
fit is taken in two parts, each obtained, not estimated:

* **memory**: :func:`~ttedge.synth.up5k.plan_up5k_memories` places every stored buffer of the
  program in the SPRAM and block RAM (bits per buffer, what is left or missing);
* **logic**: Yosys ``synth_ice40`` (ABC9, no DSP mapping, as the UP5K flow runs it) of the
  accelerator with its memory modules declared as black boxes: everything but the memories. The
  total comes from the flattened design. With ``per_unit`` a second run keeps the hierarchy
  (``-noflatten -noabc``: Yosys's own LUT mapping, an upper estimate, used because ABC9 on the
  unflattened accelerator stops on an internal assertion of Yosys 0.70) and counts each unit.

An iCE40 logic cell holds one LUT4, one flip-flop and one carry, so the design needs at least as
many logic cells as LUT4s (and as flip-flops). :meth:`Up5kFit.render` writes the verdict, the units
largest first and the memory plan as Markdown: what would have to shrink, by how many cells or bits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .devices import UP5K
from .parse import count_cells
from .tools import LogCallback, find_tool
from .up5k import CAPACITY_BITS, EBR_BLOCKS, Up5kMemoryPlan, plan_up5k_memories, render_up5k_plan

__all__ = ["Up5kFit", "fit_up5k", "LOGIC_CELLS"]

LOGIC_CELLS = UP5K.capacity["lut4"]  # 5,280
_TOP = "ttedge_accelerator"


@dataclass(frozen=True)
class Up5kFit:
    """The UP5K fit of one accelerator (module docstring)."""

    plan: Up5kMemoryPlan
    lut4: int
    ff: int
    carry: int
    logic_ebr: int  # block RAMs the logic itself infers (tables), beside the planned memories
    units: dict[str, dict[str, int]] = field(default_factory=dict)  # unit -> instances, lut4, ff (upper estimate)
    seconds: float = 0.0

    @property
    def cells_needed(self) -> int:
        """Logic cells the logic needs at least: one per LUT4 and one per flip-flop, packed in pairs."""
        return max(self.lut4, self.ff)

    @property
    def logic_fits(self) -> bool:
        return self.cells_needed <= LOGIC_CELLS and self.plan.ebr_blocks + self.logic_ebr <= EBR_BLOCKS

    @property
    def fits(self) -> bool:
        return self.logic_fits and self.plan.fits

    def message(self) -> str:
        """One sentence: the verdict, and by how much it misses."""
        parts = []
        if self.cells_needed > LOGIC_CELLS:
            parts.append(f"the logic needs at least {self.cells_needed:,} logic cells ({self.lut4:,} LUT4, {self.ff:,} flip-flops) "
                         f"of the UP5K's {LOGIC_CELLS:,}, {self.cells_needed / LOGIC_CELLS:.1f}x the part")
        if not self.plan.fits:
            parts.append(f"the memories are {self.plan.deficit_bits:,} bits short of its {CAPACITY_BITS:,}")
        elif self.plan.ebr_blocks + self.logic_ebr > EBR_BLOCKS:
            parts.append(f"the memories and the logic's tables need {self.plan.ebr_blocks + self.logic_ebr} of {EBR_BLOCKS} block RAMs")
        if not parts:
            return (f"It fits: {self.cells_needed:,} of {LOGIC_CELLS:,} logic cells, {self.plan.used_bits:,} of {CAPACITY_BITS:,} "
                    "RAM bits.")
        memory = f"; every buffer's memory fits ({self.plan.used_bits:,} of {CAPACITY_BITS:,} bits)" if self.plan.fits else ""
        return "It does not fit the iCE40 UP5K: " + " and ".join(parts) + memory + "."

    def to_flat(self) -> dict[str, Any]:
        """Flat keys ``up5k.*`` (with ``*_capacity`` beside each count, as synthesis results) and ``up5k_mem.*``."""
        return {
            "up5k.status": "ok" if self.fits else "does_not_fit", "up5k.message": self.message(),
            "up5k.lut4": self.lut4, "up5k.lut4_capacity": LOGIC_CELLS, "up5k.ff": self.ff, "up5k.ff_capacity": LOGIC_CELLS,
            "up5k.carry": self.carry, "up5k.ram_bits": self.plan.used_bits, "up5k.ram_bits_capacity": CAPACITY_BITS,
            "up5k.ebr": self.plan.ebr_blocks + self.logic_ebr, "up5k.ebr_capacity": EBR_BLOCKS,
            "up5k.logic": "synth_ice40 of the accelerator with its memories as black boxes (ABC9, no DSP mapping)",
            **self.plan.to_flat(),
        }

    def summary(self) -> dict[str, Any]:
        """The fit for a report, as sentences and table rows (strings): ``message``, ``logic``,
        ``shrink``, ``units`` (unit, instances, LUT4, flip-flops) and ``buffers`` (buffer, kind,
        bits, where)."""
        over = self.cells_needed - LOGIC_CELLS
        shrink = (f"What would have to shrink: the logic, by {over:,} logic cells at least (the units below, largest first); "
                  "the memories are not the obstacle." if over > 0 and self.plan.fits else "")
        return {
            "message": self.message(),
            "logic": (f"Logic, everything but the memories (synth_ice40, flattened, ABC9, no DSP mapping): {self.lut4:,} LUT4, "
                      f"{self.ff:,} flip-flops, {self.carry:,} carry cells, {self.logic_ebr} block RAMs for tables; "
                      f"the part has {LOGIC_CELLS:,} logic cells. Per unit: Yosys's own LUT mapping (-noflatten -noabc), an upper estimate."),
            "shrink": shrink,
            "units": [[n, str(u["instances"]), f"{u['lut4']:,}", f"{u['ff']:,}"] for n, u in self.units.items()],
            "buffers": [[s.buffer.name, s.buffer.kind, f"{s.buffer.bits:,}", s.where()] for s in self.plan.slots],
        }

    def render(self) -> str:
        """Markdown: the sentences of :meth:`summary`, the units (largest first, with their share of
        the LUT4s), then the memory plan."""
        s = self.summary()
        lines = ["### iCE40 UP5K fit", "", s["message"], "", s["logic"]] + (["", s["shrink"]] if s["shrink"] else [])
        if self.units:
            total = sum(u["lut4"] for u in self.units.values()) or 1
            lines += ["", "| unit | instances | LUT4 | flip-flops | share of the LUT4s |", "|---|---:|---:|---:|---:|"]
            lines += [f"| {' | '.join(row)} | {100 * u['lut4'] / total:.0f}% |" for row, u in zip(s["units"], self.units.values())]
        return "\n".join(lines) + "\n\n" + render_up5k_plan(self.plan)


def _units(netlist: dict[str, Any]) -> dict[str, dict[str, int]]:
    """LUT4 and flip-flop counts of each submodule instance of the top (by name, numbers folded:
    ``eng_out0`` .. ``eng_out7`` count as one unit with 8 instances), and the top's own cells."""
    modules = netlist["modules"]
    out: dict[str, dict[str, int]] = {}
    own = {"instances": 1, "lut4": 0, "ff": 0}
    for name, cell in modules[_TOP]["cells"].items():
        kind = cell["type"]
        if kind in modules and not modules[kind].get("attributes", {}).get("blackbox"):
            counts = count_cells(netlist, kind)
            unit = re.sub(r"_?\d+$", "", name.lstrip("\\")) or name
            row = out.setdefault(unit, {"instances": 0, "lut4": 0, "ff": 0})
            row["instances"] += 1
            row["lut4"] += counts.get("SB_LUT4", 0)
            row["ff"] += sum(v for k, v in counts.items() if k.startswith("SB_DFF"))
        elif kind == "SB_LUT4":
            own["lut4"] += 1
        elif kind.startswith("SB_DFF"):
            own["ff"] += 1
    out["top (sequencer, routing, registers)"] = own
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["lut4"]))


def fit_up5k(dut: Any, out_dir: str | Path, *, per_unit: bool = True, on_log: LogCallback | None = None,
             timeout_s: float | None = None) -> Up5kFit:
    """The UP5K fit of accelerator ``dut`` (a ``ttedge.hw.Accelerator`` built with
    ``external_memories=True``); Yosys works in ``out_dir``. Raises ``ToolError`` without Yosys and
    ConfigError naming its log when Yosys fails."""
    from .flow import _failure, _run_yosys, _yosys_log

    if not getattr(dut, "external_memories", False):
        raise ConfigError("the UP5K fit needs the accelerator's memories as external modules; build it with external_memories=True.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    yosys = find_tool("yosys")
    (out / "design.v").write_text(dut.verilog(blackbox_memories=True))
    runs = [("flat", "synth_ice40")] + ([("units", "synth_ice40 -noflatten -noabc")] if per_unit else [])
    netlists, seconds = {}, 0.0
    for name, command in runs:
        run = _run_yosys(yosys, f"read_verilog -sv design.v\n{command} -top {_TOP} -json {name}.json\n", out, on_log, timeout_s)
        seconds += run.seconds
        log = _yosys_log(out, run)
        (out / f"yosys.{name}.log").write_text(log)
        if not run.ok or not (out / f"{name}.json").is_file():
            raise ConfigError(_failure(f"Yosys ({command})", run, log, out / f"yosys.{name}.log") + "; the UP5K fit has no logic figures.")
        netlists[name] = json.loads((out / f"{name}.json").read_text())
    cells = count_cells(netlists["flat"], _TOP)
    return Up5kFit(
        plan=plan_up5k_memories(dut.program), lut4=cells.get("SB_LUT4", 0),
        ff=sum(v for k, v in cells.items() if k.startswith("SB_DFF")), carry=cells.get("SB_CARRY", 0),
        logic_ebr=cells.get("SB_RAM40_4K", 0), units=_units(netlists["units"]) if per_unit else {}, seconds=seconds,
    )
