"""The data between stages: raw IDX files -> scaled arrays -> train/validation/test split."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist.core import idx
from fmnist.plumbing.errors import StageError
from fmnist.plumbing.paths import PREPARED_DIR, RAW_DIR

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FILE_NAMES = tuple(name for pair in FILES.values() for name in pair)
SPLITS = ("train", "val", "test")
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass(frozen=True)
class Split:
    """Scaled images (float, N x 28 x 28, in [0, 1]) and their labels (uint8, N)."""

    x: np.ndarray
    y: np.ndarray


def load_raw(subset: str, raw_dir: str | os.PathLike = RAW_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Decode and validate one subset ('train' or 'test') of the raw files: uint8 images, labels."""
    images_file, labels_file = (Path(raw_dir) / name for name in FILES[subset])
    images = idx.read_images(images_file)
    labels = idx.read_labels(labels_file)
    if len(images) != len(labels):
        raise idx.IdxError(f"{images_file} holds {len(images)} images but {labels_file} holds {len(labels)} labels")
    return images, labels


def image_counts(raw_dir: str | os.PathLike = RAW_DIR) -> dict[str, int]:
    """{'train': 60000, 'test': 10000}: how many images each raw subset holds, from its labels file (small)."""
    return {subset: len(idx.read_labels(Path(raw_dir) / FILES[subset][1])) for subset in FILES}


def split_sizes(total: int, test_size: float) -> tuple[int, int]:
    """(train, validation) sizes split_train_val gives: train_test_split's rule for a fractional test_size,
    ceil(test_size * total) to validation."""
    held_out = math.ceil(test_size * total)
    return total - held_out, held_out


def scale(images: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Pixels 0-255 -> 0.0-1.0, as the chapter does (train_input / 255.0)."""
    return images.astype(dtype) / dtype(255)


def split_train_val(images: np.ndarray, labels: np.ndarray, test_size: float, random_state: int) -> tuple[Split, Split]:
    """The chapter's hold-out split: train_test_split(test_size, random_state); the chapter's 0.2 and 42 give
    48000/12000 (split_sizes)."""
    from sklearn.model_selection import train_test_split  # 0.7 s to import: only prepare needs it

    x_train, x_val, y_train, y_val = train_test_split(images, labels, test_size=test_size, random_state=random_state)
    return Split(x_train, y_train), Split(x_val, y_val)


def save_prepared(splits: dict[str, Split], folder: Path) -> None:
    """Write each split as <folder>/<name>.npz (the prepare stage's transaction makes the folder PREPARED_DIR)."""
    for name, split in splits.items():
        with open(folder / f"{name}.npz", "wb") as handle:  # a handle stops numpy from appending '.npz'
            np.savez(handle, x=split.x, y=split.y)


def load_prepared(name: str, prepared_dir: str | os.PathLike = PREPARED_DIR) -> Split:
    """Read one prepared split ('train', 'val' or 'test')."""
    path = Path(prepared_dir) / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return Split(arrays["x"], arrays["y"])
    except FileNotFoundError:
        raise StageError(f"{path}: not found; run `dvc repro prepare` first") from None
    except (OSError, ValueError, KeyError) as error:
        raise StageError(f"{path}: unreadable prepared split ({error}); run `dvc repro prepare` again") from None
