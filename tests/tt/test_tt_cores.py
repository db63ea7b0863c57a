"""Modes, TT-SVD and initialization."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ttedge.errors import ShapeError
from ttedge.tt import core_shapes, factorize, init_cores, init_std, to_dense, tt_svd


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5000), st.integers(1, 4))
def test_factorize_pad_product_and_balance(n, d) -> None:
    modes = factorize(n, d, pad=True)
    assert len(modes) == d and math.prod(modes) >= n
    if d > 1:
        assert min(modes) >= 2 and max(modes) <= 2 * min(modes)


def test_factorize_examples() -> None:
    assert factorize(784, 4) == [4, 4, 7, 7]
    assert factorize(512, 3) == [8, 8, 8]
    assert factorize(10, 2) == [2, 5]
    assert factorize(13, 1) == [13]
    # Padding only grows the size as far as needed for balanced modes.
    assert factorize(784, 4, pad=True) == [4, 4, 7, 7]
    assert math.prod(factorize(13, 2, pad=True)) == 15


def test_factorize_impossible_error() -> None:
    with pytest.raises(ShapeError, match=r"^13 cannot be split into 2 modes greater than 1; use fewer modes or pass pad=True\.$"):
        factorize(13, 2)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.lists(st.integers(1, 4), min_size=3, max_size=3), st.integers(0, 10**6))
def test_tt_svd_exact_at_full_rank(in_modes, out_pool, seed) -> None:
    out_modes = out_pool[: len(in_modes)]
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(math.prod(out_modes), math.prod(in_modes), generator=g, dtype=torch.float64)
    cores = tt_svd(w, in_modes, out_modes)
    torch.testing.assert_close(to_dense(cores), w, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("rel_error", [0.05, 0.2, 0.5])
def test_tt_svd_meets_error_bound(rel_error) -> None:
    g = torch.Generator().manual_seed(3)
    in_modes, out_modes = [4, 4, 4], [3, 4, 5]
    # A matrix with a decaying spectrum, so truncation actually drops something.
    w = to_dense(init_cores(in_modes, out_modes, [6, 6], g, torch.float64))
    w = w + 0.01 * torch.randn(w.shape, generator=g, dtype=torch.float64)
    cores = tt_svd(w, in_modes, out_modes, rel_error=rel_error)
    err = torch.linalg.norm(to_dense(cores) - w) / torch.linalg.norm(w)
    assert err <= rel_error
    full = tt_svd(w, in_modes, out_modes)
    assert sum(c.numel() for c in cores) < sum(c.numel() for c in full)


def test_tt_svd_max_rank_caps_ranks() -> None:
    w = torch.randn(64, 64, dtype=torch.float64)
    cores = tt_svd(w, [4, 4, 4], [4, 4, 4], max_rank=3)
    assert [c.shape[3] for c in cores[:-1]] == [3, 3]


def test_tt_svd_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"^weight has shape \(6, 6\) but out_modes \[2, 2\] and in_modes \[2, 3\] describe \(4, 6\); choose modes whose products are the weight's shape\.$"):
        tt_svd(torch.zeros(6, 6), [2, 3], [2, 2])


def test_init_variance_matches_dense_init() -> None:
    in_modes, out_modes, ranks = [4, 4, 4], [4, 4, 4], [8, 8]
    g = torch.Generator().manual_seed(0)
    samples = torch.cat([to_dense(init_cores(in_modes, out_modes, ranks, g, torch.float64)).flatten() for _ in range(40)])
    target = 1.0 / (3 * 64)
    # 163,840 weights: the sample variance's relative standard error is well under 2 percent even
    # with the heavier tails of a product of Gaussians; allow 10 percent.
    assert abs(samples.var().item() / target - 1) < 0.10
    assert init_std(64, ranks, 3) == pytest.approx((1 / (3 * 64 * 64)) ** (1 / 6))


def test_mode_and_rank_errors() -> None:
    with pytest.raises(ShapeError, match=r"^3 cores need 2 inner ranks, got 1 \(\[4\]\); give one rank per bond between neighbouring cores\.$"):
        core_shapes([2, 2, 2], [2, 2, 2], [4])
    with pytest.raises(ShapeError, match=r"^ranks must be integers >= 1, got \[0\]\.$"):
        core_shapes([2, 2], [2, 2], [0])
    with pytest.raises(ShapeError, match=r"^in_modes and out_modes must be non-empty and of equal length, got 2 and 3; give one input and one output mode per core\.$"):
        core_shapes([2, 2], [2, 2, 2], [1])
