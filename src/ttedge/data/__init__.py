"""Data sets: the bundled 8x8 digits (default, no download) and MNIST from IDX files.

Every loader returns `(images, labels)`: float32 (N, D) pixels in [0, 1] and int64 (N,) labels in
0..NUM_CLASSES-1. `load_dataset` picks a loader by name, as the CLI and configs do.
"""

from __future__ import annotations

import os

import numpy as np

from ttedge.data.digits import load_digits
from ttedge.data.idx import read_idx, write_idx
from ttedge.data.mnist import NUM_CLASSES, SIDE, load_mnist
from ttedge.errors import DataError

__all__ = [
    "NUM_CLASSES",
    "DATASETS",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "num_features",
    "num_train",
    "read_idx",
    "write_idx",
]

DATASETS = ("digits", "mnist")
"""The names `load_dataset` accepts."""


def num_features(name: str, pad_width: int | None = None) -> int:
    """Input width of data set `name` (after MNIST row padding to `pad_width`), without loading it."""
    if name == "digits":
        return 64
    if name == "mnist":
        return SIDE * (pad_width or SIDE)
    known = ", ".join(repr(n) for n in DATASETS)
    raise DataError(f"Unknown data set {name!r}; use one of {known}.")


def num_train(name: str, seed: int = 0) -> int:
    """Training samples of data set `name` (MNIST's 60,000 without reading its files)."""
    if name == "mnist":
        return 60_000
    if name == "digits":
        return len(load_digits("train", seed=seed)[1])
    known = ", ".join(repr(n) for n in DATASETS)
    raise DataError(f"Unknown data set {name!r}; use one of {known}.")


def load_dataset(
    name: str,
    split: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    pad_width: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Load split "train" or "test" of the data set `name`.

    Args:
        name: "digits" (64 inputs, bundled) or "mnist" (784 inputs, or 28 * pad_width).
        split: "train" or "test".
        data_dir: The MNIST folder; required for mnist, unused by digits.
        download: Fetch missing MNIST files; unused by digits.
        pad_width: MNIST row width after zero padding, e.g. 32 for 896 inputs.
        seed: Chooses the digits train/test split; MNIST's split is fixed.

    Returns:
        images: float32 (N, D) in [0, 1].
        labels: int64 (N,) in 0..9.

    Raises:
        DataError: For an unknown name, a missing data_dir for mnist, pad_width with digits,
            or any error of the chosen loader.
    """
    if name == "digits":
        # Rejected rather than ignored: it changes the input size, so ignoring it would build
        # a model of the wrong width.
        if pad_width is not None:
            raise DataError(
                "pad_width applies only to mnist; leave it unset for digits, whose 8x8 images "
                "are used as 64 inputs."
            )
        return load_digits(split, seed=seed)
    if name == "mnist":
        if data_dir is None:
            raise DataError(
                "The mnist data set needs its folder; pass --data.data_dir=PATH pointing at a folder "
                "that holds the four MNIST IDX files (add --data.download=true to fetch them)."
            )
        return load_mnist(data_dir, split, download=download, pad_width=pad_width)
    known = ", ".join(repr(n) for n in DATASETS)
    raise DataError(f"Unknown data set {name!r}; use one of {known}.")
