"""Tests of the IDX reader and writer: round trips and every way a file can be broken."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from ttedge.data import read_idx, write_idx
from ttedge.errors import DataError


def _header(type_code: int, shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes()


@settings(max_examples=50, deadline=None)
@given(
    array=arrays(np.uint8, array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)),
    gz=st.booleans(),
)
def test_round_trip_any_shape(
    tmp_path_factory: pytest.TempPathFactory, array: np.ndarray, gz: bool
) -> None:
    path = tmp_path_factory.mktemp("idx") / "a.idx"
    write_idx(path, array, gz=gz)
    back = read_idx(path)
    assert back.dtype == np.uint8
    assert back.shape == array.shape
    assert np.array_equal(back, array)
    assert back.flags.writeable


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    gz_named_raw = tmp_path / "raw.gz"
    raw_named_gz = tmp_path / "packed-idx3-ubyte"
    write_idx(gz_named_raw, array, gz=False)
    write_idx(raw_named_gz, array, gz=True)
    assert raw_named_gz.read_bytes()[:2] == b"\x1f\x8b"
    assert np.array_equal(read_idx(gz_named_raw), array)
    assert np.array_equal(read_idx(raw_named_gz), array)


def test_file_layout_is_big_endian_header_then_c_order(tmp_path: Path) -> None:
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    path = tmp_path / "a.idx"
    write_idx(path, array)
    header = b"\x00\x00\x08\x02" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x03"
    assert path.read_bytes() == header + bytes(range(6))


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    array = np.ones((3, 3), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array, gz=True)
    write_idx(tmp_path / "b.gz", array, gz=True)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    assert not list(tmp_path.glob("*.part"))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(DataError, match=f"^IDX file {re.escape(str(path))} does not exist; "
                       r"check the path\.$"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path: Path, gz: bool) -> None:
    payload = _header(0x08, (2, 3)) + bytes(5)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(payload) if gz else payload)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))} holds 5 data bytes but its "
                       r"header declares shape \(2, 3\) \(6 bytes\); the file is truncated or "
                       r"corrupt, so download it again\.$"):
        read_idx(path)


def test_oversized_data(tmp_path: Path) -> None:
    path = tmp_path / "a.idx"
    path.write_bytes(_header(0x08, (4,)) + bytes(7))
    with pytest.raises(DataError, match=r"holds 7 data bytes but its header declares shape "
                       r"\(4,\) \(4 bytes\)"):
        read_idx(path)


def test_too_short(tmp_path: Path) -> None:
    path = tmp_path / "a.idx"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))} is too short to be an IDX "
                       r"file \(2 bytes\); it is truncated, so download it again\.$"):
        read_idx(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "a.idx"
    path.write_bytes(_header(0x08, (60000, 28, 28))[:9])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))} ends inside its 16-byte "
                       r"header; it is truncated, so download it again\.$"):
        read_idx(path)


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "a.idx"
    path.write_bytes(b"PK\x03\x04" + bytes(8))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))} is not an IDX file \(it "
                       r"starts with bytes 50 4b instead of 00 00\); point to an MNIST IDX "
                       r"file\.$"):
        read_idx(path)


@pytest.mark.parametrize(("code", "name"), [(0x0D, "float"), (0x0C, "int"), (0x42, "unknown")])
def test_unsupported_type_code(tmp_path: Path, code: int, name: str) -> None:
    path = tmp_path / "a.idx"
    path.write_bytes(_header(code, (1,)) + bytes(4))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))} holds IDX type code "
                       rf"0x{code:02X} \({name}\); only 0x08 \(unsigned byte\) is supported\.$"):
        read_idx(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "a.gz"
    packed = gzip.compress(_header(0x08, (100,)) + bytes(range(100)))
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))} is a corrupt gzip file "
                       r"\(.+\); delete it and download it again\.$"):
        read_idx(path)


def test_gzip_with_bad_checksum(tmp_path: Path) -> None:
    path = tmp_path / "a.gz"
    packed = bytearray(gzip.compress(_header(0x08, (100,)) + bytes(range(100))))
    packed[-8] ^= 0xFF  # The CRC32 of the uncompressed data sits in the trailer's first 4 bytes.
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=r"is a corrupt gzip file \(.*CRC.*\); delete it"):
        read_idx(path)


def test_gzip_with_garbled_stream(tmp_path: Path) -> None:
    path = tmp_path / "a.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(6) + b"\xff" * 40)
    with pytest.raises(DataError, match=r"is a corrupt gzip file"):
        read_idx(path)


def test_write_rejects_other_dtypes(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^write_idx needs a uint8 array, got int64; convert it "
                       r"with array\.astype\(np\.uint8\) first\.$"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.int64))
    assert not list(tmp_path.iterdir())
