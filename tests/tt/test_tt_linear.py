"""TTLinear behaves like nn.Linear."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ttedge.errors import ShapeError
from ttedge.tt import TTLinear, plan_contraction


def test_reference_layer_sizes() -> None:
    # METHOD.md section 1: 14,272 core parameters with fc2 outputs padded to modes [1, 16].
    fc1 = TTLinear([7, 4, 2, 16], [4, 4, 2, 16], 16)
    fc2 = TTLinear([32, 16], [1, 16], 16)
    assert fc1.core_parameters() + fc2.core_parameters() == 14_272
    assert TTLinear([32, 16], [2, 5], 16).core_parameters() + fc1.core_parameters() == 11_968
    assert fc1.compression_ratio() == pytest.approx(896 * 512 / 9664)


def test_forward_matches_dense_weight_and_bias() -> None:
    layer = TTLinear([3, 4], [2, 5], 3, generator=torch.Generator().manual_seed(1))
    x = torch.randn(2, 7, 12)
    torch.testing.assert_close(layer(x), x @ layer.weight_dense().T + layer.bias, rtol=1e-5, atol=1e-6)
    assert layer(x).shape == (2, 7, 10)


def test_state_dict_round_trip_and_optimizer() -> None:
    a = TTLinear([2, 3], [2, 2], 2)
    b = TTLinear([2, 3], [2, 2], 2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 6)
    torch.testing.assert_close(a(x), b(x))
    opt = torch.optim.SGD(b.parameters(), lr=0.1)
    before = b(x).detach()
    b(x).pow(2).sum().backward()
    opt.step()
    assert not torch.equal(before, b(x).detach())


def test_from_linear_is_exact_at_full_rank() -> None:
    lin = nn.Linear(12, 6)
    layer = TTLinear.from_linear(lin, [3, 4], [2, 3])
    x = torch.randn(5, 12)
    torch.testing.assert_close(layer(x), lin(x), rtol=1e-5, atol=1e-5)


def test_uniform_rank_is_capped_per_bond() -> None:
    assert TTLinear([2, 2, 2], [2, 2, 2], 100).ranks == [4, 4]
    assert TTLinear([2, 2, 2, 2], [2, 2, 2, 2], 100).ranks == [4, 16, 4]


def test_extra_repr_names_the_shape() -> None:
    text = repr(TTLinear([2, 3], [2, 2], 2, order="rtl"))
    assert "in_features=6, out_features=4, in_modes=[2, 3], out_modes=[2, 2], ranks=[2], bias=True, order=rtl" in text


def test_bad_ranks_error() -> None:
    with pytest.raises(ShapeError, match=r"^ranks must be integers >= 1, got 0\.$"):
        TTLinear([2, 2], [2, 2], 0)


def test_auto_plan_follows_the_batch() -> None:
    layer = TTLinear([7, 4, 2, 16], [4, 4, 2, 16], 16)  # MNIST fc1 (METHOD.md)
    assert layer.plan(1).describe() == "rtl" and layer.plan(64).describe() == "ltr 1-2 3-4"
    assert layer.macs(64) == layer.plan(64).macs < plan_contraction([7, 4, 2, 16], [4, 4, 2, 16], [16] * 3, 64, "ltr").macs
    x = torch.randn(64, 896)
    torch.testing.assert_close(layer(x), x @ layer.weight_dense().T + layer.bias, rtol=1e-4, atol=1e-5)
