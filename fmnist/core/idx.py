"""IDX codec (the format of the MNIST family), with the checks Fashion-MNIST's files must pass.

An IDX file is a big-endian header -- magic number ``0x0000TTNN`` (TT = data type, 0x08 for
unsigned bytes; NN = number of dimensions), then one uint32 per dimension -- followed by the data.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from fmnist.plumbing.errors import StageError

UBYTE = 0x08
IMAGES_MAGIC = 0x0803  # 2051: ubyte, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x0801  # 2049: ubyte, 1 dimension (count)
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


class IdxError(StageError):
    """A malformed IDX file; the message names the file and the problem."""


def encode(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes."""
    if array.dtype != np.uint8:
        raise ValueError(f"only uint8 arrays can be encoded, got {array.dtype}")
    header = struct.pack(">I", (UBYTE << 8) | array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def decode(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes of unsigned bytes into an array of the shape the header declares."""
    if len(data) < 4:
        raise IdxError(f"{source}: too short for an IDX header ({len(data)} bytes)")
    (magic,) = struct.unpack(">I", data[:4])
    data_type, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    if magic >> 16 != 0 or data_type != UBYTE or ndim == 0:
        raise IdxError(
            f"{source}: magic number {magic} is not an IDX file of unsigned bytes "
            f"(expected {IMAGES_MAGIC} for images or {LABELS_MAGIC} for labels)"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IdxError(f"{source}: header declares {ndim} dimensions but the file ends at byte {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header_size
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        dims = "x".join(map(str, shape))
        raise IdxError(f"{source}: {what}: header declares {dims} = {expected} bytes of data, found {actual}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def read(path: str | os.PathLike) -> tuple[int, np.ndarray]:
    """Read an IDX file (gzip-compressed when its name ends in .gz); return (magic, array)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IdxError(f"{path}: file not found") from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise IdxError(f"{path}: not a valid gzip file ({error})") from None
    array = decode(raw, str(path))
    magic = (UBYTE << 8) | array.ndim
    return magic, array


def write(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an IDX file, gzip-compressed (reproducibly: no timestamp) when the name ends in .gz."""
    data = encode(array)
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    Path(path).write_bytes(data)


def read_images(path: str | os.PathLike) -> np.ndarray:
    """Read an images file: magic 2051, each image 28x28. Returns uint8 (count, 28, 28)."""
    magic, images = read(path)
    if magic != IMAGES_MAGIC:
        raise IdxError(f"{path}: magic number {magic}, expected {IMAGES_MAGIC} (an images file)")
    if images.shape[1:] != IMAGE_SHAPE:
        found = "x".join(map(str, images.shape[1:]))
        raise IdxError(f"{path}: images are {found}, expected 28x28")
    return images


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read a labels file: magic 2049, every label in 0-9. Returns uint8 (count,)."""
    magic, labels = read(path)
    if magic != LABELS_MAGIC:
        raise IdxError(f"{path}: magic number {magic}, expected {LABELS_MAGIC} (a labels file)")
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise IdxError(
            f"{path}: label {int(labels[bad[0]])} at index {int(bad[0])} is outside 0-{NUM_CLASSES - 1} "
            f"({bad.size} such labels)"
        )
    return labels
