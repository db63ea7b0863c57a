"""MNIST from its four standard IDX files, optionally downloaded, with rows zero-padded on request.

METHOD.md pads each 28x28 image to 28x32 = 896 pixels so that the input size factorizes as
7*4*2*16 for the tensor-train layer; `pad_width=32` does that.
"""

from __future__ import annotations

import http.client
import os
import urllib.request
from pathlib import Path

import numpy as np

from ttedge.data.idx import gunzip, is_gzip, read_idx, write_bytes_atomic
from ttedge.errors import DataError

__all__ = ["NUM_CLASSES", "SPLITS", "SIDE", "MIRRORS", "check_split", "load_mnist"]

NUM_CLASSES = 10
"""Digit classes 0..9, shared by MNIST and the 8x8 digits."""

SPLITS = ("train", "test")

SIDE = 28
"""MNIST images are SIDE x SIDE pixels."""

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Where `download=True` looks, in order; each holds the four files with a `.gz` suffix."""

# (images, labels) file names per split, without the `.gz` suffix.
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Uncompressed sizes in bytes, to reject a mirror's error page or a cut-off transfer.
_SIZES = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}
_TIMEOUT_S = 60.0


def check_split(split: str) -> None:
    """Raise `DataError` unless `split` is "train" or "test"."""
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}; use 'train' or 'test'.")


def _fetch(url: str) -> bytes:
    """The body of `url`; the one place that touches the network, so tests replace it."""
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
        return response.read()


def _problem_with(body: bytes, expected: int) -> str | None:
    """Why a fetched body is not a gzipped file of `expected` unpacked bytes, or None if it is."""
    if not is_gzip(body):
        return "not a gzip file"
    try:
        size = len(gunzip(body, "download"))
    except DataError:
        return "a corrupt gzip file"
    if size != expected:
        return f"unpacks to {size} bytes, expected {expected}"
    return None


def _download(folder: Path, name: str) -> Path:
    """Fetch `name`.gz from the first mirror that serves a file of the right size.

    Returns:
        The path of the written file, `folder / (name + ".gz")`.
    """
    failures: list[str] = []
    for mirror in MIRRORS:
        url = f"{mirror}{name}.gz"
        try:
            body = _fetch(url)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{url} ({exc})")
            continue
        problem = _problem_with(body, _SIZES[name])
        if problem is not None:
            failures.append(f"{url} ({problem})")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.gz"
        write_bytes_atomic(target, body)
        return target
    raise DataError(
        f"Could not download {name}.gz from {' or from '.join(failures)}; "
        f"download it by hand into {folder} and run again."
    )


def _locate(folder: Path, name: str, download: bool) -> Path:
    """The file `name`.gz or `name` in `folder`, downloading it if missing and `download`."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    if download:
        return _download(folder, name)
    raise DataError(
        f"MNIST file {name} (or {name}.gz) is missing from {folder}; pass --data.download=true "
        "or point --data.data_dir at a folder holding the four MNIST IDX files."
    )


def load_mnist(
    data_dir: str | os.PathLike[str],
    split: str = "train",
    download: bool = False,
    pad_width: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one MNIST split from `data_dir`.

    Args:
        data_dir: Folder holding the IDX files, each either gzipped (`.gz`) or raw.
        split: "train" (60000 images) or "test" (10000 images).
        download: Fetch missing files from `MIRRORS` into `data_dir`.
        pad_width: If given, append zero columns to each image row up to this many pixels,
            e.g. 32 turns 28x28 into 28x32 = 896 inputs; at least 28.

    Returns:
        images: float32 (N, 28 * W') in [0, 1] (pixel value / 255), rows flattened in order,
            where W' is `pad_width` or 28.
        labels: int64 (N,) in 0..9.

    Raises:
        DataError: For a bad split or pad_width, missing or corrupt files, a failed download,
            or image and label files that do not belong together.
    """
    check_split(split)
    if pad_width is not None and pad_width < SIDE:
        raise DataError(
            f"pad_width={pad_width} is narrower than the {SIDE}-pixel MNIST rows; "
            f"pass at least {SIDE}, or no pad_width."
        )
    folder = Path(data_dir)
    image_name, label_name = _FILES[split]
    image_path = _locate(folder, image_name, download)
    label_path = _locate(folder, label_name, download)
    raw_images, raw_labels = read_idx(image_path), read_idx(label_path)

    if raw_images.ndim != 3 or raw_images.shape[1:] != (SIDE, SIDE) or raw_labels.ndim != 1:
        raise DataError(
            f"{image_path} and {label_path} have shapes {raw_images.shape} and "
            f"{raw_labels.shape} instead of (N, {SIDE}, {SIDE}) and (N,); point at the MNIST files."
        )
    n = raw_images.shape[0]
    if n != raw_labels.shape[0]:
        raise DataError(
            f"{image_path} holds {n} images but {label_path} holds {raw_labels.shape[0]} "
            "labels; the two files do not belong together, so download them again."
        )
    if n and int(raw_labels.max()) >= NUM_CLASSES:
        raise DataError(
            f"{label_path} holds label {int(raw_labels.max())}, outside 0..9; "
            "it is not an MNIST label file."
        )
    width = SIDE if pad_width is None else pad_width
    images = np.zeros((n, SIDE, width), dtype=np.float32)  # (N, 28, W')
    images[:, :, :SIDE] = raw_images
    images /= np.float32(255)
    return images.reshape(n, SIDE * width), raw_labels.astype(np.int64)
