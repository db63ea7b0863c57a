"""The memory account against the tensors a real PyTorch training step allocates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ttedge.memory import Account, BitWidths, account, compare
from ttedge.models import build_model
from ttedge.train import ModelConfig

MODELS = {
    "tt-rtl": ModelConfig(hidden=[16], in_modes=[[4, 3, 2], [4, 4]], out_modes=[[2, 4, 2], [3, 4]], ranks=[[3, 4], [2]], order="rtl"),
    "tt-ltr": ModelConfig(hidden=[16], in_modes=[[4, 3, 2], [4, 4]], out_modes=[[2, 4, 2], [3, 4]], ranks=[[3, 4], [2]], order="ltr"),
    # "auto": rtl without merges at these sizes (per-call overhead outweighs their few MACs) ...
    "tt-auto": ModelConfig(hidden=[16], in_modes=[[2, 2, 2, 3], [4, 4]], out_modes=[[2, 2, 2, 2], [3, 4]], ranks=[[4, 4, 4], [2]], order="auto"),
    # ... and here, whose middle layer merges cores 1-2 and 3-4 at batch 5 (not at batch 1) and keeps
    # the merged cores for backward.
    "tt-merged": ModelConfig(hidden=[256, 256], in_modes=[[2, 3, 2, 2], [4, 4, 4, 4], [16, 16]],
                             out_modes=[[4, 4, 4, 4], [4, 4, 4, 4], [2, 5]], ranks=[[4, 4, 4], [16, 16, 16], [4]], order="auto"),
    "dense": ModelConfig(layer="dense", hidden=[16, 8]),
}


def _measure(model: nn.Module, batch: int, optimizer: str, momentum: float) -> Account:
    """Entries of every kind that one real training step holds."""
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        # Parameters are counted as parameters; integer targets are the data's labels, not activations.
        if storage.data_ptr() not in param_ptrs and t.is_floating_point():
            saved[storage.data_ptr()] = storage.nbytes() // t.element_size()
        return t

    x = torch.randn(batch, 24)
    y = torch.randint(0, 10, (batch,))
    opt = (torch.optim.Adam(model.parameters(), lr=1e-3) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=1e-3, momentum=momentum))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    state = [t for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
    return Account(
        parameters=sum(p.numel() for p in model.parameters()),
        gradients=sum(p.grad.numel() for p in model.parameters()),
        optimizer=sum(t.numel() for t in state),
        activations=sum(saved.values()),
    )


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize(("optimizer", "momentum"), [("adam", 0.0), ("sgd", 0.9), ("sgd", 0.0)])
def test_account_equals_a_real_step(name: str, batch: int, optimizer: str, momentum: float) -> None:
    model = build_model(MODELS[name], 24, 10)
    if name == "tt-merged":
        assert bool(model.layers[1].plan(batch).merges) == (batch == 5)
    assert account(model, batch, optimizer, momentum) == _measure(model, batch, optimizer, momentum)


def test_bits_and_comparison() -> None:
    model = build_model(MODELS["tt-ltr"], 24, 10)
    acc = account(model, 2, "sgd", 0.0)
    bits = acc.bits(BitWidths(param=4, grad=16, optimizer=32, activation=16))
    assert bits["parameters"] == 4 * acc.parameters and bits["activations"] == 16 * acc.activations
    assert bits["total"] == bits["parameters"] + bits["gradients"] + bits["activations"]
    rows = {r["kind"]: r for r in compare(model, 2, BitWidths(param=4), "sgd")["rows"]}
    dense_params = 24 * 16 + 16 + 16 * 12 + 12
    assert rows["parameters"]["dense_bits"] == 32 * dense_params
    assert rows["parameters"]["ratio"] == pytest.approx(32 * dense_params / (4 * acc.parameters))
    assert rows["optimizer"]["ratio"] is None  # plain SGD stores nothing on either side
