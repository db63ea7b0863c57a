"""Physical rank truncation of TT layers, keeping optimizer state and rank variances aligned.

Removing rank index r of bond k deletes the slices G_k[..., r] and G_{k+1}[r, ...] (see
``ttedge.bayes.rank``). The layer then computes exactly what the untruncated layer computes with
those slices zeroed, with smaller cores: memory and MACs shrink.

The two cores are replaced by new, smaller ``nn.Parameter`` objects (a parameter cannot change shape
in place under an optimizer). So ``truncate`` also swaps them into the optimizer's param groups and
slices every per-parameter state tensor shaped like the parameter (Adam's exp_avg, exp_avg_sq,
max_exp_avg_sq; SGD's momentum_buffer) along the same axis; scalar state such as Adam's ``step`` is
kept. Gradients present on the old parameters are sliced too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, ShapeError
from ..tt import TTLinear
from .rank import BayesianTT, RankPrior

__all__ = ["truncate", "prune_model", "PruneReport"]


def _keep_index(keep: torch.Tensor | Sequence[int], rank: int, bond: int) -> torch.Tensor:
    """``keep`` as sorted, unique int64 positions in [0, rank)."""
    if isinstance(keep, torch.Tensor) and keep.dtype == torch.bool:
        if keep.shape != (rank,):
            raise ShapeError(
                f"the keep mask of bond {bond} has shape {tuple(keep.shape)} but the bond has rank {rank}; "
                f"pass a mask of shape ({rank},)."
            )
        index = torch.nonzero(keep.cpu()).flatten()
    else:
        values = keep.tolist() if isinstance(keep, torch.Tensor) else list(keep)
        if any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            raise ShapeError(f"keep must be a bool mask or a list of int rank indices, got {values!r}; pass one of those.")
        if len(set(values)) != len(values) or any(not 0 <= v < rank for v in values):
            raise ShapeError(
                f"keep indices {values} of bond {bond} must be distinct and lie in [0, {rank}); fix the index list."
            )
        index = torch.tensor(sorted(values), dtype=torch.int64)
    if index.numel() == 0:
        raise ShapeError(f"keep removes every rank index of bond {bond}; keep at least one.")
    return index


def _swap_in_optimizer(optimizer: torch.optim.Optimizer, old: nn.Parameter, new: nn.Parameter,
                       axis: int, index: torch.Tensor) -> None:
    """Put ``new`` where ``old`` was in the param groups and slice ``old``'s state onto it."""
    for group in optimizer.param_groups:
        params = group["params"]
        for i, p in enumerate(params):
            if p is old:
                params[i] = new
    state = optimizer.state.pop(old, None)
    if not state:
        return
    sliced = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.shape == old.shape:
            value = value.index_select(axis, index.to(value.device)).clone()
        elif isinstance(value, torch.Tensor) and value.dim() > 0:
            raise ShapeError(
                f"optimizer state {key!r} has shape {tuple(value.shape)}, unlike its parameter's "
                f"{tuple(old.shape)}, so it cannot be truncated; use SGD or Adam(W)."
            )
        sliced[key] = value
    optimizer.state[new] = sliced


def _replace_core(layer: TTLinear, pos: int, axis: int, index: torch.Tensor,
                  optimizer: torch.optim.Optimizer | None) -> None:
    old = layer.cores[pos]
    index = index.to(old.device)
    new = nn.Parameter(old.detach().index_select(axis, index).clone(), requires_grad=old.requires_grad)
    if old.grad is not None:
        new.grad = old.grad.index_select(axis, index).clone()
    if optimizer is not None:
        _swap_in_optimizer(optimizer, old, new, axis, index)
    layer.cores[pos] = new


@torch.no_grad()
def truncate(layer: TTLinear, bond: int, keep: torch.Tensor | Sequence[int],
             optimizer: torch.optim.Optimizer | None = None, rank_prior: RankPrior | None = None) -> torch.Tensor:
    """Keep only the rank indices ``keep`` of ``bond``; returns the kept positions (int64, sorted).

    Args:
        layer: the TTLinear to shrink; cores[bond] (r_{k-1}, m, n, r) becomes (r_{k-1}, m, n, r'), and
            cores[bond + 1] (r, m', n', r_{k+1}) becomes (r', m', n', r_{k+1}), r' = number kept.
        bond: 0 <= bond <= d - 2.
        keep: a bool mask of shape (r,) (True = keep) or a list of distinct indices.
        optimizer: if given, its param groups and state move to the new core parameters.
        rank_prior: if given, its lambda vector of this bond is sliced the same way.
    """
    ranks = layer.ranks
    if isinstance(bond, bool) or not isinstance(bond, int) or not 0 <= bond < len(ranks):
        raise ShapeError(
            f"bond {bond!r} does not exist in a layer with ranks {ranks}; use a bond from 0 to {len(ranks) - 1}."
            if ranks else f"bond {bond!r} does not exist in a layer with one core; only layers with ranks can be truncated."
        )
    if rank_prior is not None:
        rank_prior.check(layer)
    index = _keep_index(keep, ranks[bond], bond)
    if optimizer is not None:  # check both cores before touching either
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if id(layer.cores[bond]) not in held or id(layer.cores[bond + 1]) not in held:
            raise ConfigError(
                "the optimizer does not hold the TT cores being truncated; pass the optimizer that trains this model."
            )
    _replace_core(layer, bond, 3, index, optimizer)
    _replace_core(layer, bond + 1, 0, index, optimizer)
    if rank_prior is not None:
        rank_prior.select_(bond, index)
    return index


@dataclass(frozen=True)
class PruneReport:
    """What ``prune_model`` removed.

    removed: per layer name, per bond, the removed rank indices (positions before this prune).
    ranks_before / ranks_after: per layer name, the inner ranks.
    """

    removed: dict[str, list[list[int]]]
    ranks_before: dict[str, list[int]]
    ranks_after: dict[str, list[int]]

    @property
    def num_removed(self) -> int:
        """Rank indices removed in total."""
        return sum(len(r) for bonds in self.removed.values() for r in bonds)


@torch.no_grad()
def prune_model(model: nn.Module, priors: BayesianTT, threshold: float | None = None,
                optimizer: torch.optim.Optimizer | None = None, factor: float = 1.0) -> PruneReport:
    """Truncate every rank index whose lambda is below ``threshold``, in every attached layer.

    With ``threshold=None`` each bond uses ``factor`` times its hyperprior's threshold
    (``RankPrior.thresholds``). A bond never loses its last index: if every lambda is below the
    threshold, the index with the largest lambda stays. Masks are decided from the current lambdas
    of all bonds before any truncation.
    """
    removed: dict[str, list[list[int]]] = {}
    before, after = priors.ranks(), {}
    for name, layer, rp in priors.layers(model):
        rp.check(layer)
        cut = rp.prunable(rp.thresholds(layer, factor) if threshold is None else threshold)
        removed[name] = []
        for bond, (mask, lam) in enumerate(zip(cut, rp.lambdas)):
            mask = mask.clone()
            if bool(mask.all()):
                mask[torch.argmax(lam)] = False
            removed[name].append(torch.nonzero(mask.cpu()).flatten().tolist())
            if bool(mask.any()):
                truncate(layer, bond, ~mask, optimizer, rp)
        after[name] = layer.ranks
    return PruneReport(removed, before, after)
