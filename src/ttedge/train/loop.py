"""The float training loop: deterministic, checkpointed, resumable to identical results.

Shuffles come from a generator seeded by (seed, epoch) and the learning rate is a function of the
global step, so a run resumed from any checkpoint replays exactly the steps an uninterrupted run
would have taken. Library code never prints: progress goes to an optional callback.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import save_config, to_toml
from ..data import NUM_CLASSES, load_dataset
from ..errors import CheckpointError
from ..models import build_model, dense_counterpart
from ..tt import TTLinear
from .checkpoint import load_checkpoint, save_checkpoint
from .config import DataConfig, RunConfig, TrainConfig
from .plots import plot_curves, plot_ranks
from .rank_adapt import RankAdapter, core_shapes_of, resize_cores

__all__ = ["Callback", "RunResult", "load_split", "new_run_dir", "resume_checkpoint", "shuffle", "train", "write_results"]

# callback(event, info): event is "start" (total_steps, start_step, steps_per_epoch), "step"
# (step, loss) or "epoch" (the epoch's metrics).
Callback = Callable[[str, dict[str, Any]], None]

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.toml"
METRICS = "metrics.json"
CURVES = "curves.png"
RANKS_PLOT = "ranks.png"


@dataclass
class RunResult:
    run_dir: Path
    model: nn.Module
    epochs: list[dict[str, Any]]
    summary: dict[str, Any]
    interpreter: Any = None  # the fixed-point run's Interpreter (exact integer state); None for float runs


def load_split(cfg: DataConfig, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, D) float32 and labels (N,) int64 of one split, as the config describes."""
    x, y = load_dataset(cfg.name, split, data_dir=cfg.data_dir or None, download=cfg.download,
                        pad_width=cfg.pad_width or None, seed=cfg.split_seed)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


def new_run_dir(cfg: RunConfig) -> Path:
    """A fresh folder ``out_dir/name-YYYYmmdd-HHMMSS`` (suffixed if that exists already)."""
    base = Path(cfg.out_dir) / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{base.name}-{i}"), i + 1
    path.mkdir(parents=True)
    return path


def resume_checkpoint(run_dir: Path, config_text: str) -> dict[str, Any]:
    """The checkpoint of ``run_dir``, refused unless it was written with ``config_text``."""
    ckpt = load_checkpoint(run_dir / CHECKPOINT)
    if ckpt.get("config") != config_text:
        raise CheckpointError(
            f"the checkpoint in {run_dir} was written with a different configuration; "
            "resume without overrides, or start a new run."
        )
    return ckpt


