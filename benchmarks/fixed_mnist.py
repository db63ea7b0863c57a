"""MNIST trained wholly in fixed point: accuracy and memory of finished runs, as a table and plots.

    .venv/bin/python benchmarks/fixed_mnist.py --from-runs RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a finished ``ttedge train`` run of a fixed-point MNIST config (e.g.
configs/mnist_tt_fixed.toml with overrides, or configs/mnist_tt_fixed_bayes.toml). For each run the
memory account (``ttedge.memory.compare_fixed``) is recomputed from its resolved config at its
final ranks (pruned runs: the ranks after the last cut). Writes benchmarks/results/fixed_mnist.json,
the "fixed-mnist" section of benchmarks/RESULTS.md (every run, then the core bits x optimizer grid
of the full-rank runs) and benchmarks/results/fixed_memory.png (the step breakdown of the most
compressed run at >= 97.5%).
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

from ttedge.config import load_config
from ttedge.memory import compare_fixed
from ttedge.train import RunConfig
from ttedge.train.plots import plot_memory

from results_md import write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- fixed-mnist:begin -->", "<!-- fixed-mnist:end -->"
ACCURACY_BAR = 0.975


def optimizer_of(cfg: RunConfig) -> str:
    f = cfg.fixed
    if f.optimizer == "adam":
        return "Adam" + (f" ({f.master} master)" if f.master else "")
    kind = f"SGD momentum 1-2^-{f.momentum_shift}" if f.momentum_shift else "SGD"
    return kind + (f", {f.master} master" if f.master else ", no master")


def row(run_dir: Path) -> dict[str, Any]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    cfg = load_config(RunConfig, run_dir / "config.toml")
    epochs, summary = metrics["epochs"], metrics["summary"]
    ranks = cfg.model.ranks
    if "ranks" in epochs[-1]:  # a rank-adaptive run: its final (pruned) ranks
        ranks = [epochs[-1]["ranks"][f"layers.{i}"] for i in range(len(cfg.model.ranks))]
    sized = load_config(RunConfig, run_dir / "config.toml", [f"--model.ranks={json.dumps(ranks)}", "--memory.batch_size=1"])
    table = compare_fixed(sized)
    return {
        "run": run_dir.name, "mode": summary["mode"], "core": cfg.fixed.core, "master": cfg.fixed.master,
        "bias": cfg.fixed.bias, "optimizer": optimizer_of(cfg), "optimizer_kind": cfg.fixed.optimizer,
        "rank_adaptive": cfg.bayes.enabled, "ranks": ranks, "out_modes": cfg.model.out_modes,
        "epochs": len(epochs), "final_test_acc": epochs[-1]["test_acc"], "best_test_acc": max(e["test_acc"] for e in epochs),
        "train_seconds": summary["train_seconds"], "parameter_ratio": table["parameter_ratio"],
        "step_ratio": table["step_ratio"], "step_ratio_shared": table["step_ratio_shared"],
        "fixed_bits": table["fixed_bits"], "lr_shift": cfg.fixed.lr_shift, "lr_decay_epochs": cfg.fixed.lr_decay_epochs,
        "_table": table,
    }


def _grid(rows: list[dict[str, Any]]) -> list[str]:
    """Core bits x optimizer over the full-rank runs (the reference net of METHOD.md)."""
    full = [r for r in rows if not r["rank_adaptive"] and r["ranks"] == [[16, 16, 16], [16]]]
    columns = ("SGD, no master", "SGD, 8-bit master", "Adam")

    def column(r: dict[str, Any]) -> str:
        if r["optimizer_kind"] == "adam":
            return "Adam"
        return "SGD, 8-bit master" if r["master"].startswith("fx<8,") else "SGD, no master" if not r["master"] else ""

    lines = ["", "Core bits x optimizer, full ranks (the grid the fixed-point bar asks for; final test accuracy, "
             "parameter ratio / whole-step ratio vs dense fp32 Adam; an 8-bit core with an 8-bit master is the "
             "no-master run itself):", "", "| core bits | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for bits in (4, 6, 8):
        cells = []
        for col in columns:
            hits = [r for r in full if r["core"].startswith(f"fx<{bits},") and (column(r) == col or (
                bits == 8 and col == "SGD, 8-bit master" and column(r) == "SGD, no master"))]
            cells.append("; ".join(f"{100 * r['final_test_acc']:.2f}% ({r['parameter_ratio']:.0f}x / {r['step_ratio']:.0f}x)"
                                   for r in hits) or "not run")
        lines.append(f"| {bits} | " + " | ".join(cells) + " |")
    return lines


def markdown(rows: list[dict[str, Any]], when: str) -> str:
    lines = [
        BEGIN, "## MNIST trained wholly in fixed point", "",
        f"Summarized {when} by `benchmarks/fixed_mnist.py` from finished runs, all trained through the reference "
        "interpreter (mode: fixed point; one thread each, two or three runs side by side on the shared 2-core VM) "
        "from `configs/mnist_tt_fixed.toml` (15 epochs, batch 64, lr 2^-lr_shift per sample halved after epochs "
        "6, 9, 12) with the overrides shown, or `configs/mnist_tt_fixed_bayes.toml` (ranks found in fixed point). "
        "Ratios: the dense 784-512-10 net's fp32 parameters (and its whole fp32 Adam step) over this run's at its "
        "final ranks, batch 1, from `ttedge memory`; 'shared' lets working buffers reuse storage by lifetime.",
        "",
        "| run | ranks (fc1 / fc2) | fc2 out modes | core | bias | optimizer | epochs | test acc (final) | test acc (best) | "
        "parameter ratio | whole-step ratio | shared | train s |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ranks = f"{r['ranks'][0]} / {r['ranks'][1]}" + (" (found in fixed point)" if r["rank_adaptive"] else "")
        lines.append(
            f"| {r['run']} | {ranks} | {r['out_modes'][1]} | {r['core']} | {r['bias']} | {r['optimizer']} | {r['epochs']} | "
            f"{100 * r['final_test_acc']:.2f}% | {100 * r['best_test_acc']:.2f}% | {r['parameter_ratio']:.1f}x | "
            f"{r['step_ratio']:.1f}x | {r['step_ratio_shared']:.1f}x | {r['train_seconds']:.0f} |")
    lines += _grid(rows)
    best = _headline(rows)
    if best is not None:
        lines += ["", f"Most compressed run at >= {100 * ACCURACY_BAR:.1f}% final accuracy: {best['run']}, "
                  f"{100 * best['final_test_acc']:.2f}% at {best['parameter_ratio']:.1f}x parameter memory; its step "
                  "breakdown: `benchmarks/results/fixed_memory.png`.", "", "![memory](results/fixed_memory.png)"]
    return "\n".join([*lines, END])


def _headline(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    good = [r for r in rows if r["final_test_acc"] >= ACCURACY_BAR]
    return max(good, key=lambda r: r["parameter_ratio"], default=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from-runs", nargs="+", required=True, type=Path, metavar="RUN_DIR")
    args = ap.parse_args()
    rows = [row(d) for d in args.from_runs]
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    best = _headline(rows)
    if best is not None:
        plot_memory(best["_table"], ROOT / "benchmarks" / "results" / "fixed_memory.png",
                    title=f"{best['run']}: {100 * best['final_test_acc']:.2f}% MNIST, training-step memory")
    for r in rows:
        del r["_table"]
    (ROOT / "benchmarks" / "results" / "fixed_mnist.json").write_text(json.dumps({"measured": when, "runs": rows}, indent=2) + "\n")
    write_section(markdown(rows, when), BEGIN, END)
    print("\n".join(markdown(rows, when).splitlines()[1:-1]))


if __name__ == "__main__":
    main()
