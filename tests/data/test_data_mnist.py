"""Tests of the MNIST loader on small generated IDX files, its downloads, and the real files."""

from __future__ import annotations

import gzip
import os
import re
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from ttedge.data import NUM_CLASSES, load_dataset, load_mnist, mnist, write_idx
from ttedge.errors import DataError

_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_REAL_DIR = Path(
    os.environ.get("TTEDGE_MNIST_DIR")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
)


def _make_split(
    folder: Path, split: str, n: int = 5, gz: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Write n random 28x28 images and labels 0..9 as the split's IDX files; return them."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % NUM_CLASSES).astype(np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(folder / (_NAMES[split][0] + suffix), images, gz=gz)
    write_idx(folder / (_NAMES[split][1] + suffix), labels, gz=gz)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_loads_generated_files(tmp_path: Path, split: str, gz: bool) -> None:
    raw_images, raw_labels = _make_split(tmp_path, split, gz=gz)
    images, labels = load_mnist(tmp_path, split)
    assert images.dtype == np.float32 and images.shape == (5, 784)
    assert labels.dtype == np.int64 and labels.shape == (5,)
    assert np.array_equal(images, raw_images.reshape(5, 784).astype(np.float32) / 255)
    assert np.array_equal(labels, raw_labels)
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_padding_keeps_pixels_and_adds_zero_columns(tmp_path: Path) -> None:
    raw_images, _ = _make_split(tmp_path, "train")
    raw_images[:] = np.maximum(raw_images, 1)  # No zero pixels, so padding is recognizable.
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", raw_images, gz=True)
    images, _ = load_mnist(tmp_path, "train", pad_width=32)
    assert images.shape == (5, 896)
    grid = images.reshape(5, 28, 32)
    assert np.array_equal(grid[:, :, :28], raw_images.astype(np.float32) / 255)
    assert not grid[:, :, 28:].any()
    assert grid[:, :, :28].all()


def test_pad_width_equal_to_row_is_unpadded(tmp_path: Path) -> None:
    _make_split(tmp_path, "test")
    padded, _ = load_mnist(tmp_path, "test", pad_width=28)
    assert np.array_equal(padded, load_mnist(tmp_path, "test")[0])


def test_pad_width_narrower_than_rows(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^pad_width=27 is narrower than the 28-pixel MNIST "
                       r"rows; pass at least 28, or no pad_width\.$"):
        load_mnist(tmp_path, "train", pad_width=27)


def test_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^Unknown split 'val'; use 'train' or 'test'\.$"):
        load_mnist(tmp_path, "val")


def test_missing_file_names_folder_and_file(tmp_path: Path) -> None:
    _make_split(tmp_path, "train")
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"^MNIST file train-labels-idx1-ubyte \(or "
                       rf"train-labels-idx1-ubyte\.gz\) is missing from {re.escape(str(tmp_path))}"
                       r"; pass --data\.download=true or point --data\.data_dir at a folder holding the four "
                       r"MNIST IDX files\.$"):
        load_mnist(tmp_path, "train")


def test_count_mismatch(tmp_path: Path) -> None:
    _make_split(tmp_path, "test", n=5)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8), gz=True)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz holds 5 images but "
                       r".*t10k-labels-idx1-ubyte\.gz holds 4 labels; the two files do not "
                       r"belong together, so download them again\.$"):
        load_mnist(tmp_path, "test")


def test_label_out_of_range(tmp_path: Path) -> None:
    _make_split(tmp_path, "test", n=3)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 10, 2], np.uint8), gz=True)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz holds label 10, outside "
                       r"0\.\.9; it is not an MNIST label file\.$"):
        load_mnist(tmp_path, "test")


def test_wrong_image_shape(tmp_path: Path) -> None:
    _make_split(tmp_path, "test", n=2)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 8, 8), np.uint8), gz=True)
    with pytest.raises(DataError, match=r"have shapes \(2, 8, 8\) and \(2,\) instead of "
                       r"\(N, 28, 28\) and \(N,\); point at the MNIST files\.$"):
        load_mnist(tmp_path, "test")


