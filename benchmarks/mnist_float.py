"""Float training on MNIST: the TT reference network of METHOD.md beside the dense 784-512-10 baseline.

    .venv/bin/python benchmarks/mnist_float.py --data-dir PATH/TO/MNIST [--threads 1] [--epochs N]
    .venv/bin/python benchmarks/mnist_float.py --from-runs RUN_DIR [RUN_DIR ...]

Trains configs/mnist_tt.toml and configs/mnist_dense.toml (or summarizes finished run folders),
then writes benchmarks/results/mnist_float.json and the "MNIST float training" section of
benchmarks/RESULTS.md (the region between its markers only).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path
from typing import Any

import torch

from ttedge.config import load_config
from ttedge.train import RunConfig
from ttedge.train.loop import train

from results_md import write_section  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- mnist-float:begin -->", "<!-- mnist-float:end -->"
CONFIGS = ("mnist_tt.toml", "mnist_dense.toml")


def _row(run_dir: Path) -> dict[str, Any]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    cfg = load_config(RunConfig, run_dir / "config.toml")
    s = metrics["summary"]
    return {"run": run_dir.name, "name": cfg.name, "mode": s["mode"], "layer": cfg.model.layer,
            "epochs": s["epochs"], "final_test_acc": s["final_test_acc"], "best_test_acc": s["best_test_acc"],
            "train_seconds": s["train_seconds"], "parameters": s["parameters"],
            "core_parameters": s["core_parameters"], "threads": cfg.train.threads or torch.get_num_threads(),
            "optimizer": cfg.train.optimizer, "lr": cfg.train.lr, "batch_size": cfg.train.batch_size,
            "weight_decay": cfg.train.weight_decay, "label_smoothing": cfg.train.label_smoothing}


def _markdown(rows: list[dict[str, Any]], when: str) -> str:
    lines = [
        BEGIN, "## MNIST float training", "",
        f"Measured {when} on {platform.processor() or platform.machine()}, torch {torch.__version__}; "
        "`benchmarks/mnist_float.py` (times are training time without evaluation, on a shared 2-core VM).",
        "",
        "| run | layers | epochs | test acc (final) | test acc (best) | train time s | threads | parameters | TT core parameters | optimizer |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        opt = f"{r['optimizer']} lr {r['lr']}, batch {r['batch_size']}, wd {r['weight_decay']}, smoothing {r['label_smoothing']}"
        lines.append(f"| {r['name']} | {r['layer']} | {r['epochs']} | {100 * r['final_test_acc']:.2f}% | "
                     f"{100 * r['best_test_acc']:.2f}% | {r['train_seconds']:.0f} | {r['threads']} | "
                     f"{r['parameters']:,} | {r['core_parameters']:,} | {opt} |")
    return "\n".join([*lines, END])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", help="folder with the four MNIST IDX files")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--epochs", type=int, default=0, help="override the configs' epoch counts")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-mnist-float"), help="folder for the runs")
    ap.add_argument("--from-runs", nargs="+", metavar="RUN_DIR", help="summarize finished runs instead")
    args = ap.parse_args()
    if args.from_runs:
        run_dirs = [Path(p) for p in args.from_runs]
    else:
        if not args.data_dir:
            ap.error("--data-dir is required unless --from-runs is given")
        run_dirs = []
        for name in CONFIGS:
            overrides = [f"--data.data_dir={args.data_dir}", f"--train.threads={args.threads}"]
            if args.epochs:
                overrides.append(f"--train.epochs={args.epochs}")
            cfg = load_config(RunConfig, ROOT / "configs" / name, overrides)
            run_dirs.append(train(cfg, Path(args.out) / cfg.name).run_dir)
    rows = [_row(d) for d in run_dirs]
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out = ROOT / "benchmarks" / "results" / "mnist_float.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"measured": when, "runs": rows}, indent=2) + "\n")
    write_section(_markdown(rows, when), BEGIN, END)
    print(_markdown(rows, when))


if __name__ == "__main__":
    main()
