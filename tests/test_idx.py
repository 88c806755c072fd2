import gzip
import struct

import numpy as np
import pytest

from fmnist.core import idx


def test_round_trip_plain_and_gz(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    for name in ("images.idx", "images.gz"):
        idx.write(tmp_path / name, images)
        np.testing.assert_array_equal(idx.read_images(tmp_path / name), images)
    idx.write(tmp_path / "labels.gz", labels)
    np.testing.assert_array_equal(idx.read_labels(tmp_path / "labels.gz"), labels)


def test_header_layout_matches_the_published_format():
    data = idx.encode(np.zeros((2, 28, 28), np.uint8))
    assert struct.unpack(">IIII", data[:16]) == (2051, 2, 28, 28)
    assert struct.unpack(">II", idx.encode(np.zeros(3, np.uint8))[:8]) == (2049, 3)


def test_gz_is_reproducible(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    idx.write(tmp_path / "a.gz", labels)
    idx.write(tmp_path / "b.gz", labels)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def _write_raw(path, data: bytes, compress=True):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize(
    "make_bytes, reader, message",
    [
        (lambda: idx.encode(np.zeros(5, np.uint8)), idx.read_images, "magic number 2049, expected 2051"),
        (lambda: idx.encode(np.zeros((2, 28, 28), np.uint8)), idx.read_labels, "magic number 2051, expected 2049"),
        (lambda: idx.encode(np.zeros((2, 32, 32), np.uint8)), idx.read_images, "images are 32x32, expected 28x28"),
        (lambda: idx.encode(np.zeros((2, 28, 28), np.uint8))[:-10], idx.read_images,
         "truncated: header declares 2x28x28 = 1568 bytes of data, found 1558"),
        (lambda: idx.encode(np.zeros(5, np.uint8)) + b"xx", idx.read_labels, "has trailing bytes"),
        (lambda: idx.encode(np.array([1, 2, 12, 3, 10], np.uint8)), idx.read_labels,
         "label 12 at index 2 is outside 0-9 (2 such labels)"),
        (lambda: struct.pack(">I", 0x0D03) + b"\0" * 12, idx.read_images,
         "magic number 3331 is not an IDX file of unsigned bytes"),
        (lambda: b"\0\0", idx.read_labels, "too short for an IDX header"),
        (lambda: struct.pack(">I", 2051) + b"\0\0\0\1", idx.read_images, "header declares 3 dimensions"),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(tmp_path, make_bytes, reader, message):
    path = _write_raw(tmp_path / "bad-idx.gz", make_bytes())
    with pytest.raises(idx.IdxError) as error:
        reader(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_not_gzip_and_missing_file(tmp_path):
    path = _write_raw(tmp_path / "plain.gz", idx.encode(np.zeros(3, np.uint8)), compress=False)
    with pytest.raises(idx.IdxError, match="plain.gz: not a valid gzip file"):
        idx.read_labels(path)
    with pytest.raises(idx.IdxError, match="nothere.gz: file not found"):
        idx.read_labels(tmp_path / "nothere.gz")
