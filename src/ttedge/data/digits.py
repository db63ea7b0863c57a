"""scikit-learn's bundled 8x8 handwritten digits, split into train and test without a download.

The 1797 images ship inside scikit-learn, so this is the default data set: a run needs no network
and no data folder. The split is stratified (each class keeps the same test fraction) and depends
only on the seed, so train and test never overlap and every run with a seed sees the same split.
"""

from __future__ import annotations

import numpy as np

from ttedge.data.mnist import check_split
from ttedge.errors import DataError

__all__ = ["NUM_DIGITS", "load_digits"]

NUM_DIGITS = 1797
"""Images in the bundled set, train and test together."""

_MAX_VALUE = 16  # Pixels are counts of set pixels in 4x4 blocks of a 32x32 bitmap: 0..16.


def _test_mask(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """A bool (N,) mask choosing round(test_fraction * count) random images of each class."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_test = int(round(test_fraction * members.size))
        mask[rng.permutation(members)[:n_test]] = True
    return mask


def load_digits(
    split: str = "train", test_fraction: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of the 8x8 digits.

    Args:
        split: "train" or "test".
        test_fraction: Share of each class put in the test split, strictly between 0 and 1.
        seed: Chooses the split; the same seed always gives the same split.

    Returns:
        images: float32 (N, 64) in [0, 1] (raw value / 16), rows of the 8x8 image in order.
        labels: int64 (N,) in 0..9.
        Both keep the bundled order, so a loader must shuffle for training.

    Raises:
        DataError: For a bad split or test_fraction.
    """
    check_split(split)
    if not 0.0 < test_fraction < 1.0:
        raise DataError(
            f"test_fraction={test_fraction} is outside (0, 1); pass a share such as 0.25."
        )
    # Imported here because scikit-learn takes about a second to import and only this needs it.
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    labels = np.asarray(bunch.target, dtype=np.int64)  # (1797,)
    images = np.asarray(bunch.data, dtype=np.float32) / np.float32(_MAX_VALUE)  # (1797, 64)
    mask = _test_mask(labels, test_fraction, seed)
    keep = mask if split == "test" else ~mask
    return images[keep], labels[keep]
