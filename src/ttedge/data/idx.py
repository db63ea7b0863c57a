"""The IDX file format that MNIST ships in, raw or gzipped.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 size per dimension, then the values in C order. Only type code 0x08 (unsigned
byte) is supported, which is all MNIST uses. Gzip is detected by the file's first two bytes
(1f 8b), never by its name, so a file renamed by hand still loads.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from ttedge.errors import DataError

__all__ = ["read_idx", "write_idx", "is_gzip", "gunzip", "write_bytes_atomic"]

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
# Every type code the format defines, so that a rejected file is named precisely.
_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short",
    0x0C: "int",
    0x0D: "float",
    0x0E: "double",
}


def is_gzip(data: bytes) -> bool:
    """Whether `data` starts with the gzip magic bytes 1f 8b."""
    return data[:2] == _GZIP_MAGIC


def gunzip(data: bytes, source: str | os.PathLike[str]) -> bytes:
    """Decompress gzipped `data`, raising `DataError` naming `source` if it is corrupt.

    Args:
        data: The whole gzip stream.
        source: The file or URL it came from, used only in the error message.
    """
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{source} is a corrupt gzip file ({exc}); delete it and download it again."
        ) from exc


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an unsigned-byte IDX file, gzipped or raw.

    Args:
        path: The file to read; gzip is detected from its content.

    Returns:
        A writable uint8 array with the shape the header declares, e.g. (60000, 28, 28) for the
        MNIST training images or (60000,) for their labels.

    Raises:
        DataError: If the file is missing, not gzip-valid, not IDX, not unsigned bytes, or if
            its length disagrees with the shape in its header.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"IDX file {path} does not exist; check the path.") from exc
    data = gunzip(raw, path) if is_gzip(raw) else raw

    if len(data) < 4:
        raise DataError(
            f"{path} is too short to be an IDX file ({len(data)} bytes); "
            "it is truncated, so download it again."
        )
    if data[:2] != b"\x00\x00":
        raise DataError(
            f"{path} is not an IDX file (it starts with bytes {data[:2].hex(' ')} instead of "
            "00 00); point to an MNIST IDX file."
        )
    type_code, ndim = data[2], data[3]
    if type_code != _UBYTE:
        name = _TYPE_NAMES.get(type_code, "unknown")
        raise DataError(
            f"{path} holds IDX type code 0x{type_code:02X} ({name}); "
            "only 0x08 (unsigned byte) is supported."
        )
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise DataError(
            f"{path} ends inside its {header_bytes}-byte header; "
            "it is truncated, so download it again."
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header_bytes
    if actual != expected:
        raise DataError(
            f"{path} holds {actual} data bytes but its header declares shape {shape} "
            f"({expected} bytes); the file is truncated or corrupt, so download it again."
        )
    # A copy, because frombuffer over `bytes` gives a read-only view.
    values = np.frombuffer(data, dtype=np.uint8, count=expected, offset=header_bytes)
    return values.reshape(shape).copy()


def write_idx(path: str | os.PathLike[str], array: np.ndarray, gz: bool = False) -> None:
    """Write a uint8 array as an IDX file, gzipped if `gz`, replacing `path` atomically.

    Args:
        path: The file to write.
        array: uint8 values of any shape with at most 255 dimensions, each below 2**32.
        gz: Whether to gzip the file (with a zero timestamp, so the bytes are reproducible).

    Raises:
        DataError: If the array is not uint8 or its shape cannot be stored in an IDX header.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise DataError(
            f"write_idx needs a uint8 array, got {array.dtype}; "
            "convert it with array.astype(np.uint8) first."
        )
    if array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise DataError(
            f"Shape {array.shape} does not fit an IDX header, which allows at most 255 "
            "dimensions of fewer than 2**32 entries each."
        )
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array).tobytes()
    write_bytes_atomic(path, gzip.compress(payload, mtime=0) if gz else payload)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`.

    A reader never sees a half-written file, even if the process dies mid-write.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
