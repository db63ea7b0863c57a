"""The iCE40 UP5K flow: ``synth_ice40``, optionally a netlist-vs-RTL check, then nextpnr-ice40.

Reached through ``synthesize(verilog, top, "up5k", out_dir)``. Yosys runs ``synth_ice40 -spram``:
SPRAM-shaped memories map to SB_SPRAM256KA, and by default no multiplier maps onto the SB_MAC16
DSPs, because Yosys's iCE40 DSP mapping has produced wrong netlists (TOOLCHAIN.md). With Yosys 0.70,
``acc <= acc + ra[7:0]*rb[7:0] + ra[15:8]*rb[15:8]`` still maps to two SB_MAC16 that add one
product a cycle late, while two products kept in their own registers map correctly
(tests/synth/test_synth_up5k_real.py); logic-cell multipliers need no check. With ``dsp=True`` it
adds ``-dsp`` and then runs :func:`~ttedge.synth.netcheck.check_netlist`, a bounded formal
comparison of the netlist with the RTL under Yosys's own cell models (or, with ``check_seed``, one
random run of the two compared cycle by cycle); a "fail" verdict stops the flow (status
"netlist_mismatch") before place and route, and the verdict is ``SynthResult.netlist_check``.

nextpnr-ice40 runs with ``--up5k --package sg48`` (or ``uwg30``) and ``--timing-allow-fail``. The
sg48 package has 39 I/O pins: a unit with more port bits cannot be placed as it is; wrap it first
(:func:`ttedge.synth.pins.serial_wrapper`). Counts: ``lut4``, ``ff``, ``sb_mac16``, ``spram``,
``ebr`` from the netlist, and after place and route ``lc``, the logic cells nextpnr packed
(``ICESTORM_LC``), with the I/O pins used in ``extra``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from .devices import UP5K, UP5K_PACKAGES, ResourceUse, worst_overflow
from .netcheck import check_netlist
from .parse import ice40_resources
from .tools import LogCallback

__all__ = ["synthesize_up5k"]


def synthesize_up5k(
    top: str, out: Path, tools: dict[str, str], *, clock_mhz: float, package: str | None, seed: int, dsp: bool,
    check_depth: int, check_seed: int | None, nextpnr_args: tuple[str, ...], on_log: LogCallback | None, timeout_s: float | None,
) -> object:
    """Run the UP5K flow on ``out/design.v`` (written by ``synthesize``); returns a ``SynthResult``."""
    from .flow import SynthResult, _place_and_route, _synth  # flow imports this module

    package = (package or UP5K.default_package).lower()
    if package not in UP5K_PACKAGES:
        raise ConfigError(f"nextpnr-ice40 knows the UP5K packages {', '.join(UP5K_PACKAGES)}, got {package!r}; pass one of them.")
    # -spram: memories of the SPRAM's shape (single port, 16K x 16 or less) map to SB_SPRAM256KA;
    # without it Yosys builds them from 4 kb EBR (a 16K x 16 memory would need 64 of the 30)
    # netlist.v: the gate-level netlist the DSP check compares with the RTL
    command = f"synth_ice40 -spram {'-dsp ' if dsp else ''}-top {top} -json netlist.json\nwrite_verilog -noattr netlist.v"
    failed, cells, synth_s, version = _synth(UP5K, top, out, tools["yosys"], command, on_log, timeout_s)
    if failed is not None:
        return failed
    uses, extra = ice40_resources(cells, UP5K)
    mapping = "DSP mapping on (synth_ice40 -dsp)" if dsp else "no DSP mapping (synth_ice40 without -dsp)"
    notes = ((f"yosys {version}",) if version else ()) + (mapping, f"package {package}, placer seed {seed}")
    if nextpnr_args:
        notes += ("nextpnr options " + " ".join(nextpnr_args),)
    seconds = {"synth": synth_s}
    result = SynthResult("up5k", UP5K.name, top, "ok", resources=uses, extra=extra, target_mhz=float(clock_mhz),
                         notes=notes, seconds=seconds, out_dir=out)
    if dsp:
        check = check_netlist(out, top, tools["yosys"], depth=check_depth, stimulus_seed=check_seed, on_log=on_log)
        seconds = {**seconds, "netcheck": check.seconds}
        result = replace(result, netlist_check=check.verdict, seconds=seconds,
                         notes=notes + (f"netlist check {check.verdict}: {check.message}; {check.method}",))
        if check.verdict == "fail":
            return replace(result, status="netlist_mismatch",
                           message=f"Yosys's DSP mapping changed the circuit: {check.message}; synthesize without dsp=True.")
    overflow = worst_overflow(uses, UP5K.name)
    if overflow:
        return replace(result, status="does_not_fit", message=overflow[0].upper() + overflow[1:] + ".")
    argv = [tools["nextpnr"], UP5K.nextpnr_flag, "--package", package, "--json", "netlist.json", "--freq", f"{clock_mhz:g}",
            "--seed", str(seed)]
    pnr_s, failure, report, clocks = _place_and_route(argv, nextpnr_args, out, f"nextpnr-ice40 on the {UP5K.name} ({package})", on_log, timeout_s)
    result = replace(result, seconds={**seconds, "pnr": pnr_s})
    if failure:
        return replace(result, status="pnr_failed", message=failure)
    util = report.get("utilization", {})
    lc = util.get("ICESTORM_LC", {})
    if lc.get("used") is not None:
        uses = uses + (ResourceUse("lc", int(lc["used"]), int(lc.get("available", UP5K.capacity["lut4"]))),)
    io = util.get("SB_IO", {})
    extra = {**extra, **({"io": int(io["used"]), "io_avail": int(io["available"])} if "used" in io else {})}
    if not clocks:
        notes = result.notes + ("no clocked paths: the design has no Fmax",)
        result = replace(result, notes=notes)
    return replace(result, resources=uses, extra=extra, clocks=tuple(clocks))
