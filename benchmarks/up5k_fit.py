"""Does the MNIST training accelerator fit an iCE40 UP5K? Memory plan and logic cells, measured.

    .venv/bin/python benchmarks/up5k_fit.py [--p 1 --q 1] [--batch 1] [--override --fixed.master=fx<16,1> ...]

The configuration: ``configs/mnist_tt_fixed.toml`` at the 304x point (ranks [10, 7, 8] / [8], fc2
out modes [2, 5], 8-bit cores and biases) with the given overrides, at ``--batch``, on a P x Q array
(default 1 x 1, the smallest). ``ttedge.synth.fit_up5k`` does the work (its docstring says how):
every buffer placed in SPRAM and block RAM by the memory plan, and Yosys ``synth_ice40`` of the
accelerator with its memories as black boxes for the logic, in total and per unit.

Writes benchmarks/results/up5k_fit.json and the "up5k-fit" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from pathlib import Path

from ttedge.config import load_config
from ttedge.hw import AcceleratorConfig
from ttedge.hw.generate import build
from ttedge.hw.top import Accelerator
from ttedge.synth import fit_up5k
from ttedge.train import RunConfig

from results_md import write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- up5k-fit:begin -->", "<!-- up5k-fit:end -->"
X304 = ["--model.ranks=[[10,7,8],[8]]", "--model.out_modes=[[4,4,2,16],[2,5]]", "--fixed.bias=fx<8,2>"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--p", type=int, default=1)
    ap.add_argument("--q", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--override", action="append", default=["--fixed.master=fx<16,1>"],
                    help="config overrides beyond the 304x point (default: a 16-bit master copy of the cores)")
    args = ap.parse_args()
    overrides = X304 + args.override
    cfg = load_config(RunConfig, ROOT / "configs" / "mnist_tt_fixed.toml", overrides)
    program, interp = build(cfg, args.batch)
    acc = AcceleratorConfig(p=args.p, q=args.q)
    dut = Accelerator(program, acc, interp.state_dict(), external_memories=True)
    with tempfile.TemporaryDirectory(prefix="up5k_fit_") as tmp:
        fit = fit_up5k(dut, tmp)
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    config = "configs/mnist_tt_fixed.toml " + " ".join(overrides)
    result = {"config": config, "batch": args.batch, "p": acc.p, "q": acc.q, **fit.to_flat(), "units": fit.units,
              "yosys_seconds": fit.seconds, "measured": when}
    (ROOT / "benchmarks" / "results" / "up5k_fit.json").write_text(json.dumps(result, indent=2) + "\n")
    text = fit.render().replace("### iCE40 UP5K fit", "## Does the MNIST training accelerator fit an iCE40 UP5K?", 1)
    text = text.replace("### iCE40 UP5K memory plan", "### Its memory plan", 1)
    intro = f"Measured {when} by `benchmarks/up5k_fit.py`: `{config}`, batch {args.batch}, a {acc.p} x {acc.q} array."
    head, rest = text.split("\n", 1)
    write_section("\n".join([BEGIN, head, "", intro, rest.rstrip("\n"), END]), BEGIN, END)
    print(fit.message())


if __name__ == "__main__":
    main()
