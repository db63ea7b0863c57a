"""Hyperpriors on the rank variances lambda and their closed-form EM/MAP updates.

Every rank index r of a TT bond k owns a variance lambda: the group of D core entries that
carry index r (see ``ttedge.bayes.rank``) has prior N(0, lambda I). With M the sum of squares of those
D entries, the MAP objective in lambda (cores held fixed) is

    f(lambda) = M / (2 lambda) + (D / 2) log lambda + neg_log_prior(lambda)        (up to a constant)

and ``update(M, D)`` returns its exact minimizer lambda*. METHOD.md section 2 states the three
closed forms; each is exact for MAP in the variable the hyperprior is placed on:

* ``gamma``: an inverse-gamma(alpha, beta) density on lambda itself,
  neg_log_prior = (alpha + 1) log lambda + beta / lambda, so lambda* = (M + 2 beta) / (D + 2 + 2 alpha).
* ``log_uniform`` and ``half_cauchy``: a density on the standard deviation s = sqrt(lambda), and MAP
  in s. Their ``neg_log_prior(lambda)`` is -log p_s(sqrt(lambda)) with no Jacobian factor, because
  the mode is sought in s, and f(lambda) = F(sqrt(lambda)) for the objective F in s, so both have the
  same minimizer. (Converting p_s to a density in lambda adds (1/2) log lambda, which would turn the
  log-uniform update into M / (D + 2): a different estimator from the one METHOD.md specifies.)

Every update is vectorized: M may be a tensor of any shape, D an int or a broadcastable tensor.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from ..errors import ConfigError

__all__ = ["Hyperprior", "GammaPrior", "LogUniformPrior", "HalfCauchyPrior", "PRIOR_NAMES", "make_prior"]

Number = float | int | torch.Tensor


def _positive(prior: str, key: str, value: Any) -> float:
    """``value`` as a float if it is a finite positive number (bool is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{prior} prior {key} must be a positive number, got {value!r}; set {key} to a number > 0.")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{prior} prior {key} must be a positive number, got {value!r}; set {key} to a number > 0.")
    return float(value)


def _tensor(x: Number) -> torch.Tensor:
    """Python numbers become float64 scalars; tensors keep their dtype and device."""
    return x if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64)


