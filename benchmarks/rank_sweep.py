"""Rank-adaptive training on MNIST: a sweep of the hyperprior against the fixed-rank reference net.

    .venv/bin/python benchmarks/rank_sweep.py --data-dir PATH/TO/MNIST [--betas 0.3 0.5 0.7 1] [--threads 1]
    .venv/bin/python benchmarks/rank_sweep.py --reference RUN_DIR --from-runs RUN_DIR [RUN_DIR ...]

Each sweep run is configs/mnist_tt_bayes.toml with ``--bayes.beta=B``; the reference is
configs/mnist_tt.toml, the same network and training recipe with fixed ranks. Writes
benchmarks/results/rank_sweep.json, rank_sweep.png (test accuracy against TT core parameters) and
the "Rank-adaptive MNIST sweep" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ttedge.config import load_config  # noqa: E402
from ttedge.train import RunConfig  # noqa: E402
from ttedge.train.loop import train  # noqa: E402
from ttedge.train.ranks_report import ranks_report  # noqa: E402

from results_md import write_section  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- rank-sweep:begin -->", "<!-- rank-sweep:end -->"


def _row(run_dir: Path) -> dict[str, Any]:
    rep = ranks_report(run_dir)
    cfg = load_config(RunConfig, run_dir / "config.toml")
    after = rep["after"]
    return {"run": run_dir.name, "rank_adaptive": rep["rank_adaptive"], "prior": rep["prior"],
            "epochs": cfg.train.epochs, "ranks": after["ranks"], "core_parameters": after["core_parameters"],
            "parameters": after["parameters"], "test_acc": after["test_acc"]}


def _markdown(ref: dict[str, Any], rows: list[dict[str, Any]], when: str, recipe: str) -> str:
    lines = [BEGIN, "## Rank-adaptive MNIST sweep", "",
             f"Measured {when}; `benchmarks/rank_sweep.py`. The MNIST reference TT net starts at rank 16 "
             f"on every bond; sweep settings other than beta: {recipe}. Bars: at most half "
             f"the reference's {ref['core_parameters']:,} core parameters with test accuracy at most "
             "0.3 points below it. Plot: `benchmarks/results/rank_sweep.png`.", "",
             "| run | beta | ranks found (fc1 / fc2) | core parameters | vs reference | test accuracy | vs reference | both bars |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for r in [ref, *rows]:
        beta = r["prior"]["beta"] if r["prior"] else "fixed"
        ranks = " / ".join(str(v) for v in r["ranks"].values())
        ratio = r["core_parameters"] / ref["core_parameters"]
        delta = 100 * (r["test_acc"] - ref["test_acc"])
        ok = "-" if r is ref else ("yes" if ratio <= 0.5 and delta >= -0.3 else "no")
        lines.append(f"| {r['run']} | {beta} | {ranks} | {r['core_parameters']:,} | {ratio:.2f}x | "
                     f"{100 * r['test_acc']:.2f}% | {delta:+.2f} | {ok} |")
    return "\n".join([*lines, END])


def _plot(ref: dict[str, Any], rows: list[dict[str, Any]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    adaptive = [r for r in rows if r["prior"]]
    fixed = [r for r in rows if not r["prior"]]
    ax.plot([r["core_parameters"] for r in adaptive], [100 * r["test_acc"] for r in adaptive], "o", label="rank-adaptive")
    for r in adaptive:
        ax.annotate(f"beta {r['prior']['beta']}", (r["core_parameters"], 100 * r["test_acc"]), fontsize=7)
    if fixed:
        ax.plot([r["core_parameters"] for r in fixed], [100 * r["test_acc"] for r in fixed], "^",
                label="fixed smaller ranks, from scratch")
    ax.plot([ref["core_parameters"]], [100 * ref["test_acc"]], "s", color="k", label="fixed rank 16")
    ax.axvline(ref["core_parameters"] / 2, ls=":", color="gray", label="half the parameters")
    ax.axhline(100 * ref["test_acc"] - 0.3, ls="--", color="gray", label="reference - 0.3 points")
    ax.set(xlabel="TT core parameters", ylabel="MNIST test accuracy (%)", title="accuracy vs parameters")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", help="folder with the four MNIST IDX files")
    ap.add_argument("--betas", type=float, nargs="+", default=[0.3, 0.5, 0.7, 1.0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-rank-sweep"))
    ap.add_argument("--reference", metavar="RUN_DIR", help="finished fixed-rank run to compare with")
    ap.add_argument("--from-runs", nargs="+", metavar="RUN_DIR", help="summarize finished runs instead")
    args = ap.parse_args()
    if args.from_runs:
        if not args.reference:
            ap.error("--from-runs needs --reference")
        ref_dir, run_dirs = Path(args.reference), [Path(p) for p in args.from_runs]
    else:
        if not args.data_dir:
            ap.error("--data-dir is required unless --from-runs is given")
        base = [f"--data.data_dir={args.data_dir}", f"--train.threads={args.threads}"]
        cfg = load_config(RunConfig, ROOT / "configs" / "mnist_tt.toml", base)
        ref_dir = train(cfg, Path(args.out) / "fixed").run_dir
        run_dirs = []
        for beta in args.betas:
            cfg = load_config(RunConfig, ROOT / "configs" / "mnist_tt_bayes.toml", [*base, f"--bayes.beta={beta}"])
            run_dirs.append(train(cfg, Path(args.out) / f"beta-{beta}").run_dir)
    ref, rows = _row(ref_dir), [_row(d) for d in run_dirs]
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rank_sweep.json").write_text(json.dumps({"measured": when, "reference": ref, "runs": rows}, indent=2) + "\n")
    _plot(ref, rows, RESULTS / "rank_sweep.png")
    bayes = load_config(RunConfig, run_dirs[0] / "config.toml").bayes
    recipe = ", ".join(f"{k} {v}" for k, v in vars(bayes).items() if k not in ("enabled", "beta"))
    text = _markdown(ref, rows, when, recipe)
    write_section(text, BEGIN, END)
    print(text)


if __name__ == "__main__":
    main()
