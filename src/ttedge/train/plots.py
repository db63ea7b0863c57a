"""Plots written next to a run's results (PNG, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: runs happen on headless machines
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_curves", "plot_memory", "plot_ranks"]


def plot_curves(epochs: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str = "") -> None:
    """Loss and accuracy per epoch, train and test side by side."""
    x = [e["epoch"] for e in epochs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(x, [e["train_loss"] for e in epochs], "o-", label="train")
    ax_loss.plot(x, [e["test_loss"] for e in epochs], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log", title="loss")
    ax_acc.plot(x, [100 * e["train_acc"] for e in epochs], "o-", label="train")
    ax_acc.plot(x, [100 * e["test_acc"] for e in epochs], "s-", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ranks(epochs: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str = "") -> None:
    """Sorted lambda spectrum of every bond at the last epoch, and each bond's rank over epochs."""
    x = [e["epoch"] for e in epochs]
    last = epochs[-1]
    fig, (ax_lam, ax_rank) = plt.subplots(1, 2, figsize=(11, 4))
    for layer, bonds in last["lambdas"].items():
        for k, lams in enumerate(bonds):
            ax_lam.plot(range(1, len(lams) + 1), lams, "o-", ms=3, label=f"{layer} bond {k + 1}")
    ax_lam.set(xlabel="rank index (sorted)", ylabel="lambda", yscale="log", title=f"lambda spectrum, epoch {last['epoch']}")
    for layer in last["ranks"]:
        for k in range(len(last["ranks"][layer])):
            ax_rank.plot(x, [e["ranks"][layer][k] for e in epochs], "o-", ms=3, label=f"{layer} bond {k + 1}")
    ax_rank.set(xlabel="epoch", ylabel="rank", title="ranks over training")
    for ax in (ax_lam, ax_rank):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


_KINDS = (("parameters", ("cores", "biases")), ("gradients", ("gradients",)), ("optimizer state", ("optimizer",)),
          ("activations", ("activations",)), ("errors", ("errors",)), ("accumulators", ("accumulators",)))


def plot_memory(table: dict[str, Any], path: str | os.PathLike[str], title: str = "") -> None:
    """A fixed-point step's memory (``ttedge.memory.compare_fixed``) beside the dense fp32 baseline:
    per kind on a log scale (left), and the fixed-point step's own breakdown in KiB (right)."""
    fixed, dense = table["fixed_bits"], table["dense_bits"]
    kib = 8 * 1024
    names = [name for name, _ in _KINDS]
    mine = [sum(fixed[k] for k in keys) / kib for _, keys in _KINDS]
    theirs = [dense.get({"optimizer state": "optimizer"}.get(name, name), 0) / kib for name in names]
    fig, (ax_log, ax_bar) = plt.subplots(1, 2, figsize=(14, 4.5))
    ys = range(len(names))
    shown = [y for y in ys if theirs[y] > 0]  # the float account has no errors or accumulators row
    ax_log.barh([y + 0.2 for y in shown], [theirs[y] for y in shown], height=0.4, label=table["baseline"])
    ax_log.barh([y - 0.2 for y in ys], mine, height=0.4, label="ttedge fixed point")
    ax_log.set(yticks=list(ys), yticklabels=names, xscale="log", xlabel="KiB (log scale)",
               title=f"parameters {table['parameter_ratio']:.0f}x, whole step {table['step_ratio']:.0f}x smaller")
    ax_log.invert_yaxis()
    ax_log.legend(loc="lower right", fontsize=8)
    left = 0.0
    for name, size in zip(names, mine):
        ax_bar.barh([0], [size], left=left, label=f"{name} {size:.1f} KiB")
        left += size
    shared = fixed["total_shared"] / kib
    ax_bar.barh([1], [shared], color="grey", label=f"with buffer reuse {shared:.1f} KiB")
    ax_bar.set(yticks=[0, 1], yticklabels=["every buffer whole", "reuse by lifetime"], xlabel="KiB",
               title=f"ttedge training step at batch {table['batch_size']}")
    ax_bar.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title or "training-step memory")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