class Hyperprior(ABC):
    """A hyperprior on one rank variance lambda > 0, with its closed-form MAP update."""

    name: ClassVar[str]

    @abstractmethod
    def update(self, M: Number, D: Number) -> torch.Tensor:
        """lambda* = argmin_lambda f(lambda) for slice sums of squares M (any shape) over D entries."""

    @abstractmethod
    def neg_log_prior(self, lam: Number) -> torch.Tensor:
        """The hyperprior's negative log density at lambda, up to a constant, elementwise."""

    def threshold(self, D: int) -> float | None:
        """The pruning threshold this hyperprior implies for a slice of D entries, or None."""
        return None

    def objective(self, M: Number, D: Number, lam: Number) -> torch.Tensor:
        """f(lambda) = M / (2 lambda) + (D / 2) log lambda + neg_log_prior(lambda), elementwise."""
        M, D, lam = _tensor(M), _tensor(D), _tensor(lam)
        return M / (2 * lam) + D / 2 * torch.log(lam) + self.neg_log_prior(lam)

    def params(self) -> dict[str, float]:
        """The constructor arguments, so that ``make_prior(p.name, **p.params())`` rebuilds ``p``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class GammaPrior(Hyperprior):
    """Inverse-gamma(alpha, beta) density on lambda: p(lambda) ~ lambda^-(alpha+1) exp(-beta / lambda).

    f'(lambda) = 0 gives lambda* = (M + 2 beta) / (D + 2 + 2 alpha), which never falls below the
    M = 0 value beta / (D/2 + alpha + 1): that floor is ``threshold(D)``. Larger beta: lower ranks.
    """

    alpha: float = 1.0
    beta: float = 0.1
    name: ClassVar[str] = "gamma"

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _positive("gamma", "alpha", self.alpha))
        object.__setattr__(self, "beta", _positive("gamma", "beta", self.beta))

    def update(self, M: Number, D: Number) -> torch.Tensor:
        M, D = _tensor(M), _tensor(D)
        return (M + 2 * self.beta) / (D + 2 + 2 * self.alpha)

    def neg_log_prior(self, lam: Number) -> torch.Tensor:
        lam = _tensor(lam)
        return (self.alpha + 1) * torch.log(lam) + self.beta / lam

    def threshold(self, D: int) -> float:
        return self.beta / (D / 2 + self.alpha + 1)


@dataclass(frozen=True)
class LogUniformPrior(Hyperprior):
    """Log-uniform (Jeffreys) density on the standard deviation s = sqrt(lambda): p(s) ~ 1 / s.

    MAP in s: neg_log_prior(lambda) = -log p_s(sqrt(lambda)) = (1/2) log lambda, so
    f'(lambda) = 0 gives lambda* = M / (D + 1). Equivalently, a density p(lambda) ~ lambda^(-1/2)
    with MAP in lambda. It is improper and has no floor, so it implies no pruning threshold.
    """

    name: ClassVar[str] = "log_uniform"

    def update(self, M: Number, D: Number) -> torch.Tensor:
        M, D = _tensor(M), _tensor(D)
        return M / (D + 1)

    def neg_log_prior(self, lam: Number) -> torch.Tensor:
        return 0.5 * torch.log(_tensor(lam))


@dataclass(frozen=True)
class HalfCauchyPrior(Hyperprior):
    """Half-Cauchy(eta) density on the standard deviation s = sqrt(lambda): p(s) ~ 1 / (1 + s^2 / eta^2).

    MAP in s: neg_log_prior(lambda) = log(1 + lambda / eta^2), and f'(lambda) = 0 is the quadratic
    (D + 2) lambda^2 + (D eta^2 - M) lambda - M eta^2 = 0, whose positive root is

        lambda* = (M - eta^2 D + sqrt(M^2 + (2D + 8) eta^2 M + eta^4 D^2)) / (2D + 4).

    Where eta^2 D > M that expression cancels (lambda* ~ M / D for small M), so it is evaluated as
    the algebraically equal 2 M eta^2 / (eta^2 D - M + sqrt(...)) there. No pruning threshold.
    """

    eta: float = 1.0
    name: ClassVar[str] = "half_cauchy"

    def __post_init__(self) -> None:
        object.__setattr__(self, "eta", _positive("half_cauchy", "eta", self.eta))

    def update(self, M: Number, D: Number) -> torch.Tensor:
        M, D = _tensor(M), _tensor(D)
        e2 = self.eta**2
        b = e2 * D - M
        root = torch.sqrt(M * M + (2 * D + 8) * e2 * M + e2 * e2 * D * D)
        direct = (root - b) / (2 * D + 4)
        stable = 2 * M * e2 / (b + root)  # b + root > 0 wherever it is selected (b > 0)
        return torch.where(b > 0, stable, direct)

    def neg_log_prior(self, lam: Number) -> torch.Tensor:
        return torch.log1p(_tensor(lam) / self.eta**2)


PRIOR_NAMES: tuple[str, ...] = ("gamma", "log_uniform", "half_cauchy")
_CLASSES: dict[str, type[Hyperprior]] = {"gamma": GammaPrior, "log_uniform": LogUniformPrior, "half_cauchy": HalfCauchyPrior}


def make_prior(name: str, **params: Any) -> Hyperprior:
    """The hyperprior called ``name`` (gamma, log_uniform, half_cauchy) with its parameters."""
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown rank prior {name!r}; use one of {', '.join(PRIOR_NAMES)}.")
    allowed = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    for key in params:
        if key not in allowed:
            fix = f"use {', '.join(allowed)}" if allowed else "pass none"
            raise ConfigError(f"the {name} rank prior has no parameter {key!r}; {fix}.")
    return cls(**params)
