"""Plots written next to a run's results (PNG, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: runs happen on headless machines
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_curves"]


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
