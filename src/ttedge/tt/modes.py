"""Splitting a dimension into tensor-train modes.

A TT-matrix layer of shape (M, N) needs M = m_1 * ... * m_d and N = n_1 * ... * n_d. Balanced modes
keep the cores small; when a dimension has too few prime factors to be split, it can be padded to a
nearby size that can (METHOD.md pads the 784 MNIST pixels to 28x32 = 896 for this reason).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import ShapeError

__all__ = ["factorize", "check_modes", "prod"]

# With padding, grow the dimension until its modes are at most this far apart (max / min).
_PAD_BALANCE = 2.0


def prod(values: Sequence[int]) -> int:
    """Product of integers (1 for an empty sequence)."""
    return math.prod(int(v) for v in values)


def _splits(n: int, d: int, smallest: int) -> list[list[int]]:
    """All non-decreasing lists of d factors >= smallest whose product is n."""
    if d == 1:
        return [[n]] if n >= smallest else []
    out = []
    f = smallest
    while f ** d <= n:
        if n % f == 0:
            out.extend([f] + rest for rest in _splits(n // f, d - 1, f))
        f += 1
    return out


def _most_balanced(n: int, d: int) -> list[int] | None:
    """The factorization of n into d factors > 1 with the smallest largest factor, or None."""
    candidates = _splits(n, d, 2)
    if not candidates:
        return None
    # Smallest largest mode, then the largest smallest mode: both keep cores and ranks even.
    return min(candidates, key=lambda modes: (modes[-1], -modes[0]))


def factorize(n: int, d: int, pad: bool = False) -> list[int]:
    """Split ``n`` into ``d`` balanced modes (ascending), each greater than 1.

    With ``pad=True`` the smallest size ``n' >= n`` whose modes differ by at most a factor of two
    is factorized instead; the caller pads its data from ``n`` to ``prod(modes)``.
    """
    if not isinstance(n, int) or not isinstance(d, int) or n < 1 or d < 1:
        raise ShapeError(f"factorize needs a positive size and mode count, got n={n!r}, d={d!r}.")
    if d == 1:
        return [n]
    if not pad:
        modes = _most_balanced(n, d)
        if modes is None:
            raise ShapeError(
                f"{n} cannot be split into {d} modes greater than 1; use fewer modes or pass pad=True."
            )
        return modes
    size = n
    while True:
        modes = _most_balanced(size, d)
        if modes is not None and modes[-1] <= _PAD_BALANCE * modes[0]:
            return modes
        size += 1


def check_modes(in_modes: Sequence[int], out_modes: Sequence[int], ranks: Sequence[int]) -> None:
    """Raise ShapeError unless modes and inner ranks describe a valid TT matrix.

    ``ranks`` are the d - 1 inner ranks r_1 .. r_{d-1}; r_0 = r_d = 1 are implied.
    """
    d = len(in_modes)
    if d == 0 or len(out_modes) != d:
        raise ShapeError(
            f"in_modes and out_modes must be non-empty and of equal length, got {len(in_modes)} and "
            f"{len(out_modes)}; give one input and one output mode per core."
        )
    for name, modes in (("in_modes", in_modes), ("out_modes", out_modes)):
        if any(not isinstance(m, int) or isinstance(m, bool) or m < 1 for m in modes):
            raise ShapeError(f"{name} must be positive integers, got {list(modes)}.")
    if len(ranks) != d - 1:
        raise ShapeError(
            f"{d} cores need {d - 1} inner ranks, got {len(ranks)} ({list(ranks)}); "
            "give one rank per bond between neighbouring cores."
        )
    if any(not isinstance(r, int) or isinstance(r, bool) or r < 1 for r in ranks):
        raise ShapeError(f"ranks must be integers >= 1, got {list(ranks)}.")
