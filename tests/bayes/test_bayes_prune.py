"""Physical truncation equals zeroing the pruned slices, and keeps optimizer state aligned."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ttedge.bayes import GammaPrior, LogUniformPrior, attach, prune_model, slice_stats, truncate
from ttedge.errors import ConfigError, ShapeError
from ttedge.tt import TTLinear

KEEP0 = torch.tensor([True, False, True, False])  # bond 0 of the first layer, rank 4 -> 2
KEEP1 = [0, 2, 3]  # bond 1 of the first layer, rank 4 -> 3


def make_model(seed: int = 0) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    return nn.Sequential(TTLinear([2, 3, 2], [2, 2, 3], 4, dtype=torch.float64, generator=g), nn.ReLU(),
                         TTLinear([4, 3], [2, 3], 3, dtype=torch.float64, generator=g))


def masked(model: nn.Sequential) -> nn.Sequential:
    """A copy with the slices that truncation removes set to zero."""
    out = copy.deepcopy(model)
    G = out[0].cores
    with torch.no_grad():
        G[0][..., ~KEEP0] = 0
        G[1][~KEEP0] = 0
        drop = torch.tensor([1])
        G[1][..., drop] = 0
        G[2][drop] = 0
    return out


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(5, 12, generator=g, dtype=torch.float64), torch.randn(5, 6, generator=g, dtype=torch.float64)


def loss_fn(model: nn.Module, bayes, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return ((model(x) - y) ** 2).mean() + bayes.penalty(model, weight=0.1)


def cut(model: nn.Sequential, optimizer=None, bayes=None) -> None:  # type: ignore[no-untyped-def]
    rp = bayes["0"] if bayes is not None else None
    truncate(model[0], 0, KEEP0, optimizer, rp)
    truncate(model[0], 1, KEEP1, optimizer, rp)


def test_truncated_layer_equals_masked_layer() -> None:
    model = make_model()
    reference = masked(model)
    cut(model)
    assert model[0].ranks == [2, 3]
    assert [tuple(c.shape) for c in model[0].cores] == [(1, 2, 2, 2), (2, 2, 3, 3), (3, 3, 2, 1)]
    x, _ = batch()
    torch.testing.assert_close(model(x), reference(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model[0].weight_dense(), reference[0].weight_dense(), rtol=1e-12, atol=1e-12)
    assert model[0].core_parameters() < reference[0].core_parameters()


def test_sgd_step_after_truncation_matches_the_masked_model() -> None:
    model = make_model()
    bayes = attach(model, GammaPrior(), init_lambda=0.7)
    bayes.em_update(model, 0.5)
    reference, ref_bayes = masked(model), copy.deepcopy(bayes)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    cut(model, opt, bayes)
    assert bayes.ranks()["0"] == [2, 3]
    torch.testing.assert_close(bayes["0"].lam_0, ref_bayes["0"].lam_0[KEEP0], rtol=0, atol=0)
    torch.testing.assert_close(bayes["0"].lam_1, ref_bayes["0"].lam_1[KEEP1], rtol=0, atol=0)
    x, y = batch()
    # the penalty of the removed slices is zero in the masked model, so the losses agree as well
    torch.testing.assert_close(loss_fn(model, bayes, x, y), loss_fn(reference, ref_bayes, x, y))
    for m, o, b in ((model, opt, bayes), (reference, ref_opt, ref_bayes)):
        o.zero_grad()
        loss_fn(m, b, x, y).backward()
        o.step()
    G, R = model[0].cores, reference[0].cores
    k1 = torch.tensor(KEEP1)
    torch.testing.assert_close(G[0], R[0][..., KEEP0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(G[1], R[1][KEEP0][..., k1], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(G[2], R[2][k1], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(model(x), reference(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make_opt", [
    lambda ps: torch.optim.Adam(ps, lr=1e-2),
    lambda ps: torch.optim.AdamW(ps, lr=1e-2, amsgrad=True),
    lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9),
])
def test_optimizer_state_is_sliced_with_the_cores(make_opt) -> None:  # type: ignore[no-untyped-def]
    model = make_model()
    bayes = attach(model, GammaPrior())
    opt = make_opt(model.parameters())
    x, y = batch()
    for _ in range(3):
        opt.zero_grad()
        loss_fn(model, bayes, x, y).backward()
        opt.step()
        bayes.em_update(model, 0.5)
    reference, ref_opt = copy.deepcopy((model, opt))  # deepcopy keeps the parameter -> state links
    with torch.no_grad():  # zero the pruned slices of the copy, as in ``masked``
        reference[0].cores[0][..., ~KEEP0] = 0
        reference[0].cores[1][~KEEP0] = 0
        reference[0].cores[1][..., 1] = 0
        reference[0].cores[2][1] = 0
    old = list(model[0].cores)
    before = {i: {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in opt.state[p].items()}
              for i, p in enumerate(old)}
    cut(model, opt, bayes)
    new = list(model[0].cores)
    held = [p for group in opt.param_groups for p in group["params"]]
    assert all(any(p is q for q in held) for p in new)
    assert not any(p is q for p in old for q in held)
    assert not any(p in opt.state for p in old)
    k1 = torch.tensor(KEEP1)
    slices = {0: lambda t: t[..., KEEP0], 1: lambda t: t[KEEP0][..., k1], 2: lambda t: t[k1]}
    for i, p in enumerate(new):
        state = opt.state[p]
        assert set(state) == set(before[i])
        for key, value in before[i].items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                torch.testing.assert_close(state[key], slices[i](value), rtol=0, atol=0)
            else:
                assert state[key] == value  # Adam's step count is kept
    fresh = make_opt(model.parameters())  # the swapped optimizer still saves and loads by position
    fresh.load_state_dict(opt.state_dict())
    torch.testing.assert_close(fresh.state[new[1]], opt.state[new[1]], rtol=0, atol=0)
    # a step on each: the truncated model's entries follow the masked model's kept entries exactly
    # (both optimizers are elementwise, and the kept entries have equal gradients and equal state)
    ref_bayes = copy.deepcopy(bayes)
    opt.zero_grad()
    loss_fn(model, bayes, x, y).backward()
    opt.step()
    ref_opt.zero_grad()
    ((reference(x) - y) ** 2).mean().add(_masked_penalty(reference, ref_bayes)).backward()
    ref_opt.step()
    for i in range(3):
        torch.testing.assert_close(model[0].cores[i], slices[i](reference[0].cores[i]), rtol=1e-12, atol=1e-14)
    for a, b in zip(model[2].parameters(), reference[2].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def _masked_penalty(reference: nn.Sequential, truncated_bayes) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The penalty of the masked model with the truncated lambdas (removed slices are zero anyway)."""
    Ms, _ = slice_stats(reference[0])
    rp = truncated_bayes["0"]
    k1 = torch.tensor(KEEP1)
    total = (Ms[0][KEEP0] / (2 * rp.lam_0)).sum() + (Ms[1][k1] / (2 * rp.lam_1)).sum()
    return 0.1 * (total + truncated_bayes["2"].penalty(reference[2]))


