"""Per-bond rank variances of TT layers: the MAP penalty, EM updates, and pruning masks.

A TTLinear with d cores G_0..G_{d-1}, G_k of shape (r_{k-1}, m_k, n_k, r_k) with r_{-1} = r_{d-1} = 1,
has d - 1 inner bonds. Bond k (0 <= k <= d - 2) joins G_k and G_{k+1} and has rank r_k. Its rank
index r owns the two slices

    G_k[:, :, :, r]      shape (r_{k-1}, m_k, n_k)            (last index r)
    G_{k+1}[r, :, :, :]  shape (m_{k+1}, n_{k+1}, r_{k+1})    (first index r)

both with prior N(0, lambda_{k,r} I). For that index

    M_{k,r} = ||G_k[..., r]||^2 + ||G_{k+1}[r, ...]||^2,
    D_k     = r_{k-1} m_k n_k + m_{k+1} n_{k+1} r_{k+1}      (the same for every r of the bond).

A middle core G_k belongs to two bonds: its entry G_k[a, i, j, b] enters M_{k-1,a} and M_{k,b}, so it
is shrunk by both variances. That is intended (it is the prior of Hawkins and Zhang): an entry is
small when either of the rank indices it connects is switched off.

The MAP loss is NLL + sum_{k,r} M_{k,r} / (2 lambda_{k,r}) + (terms in lambda only). Only the middle
term depends on the cores; ``penalty`` returns it. Scale it like the NLL: for a mean cross-entropy
over the batch, add ``penalty(...) / N_train``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, ShapeError
from ..tt import TTLinear
from .priors import Hyperprior

__all__ = ["RankPrior", "BayesianTT", "attach", "slice_stats"]


def slice_stats(cores: TTLinear | Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[int]]:
    """Per bond k: M_k of shape (r_k,), differentiable w.r.t. the cores, and the int D_k.

    ``cores`` is a TTLinear or its list of cores.
    """
    cores = list(cores.cores) if isinstance(cores, TTLinear) else list(cores)
    Ms, Ds = [], []
    for k in range(len(cores) - 1):
        left, right = cores[k], cores[k + 1]  # (r_{k-1}, m_k, n_k, r_k), (r_k, m_{k+1}, n_{k+1}, r_{k+1})
        Ms.append(left.pow(2).sum(dim=(0, 1, 2)) + right.pow(2).sum(dim=(1, 2, 3)))  # (r_k,)
        Ds.append(left[..., 0].numel() + right[0].numel())
    return Ms, Ds


def _check_damping(damping: float) -> float:
    if isinstance(damping, bool) or not isinstance(damping, (int, float)) or not 0 < damping <= 1:
        raise ConfigError(f"damping must be a number in (0, 1], got {damping!r}; use a step between 0.1 and 1.0.")
    return float(damping)


class RankPrior(nn.Module):
    """The variances lambda_{k,r} of one TTLinear: buffer ``lam_k`` of shape (r_k,) for each bond k.

    Built from the layer's current ranks; the layer is not stored (methods take it), so the prior's
    ``state_dict`` holds only the lambdas and can sit in a checkpoint beside the model's.
    ``load_state_dict`` accepts lambdas of other lengths (a pruned run) and resizes the buffers.

    Args:
        layer: the TTLinear whose bonds get variances.
        prior: the hyperprior that sets the EM update.
        init_lambda: the starting value of every lambda.
        min_lambda: floor of the EM update; keeps the penalty finite when a slice is exactly zero under
            a prior whose update can reach 0 (log_uniform, half_cauchy). Far below any pruning threshold.
        dtype: dtype of the lambda buffers.
    """

    def __init__(self, layer: TTLinear, prior: Hyperprior, init_lambda: float = 1.0,
                 min_lambda: float = 1e-12, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        for key, value in (("init_lambda", init_lambda), ("min_lambda", min_lambda)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{key} must be a positive number, got {value!r}; set {key} to a number > 0.")
        if not isinstance(prior, Hyperprior):
            raise ConfigError(f"prior must be a hyperprior such as GammaPrior(), got {prior!r}; build one with make_prior.")
        self.prior = prior
        self.min_lambda = float(min_lambda)
        device = layer.cores[0].device
        for k, r in enumerate(layer.ranks):
            self.register_buffer(f"lam_{k}", torch.full((r,), float(init_lambda), dtype=dtype, device=device))

    @property
    def num_bonds(self) -> int:
        return sum(1 for name, _ in self.named_buffers(recurse=False) if name.startswith("lam_"))

    @property
    def lambdas(self) -> list[torch.Tensor]:
        """lambda_k of shape (r_k,) for each bond k."""
        return [getattr(self, f"lam_{k}") for k in range(self.num_bonds)]

    @property
    def ranks(self) -> list[int]:
        return [int(lam.numel()) for lam in self.lambdas]

    def check(self, layer: TTLinear) -> None:
        """Raise ShapeError unless the layer's ranks are those of the lambdas."""
        if layer.ranks != self.ranks:
            raise ShapeError(
                f"the layer has ranks {layer.ranks} but its rank prior has {self.ranks}; "
                "truncate through ttedge.bayes.truncate so that both shrink together."
            )

    def penalty(self, layer: TTLinear) -> torch.Tensor:
        """sum_{k,r} M_{k,r} / (2 lambda_{k,r}): a scalar in the cores' dtype, differentiable w.r.t. them."""
        self.check(layer)
        Ms, _ = slice_stats(layer)
        total = layer.cores[0].new_zeros(())
        for M, lam in zip(Ms, self.lambdas):
            total = total + (M / (2 * lam.to(M.dtype))).sum()
        return total

    def objective(self, layer: TTLinear) -> torch.Tensor:
        """The full MAP objective in lambda: sum over bonds of ``prior.objective(M, D, lambda)`` (float64)."""
        self.check(layer)
        Ms, Ds = slice_stats(layer)
        return sum((self.prior.objective(M.detach().double(), D, lam.double()).sum()
                    for M, D, lam in zip(Ms, Ds, self.lambdas)), torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def em_update(self, layer: TTLinear, damping: float = 1.0) -> list[torch.Tensor]:
        """lambda <- (1 - s) lambda + s lambda*(M, D) with s = ``damping`` in (0, 1]; returns the lambdas."""
        s = _check_damping(damping)
        self.check(layer)
        Ms, Ds = slice_stats(layer)
        for k, (M, D) in enumerate(zip(Ms, Ds)):
            lam = getattr(self, f"lam_{k}")
            target = self.prior.update(M.double(), D).clamp_min(self.min_lambda)
            lam.copy_(((1 - s) * lam.double() + s * target).to(lam.dtype))
        return self.lambdas

    def thresholds(self, layer: TTLinear, factor: float = 1.0) -> list[float]:
        """``factor`` times the hyperprior's threshold for each bond's D_k (ConfigError if it has none).

        For the gamma prior the threshold is the floor lambda* reaches only as M -> 0, and
        lambda*(M) = floor (1 + M / (2 beta)), so a ``factor`` of 1 + c prunes the indices whose
        (converged) M is below 2 beta c.
        """
        if self.prior.threshold(1) is None:
            raise ConfigError(f"the {self.prior.name} rank prior implies no pruning threshold; pass threshold=<value> such as 1e-4.")
        _, Ds = slice_stats(layer)
        return [factor * float(self.prior.threshold(D)) for D in Ds]  # type: ignore[arg-type]

    def prunable(self, threshold: float | Sequence[float]) -> list[torch.Tensor]:
        """Bool masks of shape (r_k,), True where lambda_{k,r} < threshold (one value or one per bond)."""
        per_bond = list(threshold) if isinstance(threshold, Sequence) else [threshold] * self.num_bonds
        if len(per_bond) != self.num_bonds:
            raise ShapeError(f"got {len(per_bond)} thresholds for {self.num_bonds} bonds; pass one number or one per bond.")
        for t in per_bond:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
                raise ConfigError(f"a pruning threshold must be a positive number, got {t!r}; use a value such as 1e-4.")
        return [lam < t for lam, t in zip(self.lambdas, per_bond)]

    @torch.no_grad()
    def select_(self, bond: int, index: torch.Tensor) -> None:
        """Keep lambda_{bond}[index] only (``index``: int64 positions); used by ``truncate``."""
        name = f"lam_{bond}"
        setattr(self, name, getattr(self, name)[index.to(getattr(self, name).device)].clone())

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        for k in range(self.num_bonds):
            saved = state_dict.get(f"{prefix}lam_{k}")
            if isinstance(saved, torch.Tensor) and saved.dim() == 1:
                lam = getattr(self, f"lam_{k}")
                setattr(self, f"lam_{k}", lam.new_empty(saved.shape))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"prior={self.prior}, ranks={self.ranks}"


def _key(name: str) -> str:
    """ModuleDict keys cannot hold dots; '/' stands for them and for the root module ('')."""
    return name.replace(".", "/") if name else "/"


class BayesianTT(nn.Module):
    """One RankPrior per TTLinear of a model, keyed by the layer's module name (``model.named_modules``).

    The model is not stored: methods take it, so this container's ``state_dict`` is only lambdas.
    Typical training step::

        loss = nll + bayes.penalty(model) / n_train
        loss.backward(); optimizer.step()
        bayes.em_update(model, damping=0.5)          # every step or every few steps
        prune_model(model, bayes, threshold=1e-4, optimizer=optimizer)   # now and then
    """

    def __init__(self, model: nn.Module, prior: Hyperprior, init_lambda: float = 1.0,
                 min_lambda: float = 1e-12, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.names: list[str] = []
        self.priors = nn.ModuleDict()
        for name, module in model.named_modules():
            if isinstance(module, TTLinear):
                self.names.append(name)
                self.priors[_key(name)] = RankPrior(module, prior, init_lambda, min_lambda, dtype)
        if not self.names:
            raise ConfigError("the model has no TTLinear layer to put a rank prior on; build it with TT layers.")

    def __getitem__(self, name: str) -> RankPrior:
        return self.priors[_key(name)]  # type: ignore[return-value]

    def layers(self, model: nn.Module) -> Iterator[tuple[str, TTLinear, RankPrior]]:
        """(name, layer, rank prior) for every attached layer, checking the model still has it."""
        modules = dict(model.named_modules())
        for name in self.names:
            layer = modules.get(name)
            if not isinstance(layer, TTLinear):
                raise ShapeError(f"the model has no TTLinear named {name!r}; attach the rank priors to this model.")
            yield name, layer, self[name]

    def penalty(self, model: nn.Module, weight: float = 1.0) -> torch.Tensor:
        """``weight`` times the sum of every layer's ``RankPrior.penalty`` (e.g. weight = 1 / N_train)."""
        terms = [rp.penalty(layer) for _, layer, rp in self.layers(model)]
        return weight * torch.stack(terms).sum()

    def em_update(self, model: nn.Module, damping: float = 1.0) -> None:
        """A damped EM step on every lambda of every layer (no gradients)."""
        for _, layer, rp in self.layers(model):
            rp.em_update(layer, damping)

    def objective(self, model: nn.Module) -> torch.Tensor:
        """The MAP objective in the lambdas, summed over layers (float64 scalar; for monitoring)."""
        return torch.stack([rp.objective(layer) for _, layer, rp in self.layers(model)]).sum()

    def ranks(self) -> dict[str, list[int]]:
        """Current inner ranks per layer name (the lengths of the lambda vectors)."""
        return {name: self[name].ranks for name in self.names}

    def lambdas(self) -> dict[str, list[torch.Tensor]]:
        return {name: self[name].lambdas for name in self.names}


def attach(model: nn.Module, prior: Hyperprior, init_lambda: float = 1.0, **kwargs: Any) -> BayesianTT:
    """A BayesianTT with one RankPrior per TTLinear of ``model``; ``kwargs`` go to RankPrior."""
    return BayesianTT(model, prior, init_lambda, **kwargs)
