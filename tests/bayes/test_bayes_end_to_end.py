"""MAP training with the rank prior finds the rank of an exactly rank-2 TT target and prunes to it."""

from __future__ import annotations

import pytest
import torch

from ttedge.bayes import GammaPrior, HalfCauchyPrior, LogUniformPrior, attach, prune_model
from ttedge.tt import TTLinear, to_dense


def nll(layer: TTLinear, target: torch.Tensor) -> torch.Tensor:
    """Gaussian likelihood of the (16, 16) target with noise variance 0.2 on each entry."""
    return ((layer.weight_dense() - target) ** 2).sum() / (2 * 0.2)


@pytest.mark.parametrize("prior", [GammaPrior(1.0, 0.01), LogUniformPrior(), HalfCauchyPrior(1.0)])
def test_training_recovers_rank_two(prior) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    target = to_dense([torch.randn(1, 4, 4, 2, generator=g, dtype=torch.float64),
                       torch.randn(2, 4, 4, 1, generator=g, dtype=torch.float64)])  # (16, 16), TT rank 2
    layer = TTLinear([4, 4], [4, 4], [6], bias=False, dtype=torch.float64, generator=g)
    bayes = attach(layer, prior, init_lambda=1.0)
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    for step in range(500):
        opt.zero_grad()
        loss = nll(layer, target) + bayes.penalty(layer)
        loss.backward()
        opt.step()
        if step >= 50:  # EM starts once the data has shaped the cores, else needed indices can die early
            bayes.em_update(layer, damping=0.5)
    lam = bayes[""].lam_0.sort(descending=True).values
    assert lam[1] / lam[2] > 100  # two needed indices, four far below them
    assert lam[1] > 0.1 and lam[2] < 1e-3
    before = layer.weight_dense().detach()
    report = prune_model(layer, bayes, threshold=1e-2, optimizer=opt)
    assert layer.ranks == [2] and report.ranks_after == {"": [2]} and report.num_removed == 4
    after = layer.weight_dense().detach()
    assert torch.linalg.norm(after - before) < 1e-3 * torch.linalg.norm(before)  # pruning keeps the function
    assert torch.linalg.norm(after - target) < 0.05 * torch.linalg.norm(target)  # the prior's shrinkage only
    opt.zero_grad()
    (nll(layer, target) + bayes.penalty(layer)).backward()
    opt.step()  # training goes on with the pruned cores and the sliced Adam state