def test_gradients_are_sliced_too() -> None:
    model = make_model()
    x, y = batch()
    ((model(x) - y) ** 2).sum().backward()
    grad = model[0].cores[0].grad.clone()
    truncate(model[0], 0, KEEP0)
    torch.testing.assert_close(model[0].cores[0].grad, grad[..., KEEP0], rtol=0, atol=0)


def test_prune_model_uses_thresholds_and_keeps_one_index() -> None:
    model = make_model()
    bayes = attach(model, LogUniformPrior())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.no_grad():
        bayes["0"].lam_0.copy_(torch.tensor([1.0, 1e-6, 0.5, 1e-5]))
        bayes["0"].lam_1.copy_(torch.tensor([1e-7, 1e-6, 2e-6, 1e-8]))  # all below: the largest stays
        bayes["2"].lam_0.copy_(torch.tensor([1.0, 1.0, 1.0]))
    x, _ = batch()
    reference = copy.deepcopy(model)
    with torch.no_grad():
        reference[0].cores[0][..., [1, 3]] = 0
        reference[0].cores[1][[1, 3]] = 0
        reference[0].cores[1][..., [0, 1, 3]] = 0
        reference[0].cores[2][[0, 1, 3]] = 0
    report = prune_model(model, bayes, threshold=1e-4, optimizer=opt)
    assert report.removed == {"0": [[1, 3], [0, 1, 3]], "2": [[]]}
    assert report.ranks_before == {"0": [4, 4], "2": [3]}
    assert report.ranks_after == {"0": [2, 1], "2": [3]} == bayes.ranks()
    assert report.num_removed == 5
    assert model[0].ranks == [2, 1]
    torch.testing.assert_close(model(x), reference(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bayes["0"].lam_1, torch.tensor([2e-6], dtype=torch.float64))


def test_prune_model_with_the_gamma_threshold() -> None:
    model = make_model()
    bayes = attach(model, GammaPrior(1.0, 0.1))
    thr = bayes["2"].thresholds(model[2])[0]  # beta / (D/2 + alpha + 1)
    with torch.no_grad():
        bayes["0"].lam_0.fill_(1.0)
        bayes["0"].lam_1.fill_(1.0)
        bayes["2"].lam_0.copy_(torch.tensor([1.0, 1.5 * thr, 2.5 * thr]))
    report = prune_model(model, bayes, factor=2.0)
    assert report.removed == {"0": [[], []], "2": [[1]]}


def test_truncate_errors() -> None:
    model = make_model()
    layer = model[0]
    with pytest.raises(ShapeError, match=r"^bond 2 does not exist in a layer with ranks \[4, 4\]; use a bond from 0 to 1\.$"):
        truncate(layer, 2, [0])
    with pytest.raises(ShapeError, match=r"^the keep mask of bond 0 has shape \(3,\) but the bond has rank 4; pass a mask of shape \(4,\)\.$"):
        truncate(layer, 0, torch.tensor([True, False, True]))
    with pytest.raises(ShapeError, match=r"^keep indices \[0, 0\] of bond 1 must be distinct and lie in \[0, 4\); fix the index list\.$"):
        truncate(layer, 1, [0, 0])
    with pytest.raises(ShapeError, match=r"^keep indices \[4\] of bond 1 must be distinct and lie in \[0, 4\); fix the index list\.$"):
        truncate(layer, 1, [4])
    with pytest.raises(ShapeError, match=r"^keep removes every rank index of bond 0; keep at least one\.$"):
        truncate(layer, 0, torch.zeros(4, dtype=torch.bool))
    with pytest.raises(ShapeError, match=r"^keep must be a bool mask or a list of int rank indices, got \[0\.5\]; pass one of those\.$"):
        truncate(layer, 0, [0.5])  # type: ignore[list-item]
    other = torch.optim.SGD(model[2].parameters(), lr=0.1)
    with pytest.raises(ConfigError, match=r"^the optimizer does not hold the TT cores being truncated; "
                                          r"pass the optimizer that trains this model\.$"):
        truncate(layer, 0, [0, 1], optimizer=other)
    assert layer.ranks == [4, 4]  # nothing changed by the failed calls
    with pytest.raises(ShapeError, match=r"^bond 0 does not exist in a layer with one core; only layers with ranks can be truncated\.$"):
        truncate(TTLinear([4], [4], 1), 0, [0])
