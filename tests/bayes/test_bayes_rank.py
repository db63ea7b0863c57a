"""RankPrior: which slices enter each variance, the MAP penalty and its gradient, damped EM steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ttedge.bayes import BayesianTT, GammaPrior, HalfCauchyPrior, LogUniformPrior, RankPrior, attach, slice_stats
from ttedge.errors import ConfigError, ShapeError
from ttedge.tt import TTLinear


def make_layer(seed: int = 0, ranks: list[int] | None = None) -> TTLinear:
    g = torch.Generator().manual_seed(seed)
    return TTLinear([2, 3, 2], [3, 2, 2], ranks or [3, 4], dtype=torch.float64, generator=g)


def test_slice_stats_follow_the_definition() -> None:
    layer = make_layer()
    G = list(layer.cores)  # (1,3,2,3), (3,2,3,4), (4,2,2,1)
    Ms, Ds = slice_stats(layer)
    assert Ds == [1 * 3 * 2 + 2 * 3 * 4, 3 * 2 * 3 + 2 * 2 * 1]
    for k in range(2):
        for r in range(layer.ranks[k]):
            expected = (G[k][:, :, :, r] ** 2).sum() + (G[k + 1][r, :, :, :] ** 2).sum()
            torch.testing.assert_close(Ms[k][r], expected)


def test_penalty_value_and_analytic_gradient() -> None:
    layer = make_layer()
    rp = RankPrior(layer, GammaPrior(), init_lambda=1.0)
    with torch.no_grad():
        rp.lam_0.copy_(torch.tensor([0.5, 2.0, 3.0]))
        rp.lam_1.copy_(torch.tensor([0.1, 1.0, 4.0, 7.0]))
    Ms, _ = slice_stats(layer)
    value = rp.penalty(layer)
    torch.testing.assert_close(value, (Ms[0] / (2 * rp.lam_0)).sum() + (Ms[1] / (2 * rp.lam_1)).sum())
    value.backward()
    G = [c.detach() for c in layer.cores]
    # d/dG_k[a, i, j, b] = G_k[a, i, j, b] (1/lambda_{k-1, a} + 1/lambda_{k, b}); a middle core feels both bonds
    torch.testing.assert_close(layer.cores[0].grad, G[0] / rp.lam_0)
    torch.testing.assert_close(layer.cores[1].grad, G[1] * (1 / rp.lam_0[:, None, None, None] + 1 / rp.lam_1))
    torch.testing.assert_close(layer.cores[2].grad, G[2] / rp.lam_1[:, None, None, None])


def test_penalty_gradient_matches_finite_differences() -> None:
    layer = make_layer(1)
    rp = RankPrior(layer, LogUniformPrior(), init_lambda=0.3)
    rp.em_update(layer, 0.7)
    cores = [c.detach().clone().requires_grad_(True) for c in layer.cores]

    def penalty(*cs: torch.Tensor) -> torch.Tensor:
        Ms, _ = slice_stats(cs)
        return sum((M / (2 * lam)).sum() for M, lam in zip(Ms, rp.lambdas))

    assert torch.autograd.gradcheck(penalty, tuple(cores), eps=1e-6, atol=1e-7)
    torch.testing.assert_close(penalty(*cores), rp.penalty(layer))


def test_penalty_keeps_the_cores_dtype() -> None:
    layer = TTLinear([2, 2], [2, 2], 2)
    rp = RankPrior(layer, GammaPrior())
    assert rp.lam_0.dtype == torch.float64 and rp.penalty(layer).dtype == torch.float32


@pytest.mark.parametrize("prior", [GammaPrior(1.0, 0.1), LogUniformPrior(), HalfCauchyPrior(0.5)])
def test_em_damping(prior) -> None:  # type: ignore[no-untyped-def]
    layer = make_layer(2)
    Ms, Ds = slice_stats(layer)
    targets = [prior.update(M.detach(), D) for M, D in zip(Ms, Ds)]
    full = RankPrior(layer, prior, init_lambda=2.0)
    half = RankPrior(layer, prior, init_lambda=2.0)
    full.em_update(layer, 1.0)
    half.em_update(layer, 0.5)
    for k in range(2):
        torch.testing.assert_close(full.lambdas[k], targets[k], rtol=1e-14, atol=0)
        torch.testing.assert_close(half.lambdas[k], (targets[k] + 2.0) / 2, rtol=1e-14, atol=0)


@pytest.mark.parametrize("prior", [GammaPrior(1.0, 0.1), LogUniformPrior(), HalfCauchyPrior(0.5)])
def test_full_em_step_minimizes_the_objective(prior) -> None:  # type: ignore[no-untyped-def]
    layer = make_layer(3)
    rp = RankPrior(layer, prior, init_lambda=1.0)
    start = rp.objective(layer)
    rp.em_update(layer, 1.0)
    best = rp.objective(layer)
    assert best < start
    for scale in (0.99, 1.01):  # any move of the lambdas away from lambda* is worse
        for k in range(2):
            getattr(rp, f"lam_{k}").mul_(scale)
            assert rp.objective(layer) > best
            getattr(rp, f"lam_{k}").div_(scale)


def test_min_lambda_keeps_the_penalty_finite_for_zero_slices() -> None:
    layer = make_layer(4)
    with torch.no_grad():
        layer.cores[0][..., 1] = 0
        layer.cores[1][1] = 0
    rp = RankPrior(layer, LogUniformPrior(), min_lambda=1e-12)
    rp.em_update(layer, 1.0)
    assert float(rp.lam_0[1]) == 1e-12
    assert torch.isfinite(rp.penalty(layer))


def test_prunable_masks() -> None:
    layer = make_layer()
    rp = RankPrior(layer, GammaPrior())
    with torch.no_grad():
        rp.lam_0.copy_(torch.tensor([1e-5, 1.0, 1e-3]))
        rp.lam_1.copy_(torch.tensor([1.0, 1e-6, 1.0, 1.0]))
    masks = rp.prunable(1e-4)
    assert masks[0].tolist() == [True, False, False] and masks[1].tolist() == [False, True, False, False]
    assert rp.prunable([1e-2, 1e-7])[0].tolist() == [True, False, True]
    assert rp.prunable([1e-2, 1e-7])[1].tolist() == [False] * 4
    _, Ds = slice_stats(layer)
    assert rp.thresholds(layer, factor=2.0) == [2 * 0.1 / (D / 2 + 2) for D in Ds]


def test_state_dict_round_trip_and_resize() -> None:
    layer = make_layer()
    rp = RankPrior(layer, GammaPrior())
    rp.em_update(layer, 0.3)
    other = RankPrior(make_layer(ranks=[2, 2]), GammaPrior())
    other.load_state_dict(rp.state_dict())
    assert other.ranks == [3, 4]
    for a, b in zip(other.lambdas, rp.lambdas):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert sorted(rp.state_dict()) == ["lam_0", "lam_1"]


def test_attach_to_a_model() -> None:
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(TTLinear([2, 3, 2], [2, 2, 2], 3, generator=g), nn.ReLU(),
                          nn.Sequential(TTLinear([8], [3], 1, generator=g), nn.Linear(3, 2)))
    bayes = attach(model, GammaPrior(), init_lambda=0.5)
    assert isinstance(bayes, BayesianTT)
    assert bayes.names == ["0", "2.0"]
    assert bayes.ranks() == {"0": [3, 3], "2.0": []}
    expected = bayes["0"].penalty(model[0]) + bayes["2.0"].penalty(model[2][0])
    torch.testing.assert_close(bayes.penalty(model, weight=0.25), 0.25 * expected)
    bayes.em_update(model, 1.0)
    Ms, Ds = slice_stats(model[0])
    torch.testing.assert_close(bayes.lambdas()["0"][1], GammaPrior().update(Ms[1].detach().double(), Ds[1]))
    assert sorted(bayes.state_dict()) == ["priors.0.lam_0", "priors.0.lam_1"]
    assert float(bayes.objective(model)) == pytest.approx(float(bayes["0"].objective(model[0])))
    root = attach(model[0], LogUniformPrior())
    assert root.names == [""] and root[""].ranks == [3, 3]


def test_errors() -> None:
    layer = make_layer()
    rp = RankPrior(layer, GammaPrior())
    with pytest.raises(ShapeError, match=r"^the layer has ranks \[2, 2\] but its rank prior has \[3, 4\]; "
                                         r"truncate through ttedge\.bayes\.truncate so that both shrink together\.$"):
        rp.penalty(make_layer(ranks=[2, 2]))
    with pytest.raises(ConfigError, match=r"^damping must be a number in \(0, 1\], got 0; use a step between 0\.1 and 1\.0\.$"):
        rp.em_update(layer, 0)
    with pytest.raises(ConfigError, match=r"^damping must be a number in \(0, 1\], got 1\.5; use a step between 0\.1 and 1\.0\.$"):
        rp.em_update(layer, 1.5)
    with pytest.raises(ConfigError, match=r"^init_lambda must be a positive number, got -1\.0; set init_lambda to a number > 0\.$"):
        RankPrior(layer, GammaPrior(), init_lambda=-1.0)
    with pytest.raises(ConfigError, match=r"^prior must be a hyperprior such as GammaPrior\(\), got 'gamma'; build one with make_prior\.$"):
        RankPrior(layer, "gamma")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^the log_uniform rank prior implies no pruning threshold; pass threshold=<value> such as 1e-4\.$"):
        RankPrior(layer, LogUniformPrior()).thresholds(layer)
    with pytest.raises(ConfigError, match=r"^a pruning threshold must be a positive number, got True; use a value such as 1e-4\.$"):
        rp.prunable(True)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match=r"^got 3 thresholds for 2 bonds; pass one number or one per bond\.$"):
        rp.prunable([1e-3, 1e-3, 1e-3])
    with pytest.raises(ConfigError, match=r"^the model has no TTLinear layer to put a rank prior on; build it with TT layers\.$"):
        attach(nn.Linear(2, 2), GammaPrior())
    bayes = attach(nn.Sequential(make_layer()), GammaPrior())
    with pytest.raises(ShapeError, match=r"^the model has no TTLinear named '0'; attach the rank priors to this model\.$"):
        bayes.penalty(nn.Sequential(nn.Linear(2, 2)))
