"""Networks built from a ModelConfig: an MLP of TTLinear or nn.Linear layers with ReLU between."""

from __future__ import annotations

import torch
from torch import nn

from .errors import ConfigError
from .train.config import ModelConfig
from .tt import TTLinear, factorize, prod
from .errors import ShapeError

__all__ = ["MLP", "build_model", "dense_counterpart"]


class MLP(nn.Module):
    """Linear layers with ReLU between them; logits beyond ``num_classes`` are dropped.

    A TT output layer may produce more outputs than there are classes (METHOD.md pads 10 classes to
    modes [1, 16]); only the first ``num_classes`` logits reach the loss.
    """

    def __init__(self, layers: list[nn.Module], num_classes: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in_features) -> (B, num_classes)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x[:, : self.num_classes]


def _tt_layer_shape(cfg: ModelConfig, i: int, fan_in: int, width: int, last: bool) -> tuple[list[int], list[int], list[int] | int]:
    """Modes and ranks of TT layer ``i`` mapping ``fan_in`` features to ``width`` outputs."""
    n_layers = len(cfg.hidden) + 1
    for key in ("in_modes", "out_modes", "ranks"):
        given = getattr(cfg, key)
        if given and len(given) != n_layers:
            raise ConfigError(
                f"model.{key} lists {len(given)} layers but the model has {n_layers} "
                f"({len(cfg.hidden)} hidden + output); give one entry per layer or leave it empty."
            )
    try:
        in_modes = cfg.in_modes[i] if cfg.in_modes else factorize(fan_in, cfg.cores)
        out_modes = cfg.out_modes[i] if cfg.out_modes else factorize(width, cfg.cores, pad=last)
    except ShapeError as exc:
        raise ConfigError(f"layer {i}: {exc}") from None
    if prod(in_modes) != fan_in:
        raise ConfigError(
            f"model.in_modes[{i}] = {in_modes} multiplies to {prod(in_modes)} but layer {i} receives "
            f"{fan_in} features; choose modes whose product is {fan_in} (or set data.pad_width)."
        )
    if prod(out_modes) < width or (not last and prod(out_modes) != width):
        raise ConfigError(
            f"model.out_modes[{i}] = {out_modes} multiplies to {prod(out_modes)} but layer {i} must "
            f"produce {width} outputs; choose modes whose product is {width}"
            + (" or more." if last else ".")
        )
    ranks = cfg.ranks[i] if cfg.ranks else cfg.rank
    return in_modes, out_modes, ranks


def build_model(cfg: ModelConfig, in_features: int, num_classes: int, seed: int = 0) -> MLP:
    """The network ``cfg`` describes, for ``in_features`` inputs, initialized from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # nn.Linear draws from the global generator
    widths = [*cfg.hidden, num_classes]
    layers: list[nn.Module] = []
    fan_in = in_features
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        if cfg.layer == "dense":
            layers.append(nn.Linear(fan_in, width))
            fan_in = width
            continue
        in_modes, out_modes, ranks = _tt_layer_shape(cfg, i, fan_in, width, last)
        try:
            layer = TTLinear(in_modes, out_modes, ranks, order=cfg.order, generator=gen)
        except ShapeError as exc:
            raise ConfigError(f"layer {i}: {exc}") from None
        layers.append(layer)
        fan_in = layer.out_features
    return MLP(layers, num_classes)


def dense_counterpart(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s structure with every TTLinear replaced by an nn.Linear of its shape."""
    if isinstance(model, TTLinear):
        return nn.Linear(model.in_features, model.out_features, bias=model.bias is not None)
    if isinstance(model, MLP):
        return MLP([dense_counterpart(l) for l in model.layers], model.num_classes)
    return model
