"""Tests of the bundled 8x8 digits split and of `load_dataset`'s dispatch."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_load_digits

from ttedge.data import DATASETS, NUM_CLASSES, load_dataset, load_digits
from ttedge.data.digits import NUM_DIGITS
from ttedge.errors import DataError


def _rows(images: np.ndarray, labels: np.ndarray) -> list[bytes]:
    """Each image with its label as one hashable value, to compare splits as collections."""
    return [x.tobytes() + bytes([y]) for x, y in zip(images, labels)]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_sizes_and_no_overlap(seed: int) -> None:
    train_x, train_y = load_digits("train", seed=seed)
    test_x, test_y = load_digits("test", seed=seed)
    assert len(train_x) + len(test_x) == NUM_DIGITS == 1797
    assert len(test_x) == pytest.approx(0.25 * NUM_DIGITS, abs=NUM_CLASSES)
    # Together the splits are the bundled set, each image exactly once: compare sorted lists
    # rather than sets because the bundled set holds a few duplicate images.
    bunch = sklearn_load_digits()
    everything = _rows(bunch.data.astype(np.float32) / 16, bunch.target)
    assert sorted(_rows(train_x, train_y) + _rows(test_x, test_y)) == sorted(everything)


def test_split_is_stratified() -> None:
    _, train_y = load_digits("train")
    _, test_y = load_digits("test")
    fractions = np.bincount(test_y) / (np.bincount(test_y) + np.bincount(train_y))
    assert np.all(np.abs(fractions - 0.25) < 0.01)


def test_types_shapes_and_range() -> None:
    images, labels = load_digits("test")
    assert images.dtype == np.float32 and images.ndim == 2 and images.shape[1] == 64
    assert labels.dtype == np.int64 and labels.shape == (images.shape[0],)
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(np.unique(labels)) == set(range(NUM_CLASSES))


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    a = load_digits("test", seed=3)
    b = load_digits("test", seed=3)
    c = load_digits("test", seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert set(_rows(*a)) != set(_rows(*c))


def test_test_fraction_changes_sizes() -> None:
    assert len(load_digits("test", test_fraction=0.5)[0]) == pytest.approx(898, abs=NUM_CLASSES)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_test_fraction(fraction: float) -> None:
    with pytest.raises(DataError, match=rf"^test_fraction={fraction} is outside \(0, 1\); pass "
                       r"a share such as 0\.25\.$"):
        load_digits("train", test_fraction=fraction)


def test_unknown_split() -> None:
    with pytest.raises(DataError, match=r"^Unknown split 'all'; use 'train' or 'test'\.$"):
        load_digits("all")


def test_load_dataset_digits_matches_loader() -> None:
    images, labels = load_dataset("digits", "train", seed=2)
    expected = load_digits("train", seed=2)
    assert np.array_equal(images, expected[0]) and np.array_equal(labels, expected[1])


def test_load_dataset_unknown_name() -> None:
    assert DATASETS == ("digits", "mnist")
    with pytest.raises(DataError, match=r"^Unknown data set 'cifar10'; use one of 'digits', "
                       r"'mnist'\.$"):
        load_dataset("cifar10", "train")


def test_load_dataset_mnist_needs_data_dir() -> None:
    with pytest.raises(DataError, match=r"^The mnist data set needs its folder; pass --data\.data_dir=PATH "
                       r"pointing at a folder that holds the four MNIST IDX files \(add "
                       r"--data\.download=true to fetch them\)\.$"):
        load_dataset("mnist", "train")


def test_load_dataset_digits_rejects_pad_width() -> None:
    with pytest.raises(DataError, match=r"^pad_width applies only to mnist; leave it unset for "
                       r"digits, whose 8x8 images are used as 64 inputs\.$"):
        load_dataset("digits", "train", pad_width=32)
