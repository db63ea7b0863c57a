"""Memory account of one training step: what must be stored, in bits, for a model and its dense twin.

Four kinds of storage live during a step:

- parameters: every learnable entry (TT cores, weights, biases);
- gradients: one entry per parameter;
- optimizer state: Adam keeps two moments per parameter plus one step counter per parameter
  tensor; SGD with momentum keeps one buffer per parameter; plain SGD keeps nothing;
- activations kept for backward: for each TT layer, the state entering each of its contraction
  steps, the first being the layer's input, and the merged cores of its plan
  (``ContractionPlan.saved_elements``); for each
  dense layer, its input; for each ReLU, its output (which is the next layer's input, counted once);
  and the log-softmax of the loss, (batch, classes), with the loss's one total-weight scalar.

Every count comes from the objects that compute the step (the contraction plan of each TTLinear,
the parameter shapes), and ``tests/test_memory.py`` checks it against the tensors a real PyTorch
step allocates. Bit widths are per kind, so the same account serves float32 and fixed-point steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from .models import MLP, dense_counterpart
from .tt import TTLinear

if TYPE_CHECKING:
    from .fixed import Program

__all__ = [
    "BitWidths", "Account", "account", "compare", "account_for_config", "format_table",
    "FIXED_KINDS", "fixed_step_bits", "compare_fixed", "format_fixed_table",
]

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
        return layer.plan(batch).saved_elements
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
    """The comparison for the model, optimizer and ``[memory]`` section of a RunConfig; with
    ``[fixed]`` enabled, the fixed-point program's account (:func:`compare_fixed`)."""
    from .data import NUM_CLASSES, num_features
    from .models import build_model

    if cfg.fixed.enabled:
        return compare_fixed(cfg)
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


# ---- the fixed-point training step ------------------------------------------------------------

FIXED_KINDS = ("cores", "biases", "optimizer", "activations", "errors", "gradients", "accumulators")


def fixed_step_bits(program: Program) -> dict[str, int]:
    """Bits of a fixed-point training step, per kind, from the program's own buffer table.

    cores, biases, optimizer (momentum buffers, Adam's two moments), gradients and errors are the
    buffers of those kinds; with master copies, cores are the masters at the master width, and the
    narrow compute copies count nothing (derived on the fly at each read, never stored); activations are the states kept for backward plus the input batch and its labels;
    accumulators are the largest contraction's exact sums (``Program.accumulator_bits``). Every
    buffer counts whole (no sharing between buffers whose lifetimes do not overlap), so this is an
    upper bound on what a scheduler that reuses storage needs.
    """
    by_kind = program.bits_by_kind()
    out = {
        "cores": by_kind.get("core", 0),
        "biases": by_kind.get("bias", 0),
        "optimizer": by_kind.get("optimizer", 0) + by_kind.get("lambda", 0),
        "activations": by_kind.get("activation", 0) + by_kind.get("input", 0) + by_kind.get("label", 0),
        "errors": by_kind.get("error", 0),
        "gradients": by_kind.get("gradient", 0),
        "accumulators": program.accumulator_bits,
    }
    out["total"] = sum(out.values())
    # With storage reused between working buffers whose lifetimes do not overlap (Program.lifetimes):
    out["total_shared"] = out["cores"] + out["biases"] + out["optimizer"] + program.peak_working_bits() + out["accumulators"]
    return out


# The full-size baseline on MNIST: the paper's dense 784-512-10 network (configs/mnist_dense.toml),
# float32, Adam. Other data sets compare with the dense counterpart of the config's own network.
BASELINE = "dense 784-512-10, float32, Adam"


def compare_fixed(cfg: Any) -> dict[str, Any]:
    """The fixed-point program of a RunConfig (``[fixed]``, model, ``memory.batch_size``) beside
    float32 Adam training of the full-size dense network at the same batch: on MNIST the dense
    784-512-10 net of the paper, otherwise the config's network with dense layers.

    ``parameter_ratio`` compares parameters (dense weights and biases vs cores and biases);
    ``step_ratio`` the whole step (parameters, gradients, optimizer state, activations; the
    fixed-point side also counts its errors and accumulators, the float account does not).
    """
    from .data import NUM_CLASSES, num_features
    from .models import build_model
    from .train.config import ModelConfig

    batch = cfg.memory.batch_size
    width = num_features(cfg.data.name, cfg.data.pad_width or None)
    fixed = fixed_step_bits(cfg.build_fixed(batch)[1])
    if cfg.data.name == "mnist":
        dense_model, baseline = build_model(ModelConfig(layer="dense", hidden=[512]), 784, NUM_CLASSES, seed=0), BASELINE
    else:
        dense_model = build_model(ModelConfig(layer="dense", hidden=list(cfg.model.hidden)), width, NUM_CLASSES, seed=0)
        baseline = f"dense {'-'.join(str(n) for n in (width, *cfg.model.hidden, NUM_CLASSES))}, float32, Adam"
    dense = account(dense_model, batch, "adam").bits(BitWidths())
    fixed_params = fixed["cores"] + fixed["biases"]
    return {
        "batch_size": batch,
        "mode": "fixed point",
        "precision": cfg.fixed.precision_strings(),
        "baseline": baseline,
        "fixed_bits": fixed,
        "dense_bits": dense,
        "parameter_ratio": dense["parameters"] / fixed_params,
        "step_ratio": dense["total"] / fixed["total"],
        "step_ratio_shared": dense["total"] / fixed["total_shared"],
    }


def format_fixed_table(table: dict[str, Any]) -> str:
    """:func:`compare_fixed` as a Markdown table."""
    f, d = table["fixed_bits"], table["dense_bits"]
    p = table["precision"]
    rows = [
        ("parameters: cores", f["cores"], None),
        ("parameters: biases", f["biases"], None),
        ("parameters (cores + biases)", f["cores"] + f["biases"], d["parameters"]),
        ("gradients", f["gradients"], d["gradients"]),
        ("optimizer state", f["optimizer"], d["optimizer"]),
        ("activations kept for backward (incl. input, labels)", f["activations"], d["activations"]),
        ("errors", f["errors"], None),
        ("accumulators (largest contraction)", f["accumulators"], None),
        ("total", f["total"], d["total"]),
        ("total, working buffers sharing storage by lifetime", f["total_shared"], d["total"]),
    ]
    lines = [
        f"Fixed-point training-step memory at batch {table['batch_size']} (cores {p['core']}"
        + (f" read from an {p['master']} master copy" if p.get("master") else "")
        + f", biases {p['bias']}, "
        f"activations {p['activation']}, errors {p['error']}, gradients {p['gradient']}) "
        f"against {table['baseline']}.",
        "",
        "| kind | fixed point (bits) | fixed point | dense fp32 (bits) | dense fp32 | dense / fixed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, mine, theirs in rows:
        ratio = f"{theirs / mine:.1f}x" if theirs is not None and mine else "-"
        dense_bits = "-" if theirs is None else f"{theirs:,}"
        dense_human = "-" if theirs is None else _human(theirs)
        lines.append(f"| {kind} | {mine:,} | {_human(mine)} | {dense_bits} | {dense_human} | {ratio} |")
    lines += ["", f"Parameter-only ratio {table['parameter_ratio']:.1f}x; whole-step ratio {table['step_ratio']:.1f}x "
              "(the fixed-point side counts every buffer whole, errors and accumulators included), "
              f"{table['step_ratio_shared']:.1f}x when activations, errors and gradients share storage by lifetime."]
    return "\n".join(lines)
