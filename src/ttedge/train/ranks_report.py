"""What rank adaptation found in a finished run: ranks, parameters, memory and accuracy, before and after.

"Before" is the model as configured (the starting ranks) with the test accuracy of the last epoch
before the first pruning; "after" is the model in the run's last checkpoint with its final accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import load_config
from ..data import NUM_CLASSES, num_features
from ..errors import CheckpointError
from ..memory import BitWidths, account
from ..models import build_model
from ..tt import TTLinear
from .checkpoint import load_checkpoint
from .config import RunConfig
from .loop import CHECKPOINT, CONFIG, METRICS
from .rank_adapt import resize_cores

__all__ = ["ranks_report", "format_ranks_report"]


def _side(model: Any, cfg: RunConfig, acc: float, epoch: int) -> dict[str, Any]:
    tt = {name: m for name, m in model.named_modules() if isinstance(m, TTLinear)}
    momentum = cfg.train.momentum if cfg.train.optimizer == "sgd" else 0.0
    bits = account(model, cfg.memory.batch_size, cfg.train.optimizer, momentum).bits(BitWidths())
    return {
        "epoch": epoch,
        "ranks": {name: m.ranks for name, m in tt.items()},
        "core_parameters": sum(m.core_parameters() for m in tt.values()),
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_memory_bytes": bits["total"] // 8,
        "test_acc": acc,
    }


def ranks_report(run_dir: str | Path) -> dict[str, Any]:
    """Before/after figures of a run folder (see the module docstring)."""
    run_dir = Path(run_dir)
    if not (run_dir / METRICS).is_file():
        raise CheckpointError(f"{run_dir} holds no {METRICS}; pass the folder of a ttedge training run.")
    cfg = load_config(RunConfig, run_dir / CONFIG)
    epochs = json.loads((run_dir / METRICS).read_text())["epochs"]
    width = num_features(cfg.data.name, cfg.data.pad_width or None)
    start = build_model(cfg.model, width, NUM_CLASSES)
    final = build_model(cfg.model, width, NUM_CLASSES)
    # Checkpoints record core shapes since ranks can shrink; a fixed-rank run keeps the configured ones.
    resize_cores(final, load_checkpoint(run_dir / CHECKPOINT).get("core_shapes", {}))
    first_cut = next((i for i, e in enumerate(epochs) if e.get("pruned")), len(epochs))
    before = epochs[first_cut - 1] if first_cut > 0 else {"epoch": 0, "test_acc": float("nan")}
    return {
        "run": str(run_dir),
        "rank_adaptive": cfg.bayes.enabled,
        "prior": {"name": cfg.bayes.prior, **cfg.bayes.prior_params()} if cfg.bayes.enabled else None,
        "before": _side(start, cfg, before["test_acc"], before["epoch"]),
        "after": _side(final, cfg, epochs[-1]["test_acc"], epochs[-1]["epoch"]),
    }


def format_ranks_report(rep: dict[str, Any]) -> str:
    """The report as Markdown."""
    b, a = rep["before"], rep["after"]
    prior = rep["prior"] or "none (fixed ranks)"
    lines = [f"Run {rep['run']}; rank prior: {prior}.", "",
             "| | before pruning | after pruning |", "|---|---|---|"]
    for name in b["ranks"]:
        lines.append(f"| ranks of {name} | {b['ranks'][name]} | {a['ranks'][name]} |")
    lines += [
        f"| TT core parameters | {b['core_parameters']:,} | {a['core_parameters']:,} |",
        f"| all parameters | {b['parameters']:,} | {a['parameters']:,} |",
        f"| training-step memory (float32) | {b['step_memory_bytes'] / 1024:.1f} KiB | {a['step_memory_bytes'] / 1024:.1f} KiB |",
        f"| test accuracy (epoch) | {100 * b['test_acc']:.2f}% ({b['epoch']}) | {100 * a['test_acc']:.2f}% ({a['epoch']}) |",
    ]
    return "\n".join(lines)
