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