def _full_size_test_split() -> dict[str, bytes]:
    """Gzipped bodies of the two test-split files at their real MNIST sizes."""
    images = np.zeros((10000, 28, 28), dtype=np.uint8)
    images[:, 14, 14] = np.arange(10000) % 256
    labels = (np.arange(10000) % 10).astype(np.uint8)
    bodies = {}
    for name, array in zip(_NAMES["test"], (images, labels)):
        header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
        bodies[name + ".gz"] = gzip.compress(header + array.tobytes(), mtime=0)
    return bodies


def test_download_falls_back_to_second_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = _full_size_test_split()
    tried = []

    def fake_fetch(url: str) -> bytes:
        tried.append(url)
        if url.startswith(mnist.MIRRORS[0]):
            raise urllib.error.URLError("no route to host")
        return bodies[url.rsplit("/", 1)[1]]

    monkeypatch.setattr(mnist, "_fetch", fake_fetch)
    folder = tmp_path / "new"
    images, labels = load_dataset("mnist", "test", data_dir=folder, download=True)
    assert images.shape == (10000, 784) and labels.shape == (10000,)
    assert np.array_equal(np.bincount(labels), [1000] * 10)
    assert tried == [m + n + ".gz" for n in _NAMES["test"] for m in mnist.MIRRORS]
    assert sorted(p.name for p in folder.iterdir()) == sorted(bodies)

    tried.clear()  # A second load finds the files and does not fetch.
    load_mnist(folder, "test", download=True)
    assert tried == []


def test_download_rejects_wrong_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 1, 3]))
    monkeypatch.setattr(mnist, "_fetch", lambda url: small)
    with pytest.raises(DataError, match=r"\(unpacks to 9 bytes, expected 7840016\) or "):
        load_mnist(tmp_path, "test", download=True)
    assert not list(tmp_path.iterdir())


def test_download_failure_names_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str) -> bytes:
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(mnist, "_fetch", offline)
    url0, url1 = (m + "t10k-images-idx3-ubyte.gz" for m in mnist.MIRRORS)
    with pytest.raises(DataError, match=r"^Could not download t10k-images-idx3-ubyte\.gz from "
                       rf"{re.escape(url0)} \(<urlopen error offline>\) or from "
                       rf"{re.escape(url1)} \(<urlopen error offline>\); download it by hand "
                       rf"into {re.escape(str(tmp_path))} and run again\.$"):
        load_mnist(tmp_path, "test", download=True)
    assert not list(tmp_path.iterdir())


def test_download_skips_corrupt_gzip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bodies = _full_size_test_split()

    def fake_fetch(url: str) -> bytes:
        body = bodies[url.rsplit("/", 1)[1]]
        return body[: len(body) // 2] if url.startswith(mnist.MIRRORS[0]) else body

    monkeypatch.setattr(mnist, "_fetch", fake_fetch)
    images, _ = load_mnist(tmp_path, "test", download=True)
    assert images.shape == (10000, 784)


def test_download_rejects_non_gzip_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "_fetch", lambda url: b"<html>Access denied</html>")
    with pytest.raises(DataError, match=r"ubyte\.gz \(not a gzip file\) or "):
        load_mnist(tmp_path, "test", download=True)


@pytest.mark.skipif(not _REAL_DIR.is_dir(), reason=f"no MNIST files at {_REAL_DIR}")
@pytest.mark.parametrize(
    ("split", "counts"),
    [
        ("train", [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
        ("test", [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]),
    ],
)
def test_real_mnist(split: str, counts: list[int]) -> None:
    images, labels = load_mnist(_REAL_DIR, split, pad_width=32)
    assert images.shape == (sum(counts), 896) and images.dtype == np.float32
    assert np.array_equal(np.bincount(labels, minlength=10), counts)
    assert sum(counts) == {"train": 60000, "test": 10000}[split]
    assert images.min() == 0.0 and images.max() == 1.0
    assert not images.reshape(-1, 28, 32)[:, :, 28:].any()
