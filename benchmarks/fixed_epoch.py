"""One MNIST training epoch through the fixed-point reference interpreter, on one core.

    .venv/bin/python benchmarks/fixed_epoch.py --data-dir PATH/TO/MNIST [--config configs/mnist_tt_fixed.toml]
                                               [--steps N] [--repeats 1]

Times the training steps of one epoch (floor(60000 / B) steps of ``Interpreter.step``; evaluation,
data loading and input quantization excluded) of the config's fixed-point program with every BLAS
and torch thread limited to one. The baseline, in the same process and on the same batches, is
one epoch of float32 PyTorch training of the same TT network (forward, backward, SGD step), also on
one thread; the ratio says what bit-exact integer arithmetic costs. ``--steps`` times fewer steps
and scales to an epoch (labelled as such). Writes benchmarks/results/fixed_epoch.json and the
"fixed-epoch" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from ttedge.config import load_config
from ttedge.data import NUM_CLASSES
from ttedge.fixed import Interpreter, compile_program
from ttedge.models import build_model
from ttedge.train import RunConfig
from ttedge.train.fixed_loop import quantize_inputs
from ttedge.train.loop import load_split, shuffle

from results_md import publish  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- fixed-epoch:begin -->", "<!-- fixed-epoch:end -->"
BAR_SECONDS = 180.0  # the goal: one epoch in under 3 minutes on one core


def measure(cfg: RunConfig, steps: int | None) -> dict[str, Any]:
    x_train, y_train = load_split(cfg.data, "train")
    batch = cfg.train.batch_size
    per_epoch = len(x_train) // batch
    n = min(steps or per_epoch, per_epoch)
    model = build_model(cfg.model, x_train.shape[1], NUM_CLASSES, seed=cfg.train.seed)
    float_model = build_model(cfg.model, x_train.shape[1], NUM_CLASSES, seed=cfg.train.seed)
    program = compile_program(model, cfg.fixed.precision(), batch)
    interp = Interpreter(program, model)
    order = shuffle(len(x_train), cfg.train.seed, 0).numpy()
    batches = [order[i * batch : (i + 1) * batch] for i in range(n)]
    torch.set_num_threads(1)
    with threadpool_limits(1):
        codes, labels = quantize_inputs(interp, x_train.numpy()), y_train.numpy()
        interp.calibrate(codes[batches[0]], labels[batches[0]])
        t0 = time.perf_counter()
        for idx in batches:
            interp.step(codes[idx], labels[idx])
        fixed_s = time.perf_counter() - t0

        opt = torch.optim.SGD(float_model.parameters(), lr=0.01, momentum=0.9)
        t0 = time.perf_counter()
        for idx in batches:
            t = torch.from_numpy(idx)
            loss = torch.nn.functional.cross_entropy(float_model(x_train[t]), y_train[t])
            opt.zero_grad()
            loss.backward()
            opt.step()
        float_s = time.perf_counter() - t0
    scale = per_epoch / n
    return {"config": cfg.name, "batch_size": batch, "steps_per_epoch": per_epoch, "steps_timed": n,
            "fixed_epoch_seconds": fixed_s * scale, "float_epoch_seconds": float_s * scale,
            "fixed_over_float": fixed_s / float_s, "step_macs": program.macs,
            "extrapolated": n < per_epoch, "threads": 1, "bar_seconds": BAR_SECONDS}


def markdown(r: dict[str, Any], when: str) -> str:
    note = (f"{r['steps_timed']} of {r['steps_per_epoch']} steps timed and scaled to an epoch"
            if r["extrapolated"] else f"all {r['steps_per_epoch']} steps of an epoch timed")
    verdict = "meets" if r["fixed_epoch_seconds"] < r["bar_seconds"] else "misses"
    return "\n".join([
        BEGIN, "## One MNIST epoch through the fixed-point interpreter", "",
        f"Measured {when} on {platform.processor() or platform.machine()} with one thread (BLAS and torch), "
        f"`benchmarks/fixed_epoch.py` on `{r['config']}` at batch {r['batch_size']} ({note}; "
        "the shared 2-core VM was also running other jobs). Baseline: float32 PyTorch training of the same "
        "TT network on the same batches, same process.",
        "",
        "| what | epoch time s | vs float32 PyTorch |",
        "|---|---:|---:|",
        f"| fixed point, reference interpreter | {r['fixed_epoch_seconds']:.1f} | {r['fixed_over_float']:.2f}x |",
        f"| float32 PyTorch (baseline) | {r['float_epoch_seconds']:.1f} | 1.00x |",
        "",
        f"The interpreter {verdict} the goal of one epoch in under {r['bar_seconds']:.0f} s on one core "
        f"({r['step_macs']:,} multiply-accumulates per step).",
        END,
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="folder with the four MNIST IDX files")
    ap.add_argument("--config", default=str(ROOT / "configs" / "mnist_tt_fixed.toml"))
    ap.add_argument("--steps", type=int, default=None, help="time this many steps and scale to an epoch")
    args = ap.parse_args()
    cfg = load_config(RunConfig, args.config, [f"--data.data_dir={args.data_dir}"])
    result = measure(cfg, args.steps)
    publish(result, "fixed_epoch.json", markdown, BEGIN, END)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
