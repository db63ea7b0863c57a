"""TT-matrix cores: validation, dense reconstruction, TT-SVD and initialization.

Core k has shape (r_{k-1}, m_k, n_k, r_k) with r_0 = r_d = 1, and

    W[(i_1..i_d), (j_1..j_d)] = G_1[:, i_1, j_1, :] @ ... @ G_d[:, i_d, j_d, :]

with row index (i_1..i_d) and column index (j_1..j_d) both in row-major order, so that y = W x for
an input x of N = n_1 * ... * n_d features gives M = m_1 * ... * m_d outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ShapeError
from .modes import check_modes, prod

__all__ = ["core_shapes", "check_cores", "to_dense", "tt_svd", "init_cores", "init_std"]


def core_shapes(
    in_modes: Sequence[int], out_modes: Sequence[int], ranks: Sequence[int]
) -> list[tuple[int, int, int, int]]:
    """Shapes (r_{k-1}, m_k, n_k, r_k) of the d cores; ``ranks`` are the d - 1 inner ranks."""
    check_modes(in_modes, out_modes, ranks)
    full = [1, *ranks, 1]
    return [(full[k], out_modes[k], in_modes[k], full[k + 1]) for k in range(len(in_modes))]


def check_cores(cores: Sequence[torch.Tensor]) -> None:
    """Raise ShapeError unless ``cores`` chain into a TT matrix."""
    if len(cores) == 0:
        raise ShapeError("a TT matrix needs at least one core.")
    for k, core in enumerate(cores):
        if core.dim() != 4:
            raise ShapeError(
                f"core {k} has shape {tuple(core.shape)}; every core must be 4-D (r_prev, m, n, r_next)."
            )
    if cores[0].shape[0] != 1 or cores[-1].shape[3] != 1:
        raise ShapeError("the first core must start and the last core must end with rank 1.")
    for k in range(len(cores) - 1):
        if cores[k].shape[3] != cores[k + 1].shape[0]:
            raise ShapeError(
                f"core {k} ends with rank {cores[k].shape[3]} but core {k + 1} starts with rank "
                f"{cores[k + 1].shape[0]}; neighbouring ranks must match."
            )


def to_dense(cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Rebuild the dense (M, N) matrix. For checks and conversions only: training never does this."""
    check_cores(cores)
    acc = cores[0][0]  # (m_1, n_1, r_1)
    for core in cores[1:]:
        m, n, _ = acc.shape
        r, mk, nk, rk = core.shape
        # (m, n, r) x (r, mk, nk, rk) -> (m, mk, n, nk, rk): the new modes go last in row-major order.
        acc = torch.einsum("abr,rcdq->acbdq", acc, core).reshape(m * mk, n * nk, rk)
    return acc[..., 0]


def tt_svd(
    weight: torch.Tensor,
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    max_rank: int | None = None,
    rel_error: float = 0.0,
) -> list[torch.Tensor]:
    """Decompose a dense (M, N) matrix into TT-matrix cores by sequential truncated SVDs.

    Each of the d - 1 SVDs drops the smallest singular values whose squared sum stays within
    (rel_error * ||W||_F)^2 / (d - 1), so the Frobenius error of the result is at most
    rel_error * ||W||_F (Oseledets 2011, Theorem 2.2); ``max_rank`` caps every rank on top of that,
    in which case the bound no longer holds. ``rel_error=0`` and no ``max_rank`` is exact.
    """
    d = len(in_modes)
    check_modes(in_modes, out_modes, [1] * (d - 1))
    M, N = prod(out_modes), prod(in_modes)
    if weight.dim() != 2 or tuple(weight.shape) != (M, N):
        raise ShapeError(
            f"weight has shape {tuple(weight.shape)} but out_modes {list(out_modes)} and in_modes "
            f"{list(in_modes)} describe ({M}, {N}); choose modes whose products are the weight's shape."
        )
    if max_rank is not None and max_rank < 1:
        raise ShapeError(f"max_rank must be at least 1, got {max_rank}.")
    if not 0.0 <= rel_error < 1.0:
        raise ShapeError(f"rel_error must lie in [0, 1), got {rel_error}.")
    w = weight.detach().to(torch.float64)
    # (i_1..i_d, j_1..j_d) -> (i_1, j_1, i_2, j_2, ...): each core owns one (i_k, j_k) pair.
    t = w.reshape(*out_modes, *in_modes)
    t = t.permute([p for k in range(d) for p in (k, d + k)]).contiguous()
    delta2 = (rel_error * torch.linalg.norm(w)) ** 2 / max(d - 1, 1)
    cores, r_prev = [], 1
    rest = t.reshape(-1)
    for k in range(d - 1):
        mat = rest.reshape(r_prev * out_modes[k] * in_modes[k], -1)
        u, s, vh = torch.linalg.svd(mat, full_matrices=False)
        # tail[i] = sum of s[j]^2 for j >= i; keep the fewest values whose dropped tail fits delta2.
        tail = torch.flip(torch.cumsum(torch.flip(s**2, [0]), 0), [0])
        keep = int((tail > delta2).sum().item()) if delta2 > 0 else int((s > 0).sum().item())
        keep = max(1, keep)
        if max_rank is not None:
            keep = min(keep, max_rank)
        cores.append(u[:, :keep].reshape(r_prev, out_modes[k], in_modes[k], keep))
        rest = s[:keep, None] * vh[:keep]
        r_prev = keep
    cores.append(rest.reshape(r_prev, out_modes[-1], in_modes[-1], 1))
    return [c.to(weight.dtype) for c in cores]


def init_std(in_features: int, ranks: Sequence[int], d: int) -> float:
    """Standard deviation of each core entry for the dense-equivalent initialization.

    Entries drawn i.i.d. N(0, s^2) give reconstructed weights of variance (r_1 * ... * r_{d-1}) s^(2d),
    since each weight is a sum over rank paths of products of d independent zero-mean entries, and
    distinct paths are uncorrelated. ``nn.Linear`` draws U(-1/sqrt(N), 1/sqrt(N)), variance 1/(3N), so

        s = (1 / (3 N r_1 ... r_{d-1})) ** (1 / (2 d)).
    """
    return (1.0 / (3.0 * in_features * prod(ranks))) ** (1.0 / (2 * d))


def init_cores(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: Sequence[int],
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[torch.Tensor]:
    """Random cores whose reconstructed weight has nn.Linear's variance 1/(3 N) (see init_std)."""
    shapes = core_shapes(in_modes, out_modes, ranks)
    std = init_std(prod(in_modes), ranks, len(shapes))
    return [torch.randn(s, generator=generator, dtype=dtype) * std for s in shapes]