def new_run_state() -> dict[str, Any]:
    """Position in a run and the running sums of its current epoch (checkpointed with the model)."""
    return {"epoch": 0, "step_in_epoch": 0, "epochs": [], "loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}


def record_step(state: dict[str, Any], i: int, loss_sum: float, correct: int, seen: int, seconds: float) -> None:
    """Add step ``i`` of the current epoch (summed loss, correct count, samples, time) to ``state``."""
    state["loss_sum"] += loss_sum
    state["correct"] += correct
    state["seen"] += seen
    state["step_in_epoch"] = i + 1
    state["seconds"] += seconds


def close_epoch(state: dict[str, Any], steps_per_epoch: int, test_loss: float, test_acc: float,
                **extra: Any) -> dict[str, Any]:
    """The finished epoch's metrics (``extra`` appended); ``state`` moves on to the next epoch."""
    epoch = state["epoch"] + 1
    metrics = {"epoch": epoch, "step": epoch * steps_per_epoch,
               "train_loss": state["loss_sum"] / state["seen"], "train_acc": state["correct"] / state["seen"],
               "test_loss": test_loss, "test_acc": test_acc,
               "seconds": state["seconds"],  # training time so far, evaluation excluded
               **extra}
    state.update(new_run_state(), epoch=epoch, seconds=state["seconds"], epochs=[*state["epochs"], metrics])
    return metrics


def _lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
    return cfg.lr


def _make_optimizer(cfg: TrainConfig, params: Any) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def shuffle(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of ``epoch``: a permutation of range(n) seeded by (seed, epoch)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (fraction) of ``model`` on (x, y)."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch):
        logits = model(x[i : i + batch])
        loss += nn.functional.cross_entropy(logits, y[i : i + batch], reduction="sum").item()
        correct += int((logits.argmax(1) == y[i : i + batch]).sum())
    model.train()
    return loss / len(x), correct / len(x)


def model_summary(model: nn.Module) -> dict[str, Any]:
    """Parameter counts of the model and of its dense counterpart."""
    params = sum(p.numel() for p in model.parameters())
    dense = sum(p.numel() for p in dense_counterpart(model).parameters())
    tt_layers = [m for m in model.modules() if isinstance(m, TTLinear)]
    return {
        "parameters": params,
        "core_parameters": sum(m.core_parameters() for m in tt_layers),
        "dense_parameters": dense,
        "compression": dense / params,
        "ranks": [m.ranks for m in tt_layers],
    }


def train(cfg: RunConfig, run_dir: str | os.PathLike[str], resume: bool = False,
          callback: Callback | None = None) -> RunResult:
    """Train the model of ``cfg`` in ``run_dir``; with ``resume``, continue from its checkpoint."""
    if cfg.fixed.enabled:
        from .fixed_loop import train_fixed  # imports this module's helpers

        return train_fixed(cfg, run_dir, resume, callback)
    emit = callback or (lambda event, info: None)
    run_dir = Path(run_dir)
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    x_train, y_train = load_split(cfg.data, "train")
    x_test, y_test = load_split(cfg.data, "test")
    model = build_model(cfg.model, x_train.shape[1], NUM_CLASSES, seed=tc.seed)
    steps_per_epoch = math.ceil(len(x_train) / tc.batch_size)
    total = tc.epochs * steps_per_epoch
    config_text = to_toml(cfg)
    ckpt = resume_checkpoint(run_dir, config_text) if resume else None
    if ckpt is not None:
        resize_cores(model, ckpt["core_shapes"])  # ranks may have been pruned before the checkpoint
    opt = _make_optimizer(tc, model.parameters())
    adapter = RankAdapter(cfg.bayes, model, len(x_train), steps_per_epoch) if cfg.bayes.enabled else None

    state = new_run_state()
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if adapter is not None:
            adapter.load_state_dict(ckpt["bayes"])
        state = {k: ckpt[k] for k in state}
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / CONFIG)

    def checkpoint() -> None:
        save_checkpoint(run_dir / CHECKPOINT, {
            "config": config_text, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "core_shapes": core_shapes_of(model), "bayes": adapter.state_dict() if adapter else {}, **state})

    emit("start", {"total_steps": total, "steps_per_epoch": steps_per_epoch,
                   "start_step": state["epoch"] * steps_per_epoch + state["step_in_epoch"]})
    model.train()
    while state["epoch"] < tc.epochs:
        epoch = state["epoch"]
        order = shuffle(len(x_train), tc.seed, epoch)
        t0 = time.perf_counter()
        for i in range(state["step_in_epoch"], steps_per_epoch):
            step = epoch * steps_per_epoch + i
            idx = order[i * tc.batch_size : (i + 1) * tc.batch_size]
            for group in opt.param_groups:
                group["lr"] = _lr_at(tc, step, total)
            logits = model(x_train[idx])
            loss = nn.functional.cross_entropy(logits, y_train[idx], label_smoothing=tc.label_smoothing)
            penalty = adapter.penalty(model, step) if adapter else None
            opt.zero_grad(set_to_none=True)
            (loss if penalty is None else loss + penalty).backward()
            opt.step()
            if adapter:
                adapter.after_step(model, step)
            record_step(state, i, loss.item() * len(idx), int((logits.argmax(1) == y_train[idx]).sum()),
                        len(idx), time.perf_counter() - t0)
            t0 = time.perf_counter()
            if tc.checkpoint_every and (step + 1) % tc.checkpoint_every == 0 and i + 1 < steps_per_epoch:
                checkpoint()
            emit("step", {"step": step + 1, "loss": loss.item()})
        ranks_log = adapter.end_epoch(model, epoch + 1, opt) if adapter else {}
        test_loss, test_acc = evaluate(model, x_test, y_test)
        metrics = close_epoch(state, steps_per_epoch, test_loss, test_acc,
                              lr=_lr_at(tc, (epoch + 1) * steps_per_epoch - 1, total),
                              parameters=sum(p.numel() for p in model.parameters()), **ranks_log)
        checkpoint()
        write_results(run_dir, cfg, model, state["epochs"], plot=False)
        emit("epoch", metrics)
    summary = write_results(run_dir, cfg, model, state["epochs"], plot=True)
    return RunResult(run_dir, model, state["epochs"], summary)


def write_results(run_dir: Path, cfg: RunConfig, model: nn.Module, epochs: list[dict[str, Any]],
                  plot: bool, mode: str = "float32 (PyTorch)", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """metrics.json (per-epoch metrics and a summary) and, with ``plot``, the loss/accuracy plot.

    ``mode`` names the arithmetic that trained the model; ``extra`` adds summary entries.
    """
    summary = {
        "mode": mode,
        "rank_adaptive": cfg.bayes.enabled,
        "data": cfg.data.name,
        "model": cfg.model.layer,
        "epochs": len(epochs),
        "final_test_acc": epochs[-1]["test_acc"],
        "best_test_acc": max(e["test_acc"] for e in epochs),
        "train_seconds": epochs[-1]["seconds"],
        **model_summary(model),
        **(extra or {}),
    }
    tmp = run_dir / (METRICS + ".tmp")
    tmp.write_text(json.dumps({"summary": summary, "epochs": epochs}, indent=2))
    os.replace(tmp, run_dir / METRICS)
    if plot:
        plot_curves(epochs, run_dir / CURVES, title=f"{cfg.name}: {cfg.data.name}, {cfg.model.layer} layers, {mode}")
        if cfg.bayes.enabled:
            plot_ranks(epochs, run_dir / RANKS_PLOT, title=f"{cfg.name}: {cfg.bayes.prior} prior")
    return summary
