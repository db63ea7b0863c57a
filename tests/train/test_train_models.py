"""Networks built from model configs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ttedge.errors import ConfigError
from ttedge.models import build_model, dense_counterpart
from ttedge.train import ModelConfig
from ttedge.tt import TTLinear


def test_reference_net_shapes_and_padded_logits() -> None:
    cfg = ModelConfig(in_modes=[[7, 4, 2, 16], [32, 16]], out_modes=[[4, 4, 2, 16], [1, 16]], ranks=[[16, 16, 16], [16]])
    model = build_model(cfg, 896, 10)
    assert sum(layer.core_parameters() for layer in model.layers) == 14_272
    assert model(torch.zeros(3, 896)).shape == (3, 10)
    dense = dense_counterpart(model)
    assert [type(m) for m in dense.layers] == [nn.Linear, nn.Linear]
    assert sum(p.numel() for p in dense.parameters()) == 896 * 512 + 512 + 512 * 16 + 16


def test_dense_baseline_has_407050_parameters() -> None:
    model = build_model(ModelConfig(layer="dense", hidden=[512]), 784, 10)
    assert sum(p.numel() for p in model.parameters()) == 407_050


def test_automatic_modes() -> None:
    model = build_model(ModelConfig(hidden=[256], cores=3, rank=4), 64, 10)
    assert [type(m) for m in model.layers] == [TTLinear, TTLinear]
    assert model.layers[0].in_modes == [4, 4, 4] and model.layers[1].out_features >= 10


def test_same_seed_same_weights() -> None:
    cfg = ModelConfig(hidden=[16], cores=2, rank=3)
    a, b = build_model(cfg, 16, 10, seed=5), build_model(cfg, 16, 10, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (ModelConfig(hidden=[16], in_modes=[[4, 5], [4, 4]], out_modes=[[4, 4], [2, 5]]),
         r"^model\.in_modes\[0\] = \[4, 5\] multiplies to 20 but layer 0 receives 16 features; choose modes whose product is 16 \(or set data\.pad_width\)\.$"),
        (ModelConfig(hidden=[16], in_modes=[[4, 4], [4, 4]], out_modes=[[4, 4], [2, 4]]),
         r"^model\.out_modes\[1\] = \[2, 4\] multiplies to 8 but layer 1 must produce 10 outputs; choose modes whose product is 10 or more\.$"),
        (ModelConfig(hidden=[16], in_modes=[[4, 4]]),
         r"^model\.in_modes lists 1 layers but the model has 2 \(1 hidden \+ output\); give one entry per layer or leave it empty\.$"),
        (ModelConfig(hidden=[13], cores=2),
         r"^layer 0: 13 cannot be split into 2 modes greater than 1; use fewer modes or pass pad=True\.$"),
        (ModelConfig(hidden=[16], ranks=[[0], [2]]), r"^layer 0: ranks must be integers >= 1, got \[0\]\.$"),
    ],
)
def test_bad_model_configs(cfg: ModelConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(cfg, 16, 10)
