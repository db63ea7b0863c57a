"""TTLinear: a drop-in replacement for nn.Linear whose weight is stored as TT-matrix cores."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ShapeError
from .apply import tt_apply
from .contract import ORDERS, ContractionPlan, Order, OrderSetting, plan_contraction
from .cores import core_shapes, init_cores, to_dense, tt_svd
from .modes import check_modes, prod

__all__ = ["TTLinear", "max_ranks"]


def max_ranks(in_modes: Sequence[int], out_modes: Sequence[int]) -> list[int]:
    """The largest useful inner ranks: r_k <= min(prod_{i<=k} m_i n_i, prod_{i>k} m_i n_i)."""
    sizes = [m * n for m, n in zip(out_modes, in_modes)]
    return [min(prod(sizes[: k + 1]), prod(sizes[k + 1 :])) for k in range(len(sizes) - 1)]


def _resolve_ranks(in_modes: Sequence[int], out_modes: Sequence[int], ranks: int | Sequence[int]) -> list[int]:
    """An int is a uniform rank, capped at what each bond can use; a sequence is taken as given."""
    if isinstance(ranks, bool) or not isinstance(ranks, (int, Sequence)):
        raise ShapeError(f"ranks must be an int or a list of ints, got {ranks!r}.")
    if isinstance(ranks, int):
        if ranks < 1:
            raise ShapeError(f"ranks must be integers >= 1, got {ranks}.")
        return [min(ranks, cap) for cap in max_ranks(in_modes, out_modes)]
    return list(ranks)


class TTLinear(nn.Module):
    """y = x W^T + b with W (out_features, in_features) held as d TT cores, never formed densely.

    Args:
        in_modes: n_1..n_d, with in_features = n_1 * ... * n_d.
        out_modes: m_1..m_d, with out_features = m_1 * ... * m_d.
        ranks: the d - 1 inner ranks, or one int for all bonds (capped at each bond's maximum).
        bias: whether to learn an additive bias, as in nn.Linear.
        order: contraction order, "rtl", "ltr", or "auto": per batch size, the plan with the fewest
            MACs over both directions and every merge of neighbouring cores (see ``plan``).
        generator: random source for the initialization (see ``init_std``).

    Cores are initialized so that the reconstructed weight has nn.Linear's variance 1/(3 N); the
    bias is drawn U(-1/sqrt(N), 1/sqrt(N)) like nn.Linear's.
    """

    def __init__(
        self,
        in_modes: Sequence[int],
        out_modes: Sequence[int],
        ranks: int | Sequence[int],
        bias: bool = True,
        order: OrderSetting = "auto",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if len(in_modes) != len(out_modes):
            check_modes(in_modes, out_modes, [])
        rank_list = _resolve_ranks(in_modes, out_modes, ranks)
        core_shapes(in_modes, out_modes, rank_list)  # validates before anything is allocated
        if order != "auto" and order not in ORDERS:
            raise ShapeError(f"unknown contraction order {order!r}; use auto, rtl or ltr.")
        self.in_modes = [int(v) for v in in_modes]
        self.out_modes = [int(v) for v in out_modes]
        self.in_features = prod(self.in_modes)
        self.out_features = prod(self.out_modes)
        self.order_setting = order
        cores = init_cores(self.in_modes, self.out_modes, rank_list, generator, dtype)
        self.cores = nn.ParameterList(nn.Parameter(c) for c in cores)
        if bias:
            bound = 1.0 / self.in_features**0.5
            b = (torch.rand(self.out_features, generator=generator, dtype=dtype) * 2 - 1) * bound
            self.bias = nn.Parameter(b)
        else:
            self.register_parameter("bias", None)

    @property
    def ranks(self) -> list[int]:
        """Current inner ranks r_1..r_{d-1}, read from the cores."""
        return [int(c.shape[3]) for c in list(self.cores)[:-1]]

    @property
    def order(self) -> Order:
        """The sweep direction used; with "auto", that of the batch-1 plan (larger batches may
        choose differently, and merge cores: ``plan(batch)`` says)."""
        return self.plan(1).order

    def plan(self, batch: int = 1) -> ContractionPlan:
        """The products a forward of ``batch`` inputs runs, from the current ranks (cached)."""
        return plan_contraction(self.in_modes, self.out_modes, self.ranks, batch, self.order_setting)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in_features) -> (..., out_features)
        # The dict behind the ParameterList, in index order: iterating the list itself costs ~10 us.
        return tt_apply(x, tuple(self.cores._parameters.values()), self.order_setting, bias=self.bias)

    def weight_dense(self) -> torch.Tensor:
        """The dense (out_features, in_features) weight; for checks, never used in training."""
        return to_dense(list(self.cores))

    def core_parameters(self) -> int:
        """Number of TT-core entries (the compressed weight)."""
        return sum(c.numel() for c in self.cores)

    def compression_ratio(self) -> float:
        """Dense weight entries / TT-core entries (biases excluded on both sides)."""
        return self.in_features * self.out_features / self.core_parameters()

    def macs(self, batch: int = 1) -> int:
        """Forward multiply-accumulates for ``batch`` inputs (bias adds excluded)."""
        return self.plan(batch).macs

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"in_modes={self.in_modes}, out_modes={self.out_modes}, ranks={self.ranks}, "
            f"bias={self.bias is not None}, order={self.order}"
        )

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        in_modes: Sequence[int],
        out_modes: Sequence[int],
        max_rank: int | None = None,
        rel_error: float = 0.0,
        order: OrderSetting = "auto",
    ) -> TTLinear:
        """Compress a trained nn.Linear by TT-SVD (see ``tt_svd`` for the error bound)."""
        cores = tt_svd(linear.weight, in_modes, out_modes, max_rank=max_rank, rel_error=rel_error)
        layer = cls(in_modes, out_modes, [int(c.shape[3]) for c in cores[:-1]],
                    bias=linear.bias is not None, order=order, dtype=linear.weight.dtype)
        with torch.no_grad():
            for p, c in zip(layer.cores, cores):
                p.copy_(c)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
        return layer
