"""Rank adaptation inside a training run: the ``[bayes]`` section put to work.

From the end of ``warmup_epochs`` until the end of ``end_epoch`` (if set) the MAP penalty (weight / N_train) * sum M / (2 lambda) joins the loss and
lambda takes a damped EM step every ``em_every`` optimizer steps; at the end of each scheduled epoch
rank indices whose lambda fell below the threshold are cut out of the cores (and the optimizer
state). After ``end_epoch`` the pruned network fine-tunes without the prior. The per-epoch log holds every bond's rank, the parameter count and the sorted lambdas.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..bayes import BayesianTT, attach, make_prior, prune_model
from ..tt import TTLinear
from .config import BayesConfig

__all__ = ["RankAdapter", "core_shapes_of", "resize_cores", "prune_scheduled", "prior_active"]


def prior_active(cfg: BayesConfig, step: int, steps_per_epoch: int) -> bool:
    """Whether the penalty and EM updates apply at global ``step`` (0-based): after the warm-up
    epochs, up to the end of ``end_epoch`` if set."""
    started = step >= cfg.warmup_epochs * steps_per_epoch
    return started and not (cfg.end_epoch and step >= cfg.end_epoch * steps_per_epoch)


def prune_scheduled(cfg: BayesConfig, epoch: int) -> bool:
    """Whether rank indices are cut at the end of ``epoch`` (1-based)."""
    scheduled = (epoch in cfg.prune_epochs) if cfg.prune_epochs else epoch > cfg.warmup_epochs
    return scheduled and not (cfg.end_epoch and epoch > cfg.end_epoch)


def core_shapes_of(model: nn.Module) -> dict[str, list[list[int]]]:
    """Current core shapes of every TT layer, by module name (what a checkpoint must rebuild)."""
    return {name: [list(c.shape) for c in m.cores] for name, m in model.named_modules() if isinstance(m, TTLinear)}


def resize_cores(model: nn.Module, shapes: dict[str, list[list[int]]]) -> None:
    """Give every TT layer cores of the recorded shapes (values are loaded afterwards)."""
    for name, module in model.named_modules():
        if isinstance(module, TTLinear) and name in shapes:
            module.cores = nn.ParameterList(nn.Parameter(torch.zeros(s, dtype=c.dtype))
                                            for s, c in zip(shapes[name], module.cores))


class RankAdapter:
    """Penalty, EM updates and pruning for one run; ``None`` parts when ``cfg.enabled`` is false."""

    def __init__(self, cfg: BayesConfig, model: nn.Module, n_train: int, steps_per_epoch: int) -> None:
        self.cfg = cfg
        self.n_train = n_train
        self.steps_per_epoch = steps_per_epoch
        prior = make_prior(cfg.prior, **cfg.prior_params())
        self.priors: BayesianTT = attach(model, prior, init_lambda=cfg.init_lambda)

    def active(self, step: int) -> bool:
        """Whether the penalty and EM updates apply at global ``step`` (0-based)."""
        return prior_active(self.cfg, step, self.steps_per_epoch)

    def penalty(self, model: nn.Module, step: int) -> torch.Tensor | None:
        """The term to add to the mean loss at ``step``, or None during warm-up."""
        if not self.active(step):
            return None
        return self.priors.penalty(model, weight=self.cfg.weight / self.n_train)

    def after_step(self, model: nn.Module, step: int) -> None:
        """EM update of every lambda, every ``em_every`` active steps."""
        if self.active(step) and (step + 1) % self.cfg.em_every == 0:
            self.priors.em_update(model, damping=self.cfg.damping)

    def end_epoch(self, model: nn.Module, epoch: int, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Prune if ``epoch`` (1-based) is scheduled; returns the epoch's rank log."""
        removed = 0
        if prune_scheduled(self.cfg, epoch):
            threshold = self.cfg.threshold or None
            report = prune_model(model, self.priors, threshold, optimizer, factor=self.cfg.threshold_factor)
            removed = report.num_removed
        return {
            "ranks": self.priors.ranks(),
            "pruned": removed,
            "lambdas": {name: [sorted(lam.tolist(), reverse=True) for lam in lams]
                        for name, lams in self.priors.lambdas().items()},
        }

    def state_dict(self) -> dict[str, Any]:
        return self.priors.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.priors.load_state_dict(state)
