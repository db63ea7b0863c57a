"""Does the MNIST training accelerator fit an iCE40 UP5K? Memory plan and logic cells, measured.

    .venv/bin/python benchmarks/up5k_fit.py [--config configs/mnist_tt_fixed_up5k.toml] [--override --key=value ...]

The configuration (default: the UP5K one, with the 304x ranks, batch 1 and a 1 x 1 array from its
[hw] section) at its training batch. ``ttedge.synth.fit_up5k`` does the work (its docstring says
how): every buffer placed in SPRAM and block RAM by the memory plan, and Yosys ``synth_ice40`` of
the accelerator with its memories as black boxes for the logic, in total and per unit.

Writes benchmarks/results/up5k_fit.json and the "up5k-fit" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from ttedge.config import load_config
from ttedge.hw.generate import build
from ttedge.hw.top import Accelerator
from ttedge.synth import fit_up5k
from ttedge.train import RunConfig

from results_md import publish  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- up5k-fit:begin -->", "<!-- up5k-fit:end -->"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "mnist_tt_fixed_up5k.toml"))
    ap.add_argument("--override", action="append", default=[], help="config overrides (--section.key=value)")
    args = ap.parse_args()
    cfg = load_config(RunConfig, args.config, args.override)
    program, interp = build(cfg)
    acc = cfg.hw.accelerator()
    dut = Accelerator(program, acc, interp.state_dict(), external_memories=True)
    with tempfile.TemporaryDirectory(prefix="up5k_fit_") as tmp:
        fit = fit_up5k(dut, tmp)
    config = " ".join([str(Path(args.config).relative_to(ROOT)) if Path(args.config).is_relative_to(ROOT) else args.config, *args.override])
    result = {"config": config, "batch": program.batch, "p": acc.p, "q": acc.q, **fit.to_flat(), "units": fit.units,
              "yosys_seconds": fit.seconds}

    def section(result: dict[str, Any], when: str) -> str:
        text = fit.render().replace("### iCE40 UP5K fit", "## Does the MNIST training accelerator fit an iCE40 UP5K?", 1)
        head, rest = text.replace("### iCE40 UP5K memory plan", "### Its memory plan", 1).split("\n", 1)
        intro = f"Measured {when} by `benchmarks/up5k_fit.py`: `{config}`, batch {program.batch}, a {acc.p} x {acc.q} array."
        return "\n".join([BEGIN, head, "", intro, rest.rstrip("\n"), END])

    publish(result, "up5k_fit.json", section, BEGIN, END)
    print(fit.message())


if __name__ == "__main__":
    main()
