"""Memory account of one training step: what must be stored, in bits, for a model and its dense twin.

Four kinds of storage live during a step:

- parameters: every learnable entry (TT cores, weights, biases);
- gradients: one entry per parameter;
- optimizer state: Adam keeps two moments per parameter plus one step counter per parameter
  tensor; SGD with momentum keeps one buffer per parameter; plain SGD keeps nothing;
- activations kept for backward: for each TT layer, the state entering each of its contraction
  steps (``ContractionPlan.steps[i].in_elements``, the first being the layer's input; merged cores
  are rebuilt in backward, not kept); for each
  dense layer, its input; for each ReLU, its output (which is the next layer's input, counted once);
  and the log-softmax of the loss, (batch, classes), with the loss's one total-weight scalar.

Every count comes from the objects that compute the step (the contraction plan of each TTLinear,
the parameter shapes), and ``tests/test_memory.py`` checks it against the tensors a real PyTorch
step allocates. Bit widths are per kind, so the same account serves float32 and fixed-point steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from .models import MLP, dense_counterpart
from .tt import TTLinear

__all__ = ["BitWidths", "Account", "account", "compare", "account_for_config", "format_table"]

KINDS = ("parameters", "gradients", "optimizer", "activations")


@dataclass(frozen=True)
class BitWidths:
    """Bits per stored entry of each kind."""

    param: int = 32
    grad: int = 32
    optimizer: int = 32
    activation: int = 32


@dataclass(frozen=True)
class Account:
    """Entry counts of one training step; ``bits()`` turns them into bits at given widths."""

    parameters: int  # learnable entries
    gradients: int  # gradient entries
    optimizer: int  # optimizer-state entries
    activations: int  # entries kept from forward for backward

    def bits(self, widths: BitWidths) -> dict[str, int]:
        """Bits of each kind and their total."""
        out = {
            "parameters": self.parameters * widths.param,
            "gradients": self.gradients * widths.grad,
            "optimizer": self.optimizer * widths.optimizer,
            "activations": self.activations * widths.activation,
        }
        out["total"] = sum(out.values())
        return out


def _optimizer_entries(model: nn.Module, optimizer: str, momentum: float) -> int:
    params = list(model.parameters())
    if optimizer in ("adam", "adamw"):
        return sum(2 * p.numel() + 1 for p in params)  # exp_avg, exp_avg_sq, and a step counter
    if optimizer == "sgd" and momentum > 0:
        return sum(p.numel() for p in params)
    if optimizer == "sgd":
        return 0
    raise ValueError(f"unknown optimizer {optimizer!r}")


def _layer_activations(layer: nn.Module, batch: int) -> int:
    """Entries a layer keeps for backward, its input included."""
    if isinstance(layer, TTLinear):
        return sum(step.in_elements for step in layer.plan(batch).steps)
    if isinstance(layer, nn.Linear):
        return batch * layer.in_features
    raise TypeError(f"no memory model for layer type {type(layer).__name__}")


def account(model: nn.Module, batch: int, optimizer: str = "adam", momentum: float = 0.0) -> Account:
    """Entries stored during one training step of ``model`` (an MLP) at ``batch`` samples."""
    if not isinstance(model, MLP):
        raise TypeError(f"the memory account covers ttedge MLP models, got {type(model).__name__}")
    params = sum(p.numel() for p in model.parameters())
    acts = sum(_layer_activations(layer, batch) for layer in model.layers)
    acts += batch * model.num_classes + 1  # the loss keeps its log-softmax and a total-weight scalar
    return Account(params, params, _optimizer_entries(model, optimizer, momentum), acts)


def compare(model: nn.Module, batch: int, widths: BitWidths, optimizer: str = "adam",
            momentum: float = 0.0, dense_widths: BitWidths | None = None) -> dict[str, Any]:
    """The model's account beside its full-size dense counterpart's (by default in float32)."""
    mine = account(model, batch, optimizer, momentum).bits(widths)
    dense = account(dense_counterpart(model), batch, optimizer, momentum).bits(dense_widths or BitWidths())
    return {
        "batch_size": batch,
        "optimizer": optimizer,
        "bit_widths": widths.__dict__,
        "rows": [
            {"kind": kind, "model_bits": mine[kind], "dense_bits": dense[kind],
             "ratio": dense[kind] / mine[kind] if mine[kind] else None}
            for kind in (*KINDS, "total")
        ],
    }


def account_for_config(cfg: Any) -> dict[str, Any]:
    """The comparison for the model, optimizer and ``[memory]`` section of a RunConfig."""
    from .data import NUM_CLASSES, num_features
    from .models import build_model

    width = num_features(cfg.data.name, cfg.data.pad_width or None)
    model = build_model(cfg.model, width, NUM_CLASSES, seed=cfg.train.seed)
    m = cfg.memory
    widths = BitWidths(m.param_bits, m.grad_bits, m.optimizer_bits, m.activation_bits)
    momentum = cfg.train.momentum if cfg.train.optimizer == "sgd" else 0.0
    return compare(model, m.batch_size, widths, cfg.train.optimizer, momentum)


def _human(bits: int) -> str:
    n = bits / 8
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def format_table(table: dict[str, Any]) -> str:
    """The comparison as a Markdown table."""
    lines = [
        f"Training-step memory at batch {table['batch_size']}, optimizer {table['optimizer']}, "
        f"bits {table['bit_widths']}; dense counterpart in float32.",
        "",
        "| kind | this model | dense counterpart | dense / model |",
        "|---|---:|---:|---:|",
    ]
    for row in table["rows"]:
        ratio = f"{row['ratio']:.1f}x" if row["ratio"] else "-"
        lines.append(f"| {row['kind']} | {_human(row['model_bits'])} | {_human(row['dense_bits'])} | {ratio} |")
    return "\n".join(lines)
