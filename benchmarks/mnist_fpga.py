"""The MNIST training accelerator on FPGAs: ECP5 place and route, Fmax, time and energy per sample; ZU3EG counts.

    .venv/bin/python benchmarks/mnist_fpga.py [--config configs/mnist_tt_fixed.toml] [--p 1 --q 1] [--speed 6|7|8]
        [--seeds 1,2,3 [--jobs 2] [--timeout S]] [--override --key=value ...]

The configuration's batch-1 training program (default: the MNIST reference TT net, on a 1 x 1 array,
the largest whose memories are all banked into block RAM: ``ttedge.synth.memfit``) is generated,
synthesized by Yosys ``synth_ecp5`` and placed and routed by nextpnr-ecp5, as ``ttedge hw synth
--target ecp5`` does, and synthesized by Yosys ``synth_xilinx`` for the Zynq UltraScale+ ZU3EG (resource
counts only, as ``--target xcup``). From the same run:

- time per sample on the FPGA = the step's cycles (cycle model, equal to the simulated counters) / Fmax;
- energy per sample on the FPGA: ``ttedge.synth.energy.step_energy`` (per-operation model, cited constants);
- the CPU: float32 PyTorch training of the same TT net and of its dense counterpart on this machine,
  batch 1, one thread (``ttedge.report.cpu``), energy at its stated, assumed power per core.

Placement and routing depend on nextpnr's placer seed as much as on most design changes, so
``--seeds`` places and routes the same netlist once per seed (``--jobs`` at a time, each bounded by
``--timeout`` seconds) and reports every seed's outcome; the time and energy use the fastest.

Writes benchmarks/results/mnist_fpga.json and the "mnist-fpga" section of benchmarks/RESULTS.md; with
``--speed 7`` or ``8`` (the ECP5 speed grade; 6, the slowest, is the default) mnist_fpga_speed<N>.json
and a section of its own, so the default grade's figures stay.
Takes about 12 minutes on the development VM (place and route about 8).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ttedge.config import load_config
from ttedge.data import NUM_CLASSES, num_features
from ttedge.hw import AcceleratorConfig
from ttedge.hw.cycles import step_cycles, utilization
from ttedge.hw.generate import build, generate
from ttedge.models import build_model, dense_counterpart
from ttedge.report.cpu import CPU_POWER_SOURCE, time_training
from ttedge.synth import SynthResult, synthesize
from ttedge.synth.devices import ECP5_SPEED_GRADES, ecp5_device
from ttedge.synth.energy import latency_s, step_energy
from ttedge.synth.memfit import memory_needs, memory_problem
from ttedge.train import RunConfig

from results_md import publish  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- mnist-fpga:begin -->", "<!-- mnist-fpga:end -->"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "mnist_tt_fixed.toml"))
    ap.add_argument("--p", type=int, default=1)
    ap.add_argument("--q", type=int, default=1)
    ap.add_argument("--override", action="append", default=[], help="config overrides (--section.key=value)")
    ap.add_argument("--cpu-steps", type=int, default=200)
    ap.add_argument("--speed", type=int, default=6, choices=ECP5_SPEED_GRADES, help="ECP5 speed grade (6 slowest, 8 fastest)")
    ap.add_argument("--seeds", default="1", help="placer seeds, comma-separated; the fastest result is reported, all are listed")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="places and routes run at once")
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed to each seed's synthesis, and to its place and route")
    args = ap.parse_args()
    try:
        seeds = sorted({int(x) for x in args.seeds.split(",")})
    except ValueError:
        raise SystemExit(f"error: --seeds takes whole numbers separated by commas, got {args.seeds!r}; e.g. --seeds 1,2,3.")
    cfg = load_config(RunConfig, args.config, args.override)
    program, interp = build(cfg, 1)
    acc = AcceleratorConfig(p=args.p, q=args.q)
    device = ecp5_device("85k")
    needs = memory_needs(program, acc)
    if problem := memory_problem(needs, device):
        raise SystemExit(f"error: {problem}")
    cycles = step_cycles(program, acc)
    with tempfile.TemporaryDirectory(prefix="ecp5_mnist_") as tmp:
        files = generate(program, interp.state_dict(), acc, tmp)

        def place(seed: int) -> SynthResult:  # one seed's synthesis, place and route
            return synthesize(files["accelerator.v"], "ttedge_accelerator", "ecp5", Path(tmp) / f"ecp5_seed{seed}",
                              clock_mhz=cfg.report.clock_mhz, speed=args.speed, seed=seed, timeout_s=args.timeout)

        with ThreadPoolExecutor(max(1, min(args.jobs, len(seeds)))) as pool:  # threads: each waits on its tools
            runs = dict(zip(seeds, pool.map(place, seeds)))
        xcup = synthesize(files["accelerator.v"], "ttedge_accelerator", "xcup", Path(tmp) / "xcup")
    for seed, run in runs.items():
        print(f"placer seed {seed}: {run.summary()}")
    routed = [seed for seed, run in runs.items() if run.ok and run.fmax_mhz]
    best = max(routed, key=lambda seed: runs[seed].fmax_mhz or 0.0) if routed else seeds[0]
    synth = runs[best]
    flat = {**synth.to_flat(), **xcup.to_flat()}
    config = " ".join([str(Path(args.config).relative_to(ROOT)) if Path(args.config).is_relative_to(ROOT) else args.config, *args.override])
    result: dict[str, Any] = {"config": config, "batch": 1, "p": acc.p, "q": acc.q, "speed_grade": args.speed,
                              "placer_seed": best, "step_cycles": cycles,
                              "seeds": [{"seed": seed, "status": run.status, "fmax_mhz": run.fmax_mhz and round(run.fmax_mhz, 2),
                                         "pnr_s": round(run.seconds.get("pnr", 0.0)), "message": run.message}
                                        for seed, run in runs.items()],
                              "utilization": utilization(program, acc), "macs": program.macs,
                              "memories": [vars(n) | {"flip_flops": n.flip_flops} for n in needs], **flat}
    fmax = synth.fmax_mhz
    if synth.ok and fmax:
        seconds = latency_s(cycles, fmax)
        result["fpga"] = step_energy(program, acc, seconds)
    width = num_features(cfg.data.name, cfg.data.pad_width or None)
    tt = build_model(cfg.model, width, NUM_CLASSES, seed=cfg.train.seed)
    result["cpu"] = [time_training(m, width, NUM_CLASSES, 1, name, steps=args.cpu_steps).to_dict()
                     for m, name in ((tt, "ttedge TT net"), (dense_counterpart(tt), "dense counterpart"))]
    result["cpu_power_source"] = CPU_POWER_SOURCE
    tag = "" if args.speed == 6 else f"_speed{args.speed}"
    begin, end = (BEGIN, END) if not tag else (BEGIN.replace("fpga", "fpga" + tag), END.replace("fpga", "fpga" + tag))
    publish(result, f"mnist_fpga{tag}.json", lambda r, when: _section(r, when, begin, end), begin, end)
    print(synth.summary())
    print(xcup.summary())


def _outcome(t: dict[str, Any]) -> str:
    """A seed's outcome in a few words."""
    if t["status"] == "ok":
        return "routed"
    return "stopped at the time limit" if "time limit" in (t.get("message") or "") else t["status"]


