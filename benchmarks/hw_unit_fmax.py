"""Which unit limits the accelerator's clock? Each unit placed and routed alone on the LFE5U-85F.

    .venv/bin/python benchmarks/hw_unit_fmax.py [--config configs/mnist_tt_fixed.toml] [--p 1 --q 1] [--units loss ew ...]

The configuration's batch-1 accelerator (default: the MNIST reference TT net on a 1 x 1 array, the
design ``benchmarks/mnist_fpga.py`` places whole) is emitted as Verilog; each of its direct
submodules (the contraction engine, its output lanes, the elementwise, loss and prior units, the
scale units, the port routing and gathering; not the memories) is wrapped by
``ttedge.synth.serial_wrapper``, whose registers feed every input and take every output, and
synthesized, placed and routed alone by ``ttedge.synth.synthesize`` (Yosys ``synth_ecp5``,
nextpnr-ecp5, 125 MHz asked, placer seed 1). A unit's Fmax is then that of its own register-to-
register paths: an upper bound for the whole design, whose paths between units and through the
memories' ports only a whole run (``mnist_fpga.py``) measures. For each unit the table gives its
LUT4s, flip-flops (the wrapper's included: one per port bit), Fmax and where its critical path
starts and ends, with the source lines nextpnr names on it.

Writes benchmarks/results/hw_unit_fmax.json and the "hw-unit-fmax" section of benchmarks/RESULTS.md.
Takes about 5 minutes on the development VM.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ttedge.config import load_config
from ttedge.hw import AcceleratorConfig
from ttedge.hw.generate import build, generate
from ttedge.synth import serial_wrapper, synthesize
from ttedge.train import RunConfig

from results_md import publish  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- hw-unit-fmax:begin -->", "<!-- hw-unit-fmax:end -->"
TOP = "ttedge_accelerator"


def direct_units(verilog: str) -> list[str]:
    """The names of the top module's direct submodules that are logic (the memories excluded)."""
    names = re.findall(rf"^module \\{TOP}\.([A-Za-z0-9_]+) ", verilog, re.M)
    return [n for n in names if not re.fullmatch(r"mem\d+|imem|host_decode", n)]


def critical_path(log: str) -> dict[str, Any]:
    """Start, end and source lines of the clock's critical path in a nextpnr log."""
    i = log.find("Critical path report for clock")
    if i < 0:
        return {}
    block = log[i:].split("\n\n")[0].splitlines()
    cells = [re.sub(r"^unit\.", "", l.split()[-1]) for l in block if re.search(r"\b(Source|Sink)\b", l)]
    lines = [l.strip().rsplit("/", 1)[-1] for l in block if ".py:" in l]
    return {"from": cells[0] if cells else "", "to": cells[-1] if cells else "", "lines": list(dict.fromkeys(lines))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "mnist_tt_fixed.toml"))
    ap.add_argument("--p", type=int, default=1)
    ap.add_argument("--q", type=int, default=1)
    ap.add_argument("--units", nargs="*", help="only these submodules (default: every logic unit)")
    ap.add_argument("--override", action="append", default=[], help="config overrides (--section.key=value)")
    args = ap.parse_args()
    cfg = load_config(RunConfig, args.config, args.override)
    program, interp = build(cfg, 1)
    acc = AcceleratorConfig(p=args.p, q=args.q)
    rows = []
    with tempfile.TemporaryDirectory(prefix="unit_fmax_") as tmp:
        files = generate(program, interp.state_dict(), acc, tmp)
        verilog = files["accelerator.v"].read_text()
        for unit in args.units or direct_units(verilog):
            out = Path(tmp) / "units" / unit
            out.mkdir(parents=True)
            for image in Path(tmp).glob("*.hex"):  # the design file names its ROM images
                shutil.copy(image, out)
            result = synthesize(serial_wrapper(verilog, f"{TOP}.{unit}"), "ttedge_serial_top", "ecp5", out,
                                clock_mhz=cfg.report.clock_mhz, device="85k")
            flat = result.to_flat()
            log = (out / "nextpnr.log").read_text(errors="replace") if (out / "nextpnr.log").is_file() else ""
            rows.append({"unit": unit, "status": result.status, "lut4": flat.get("ecp5.lut4"), "ff": flat.get("ecp5.ff"),
                         "fmax_mhz": result.fmax_mhz, **critical_path(log)})
            print(f"{unit}: {result.status}, Fmax {result.fmax_mhz} MHz", flush=True)
    config = " ".join([str(Path(args.config).relative_to(ROOT)) if Path(args.config).is_relative_to(ROOT) else args.config, *args.override])
    result = {"config": config, "p": acc.p, "q": acc.q, "clock_mhz": cfg.report.clock_mhz, "units": rows}
    publish(result, "hw_unit_fmax.json", _section, BEGIN, END)


def _section(r: dict[str, Any], when: str) -> str:
    lines = [BEGIN, "## Which unit limits the clock?", "",
             f"Measured {when} by `benchmarks/hw_unit_fmax.py`: `{r['config']}`, batch 1, a {r['p']} x {r['q']} array; each unit "
             f"placed and routed alone on the LFE5U-85F behind registers on every port ({r['clock_mhz']:g} MHz asked). "
             "An upper bound per unit: the paths between units and through the memories count only in the whole design.", "",
             "| unit | LUT4 | flip-flops | Fmax MHz | critical path | source lines |", "|---|---:|---:|---:|---|---|"]
    for u in sorted(r["units"], key=lambda u: u["fmax_mhz"] or 0.0):
        fmax = f"{u['fmax_mhz']:.1f}" if u["fmax_mhz"] else u["status"]
        path = f"`{u.get('from', '')}` -> `{u.get('to', '')}`" if u.get("from") else "-"
        lines.append(f"| {u['unit']} | {u['lut4'] or '-'} | {u['ff'] or '-'} | {fmax} | {path} | {', '.join(u.get('lines', [])) or '-'} |")
    return "\n".join(lines + [END])


if __name__ == "__main__":
    main()
