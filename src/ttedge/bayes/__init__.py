"""Rank adaptivity: Bayesian low-rank priors on TT bonds, their EM updates, and physical pruning.

``priors`` holds the hyperpriors on each rank variance lambda and their closed-form MAP updates,
``rank`` the per-layer variances with the MAP penalty added to the loss, ``prune`` the truncation of
cores (and optimizer state) once a variance falls below a threshold. METHOD.md section 2.
"""

from .priors import PRIOR_NAMES, GammaPrior, HalfCauchyPrior, Hyperprior, LogUniformPrior, make_prior
from .prune import PruneReport, prune_model, truncate
from .rank import BayesianTT, RankPrior, attach, slice_stats

__all__ = [
    "PRIOR_NAMES",
    "BayesianTT",
    "GammaPrior",
    "HalfCauchyPrior",
    "Hyperprior",
    "LogUniformPrior",
    "PruneReport",
    "RankPrior",
    "attach",
    "make_prior",
    "prune_model",
    "slice_stats",
    "truncate",
]