def _section(r: dict[str, Any], when: str, begin: str = BEGIN, end: str = END) -> str:
    speed = r.get("speed_grade", 6)
    lines = [begin, "## The MNIST training accelerator on FPGAs" + ("" if speed == 6 else f" (ECP5 speed grade {speed})"), "",
             f"Measured {when} by `benchmarks/mnist_fpga.py`: `{r['config']}`, batch {r['batch']}, a {r['p']} x {r['q']} array; "
             f"LFE5U-85F speed grade {speed} (6 is the slowest, 8 the fastest), placer seed {r.get('placer_seed', 1)}: "
             f"Yosys `synth_ecp5` and nextpnr-ecp5 (status: {r['ecp5.status']}); "
             f"XCZU3EG: Yosys `synth_xilinx`, counts only (status: {r['xcup.status']}).", ""]
    if len(r.get("seeds", [])) > 1:
        which = (f"the figures below are seed {r['placer_seed']}'s, the fastest" if any(t["status"] == "ok" for t in r["seeds"])
                 else "none routed")
        lines += [f"Every placer seed tried on the same netlist ({which}):", "",
                  "| placer seed | outcome | Fmax, MHz | place and route, s |", "|---:|---|---:|---:|"]
        lines += [f"| {t['seed']} | {_outcome(t)} | {t['fmax_mhz'] or '-'} | {t['pnr_s']:,} |" for t in r["seeds"]]
        lines += [""]
    lines += ["| memory | words x bits | read ports | write ports | banks |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {m['name']} | {m['depth']:,} x {m['width']} | {m['reads']} | {m['writes']} | {m['banks'] or 'unbanked'} |"
              for m in r["memories"]]
    keys = [("LFE5U-85F LUT4", "ecp5.lut4"), ("LFE5U-85F flip-flops", "ecp5.ff"), ("LFE5U-85F 18x18 multipliers", "ecp5.mult18x18d"),
            ("LFE5U-85F block RAMs (DP16KD, 18 kb)", "ecp5.dp16kd"), ("LFE5U-85F Fmax, MHz (requested 125)", "ecp5.fmax_mhz"),
            ("XCZU3EG LUT", "xcup.lut"), ("XCZU3EG flip-flops", "xcup.ff"), ("XCZU3EG DSP48E2", "xcup.dsp48e2"),
            ("XCZU3EG block RAM (36 kb equivalents)", "xcup.bram36")]
    lines += ["", "| resource | used | available |", "|---|---:|---:|"]
    lines += [f"| {name} | {r[key]:,} | {r[key + '_avail']:,} |" if key + "_avail" in r else f"| {name} | {r[key]:,} | - |"
              for name, key in keys if key in r]
    for target in ("ecp5", "xcup"):
        if f"{target}.message" in r:
            lines += ["", f"{target}: {r[target + '.message']}"]
    lines += ["", f"One training step (one sample) takes {r['step_cycles']:,} cycles ({r['macs']:,} MACs, "
              f"{r['utilization']:.1%} of the array busy)."]
    rows = []
    if "fpga" in r:
        f = r["fpga"]
        rows.append(["FPGA at Fmax", f"{f['seconds_per_sample'] * 1e3:.3f}", f"{f['joules_per_sample'] * 1e3:.3f}",
                     "cycles / Fmax; per-operation energy model (constants in the JSON)"])
    for c in r["cpu"]:
        rows.append([f"CPU, PyTorch float32, {c['name']}", f"{c['seconds_per_sample'] * 1e3:.3f}",
                     f"{c['joules_per_sample'] * 1e3:.3f}", f"{c['threads']} thread, {c['steps']} steps at batch 1, {c['watts']} W assumed"])
    lines += ["", "| per training sample | ms | mJ | how |", "|---|---:|---:|---|"] + ["| " + " | ".join(row) + " |" for row in rows]
    if "fpga" in r:
        cpu = r["cpu"][0]
        f = r["fpga"]
        lines += ["", f"Against the TT net on the CPU (the paper's comparison): speed-up (CPU time / FPGA time) "
                  f"{cpu['seconds_per_sample'] / f['seconds_per_sample']:.3g}x, energy saving (CPU energy / FPGA energy) "
                  f"{cpu['joules_per_sample'] / f['joules_per_sample']:.3g}x. FPGA energy: {f['static_pj'] / f['total_pj']:.0%} "
                  f"is static power over the step's duration. CPU power: {r['cpu_power_source']}."]
    return "\n".join(lines + [end])


if __name__ == "__main__":
    main()
