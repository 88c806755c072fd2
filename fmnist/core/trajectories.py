"""Variants that share a trajectory are trained once (DESIGN.md: "Work is done once").

Two variants share a trajectory when everything that decides their weights, epoch by epoch, is the same: the
layers, the optimizer, the batch size, the augmentation and the number of seeds (train's seed, backend and
distribution are shared by every variant). They may differ in the number of epochs, in whether validation is scored
(that changes no weight), and in callbacks whose effect is a choice among the epochs trained: ModelCheckpoint
best-only and EarlyStopping with or without restore_best_weights. In params.yaml, for example, relu100 is the first
5 epochs of relu100_val20, and dropout30_saved, checkpoint and early_stopping are dropout30 up to the epoch each one
keeps.

Such a family is worked out from params.yaml alone (fmnist.schema.training.family; `python -m fmnist.schema` lists
them). Its longest trajectory is trained once, by whichever member's train@ stage runs first, with every epoch's
weights (and the optimizer's state) kept; each member's files are then made from it, the epochs its callbacks keep
chosen by Keras's own rules (replicates.replay_callbacks): byte for byte what training the member alone gives
(tests/test_trajectories.py holds that against `python -m stages.train <variant> --alone`).

The trajectory is kept between stages in .dvc/tmp/trajectories/<fingerprint>/, <fingerprint> hashing everything it
depends on: the family's training parameters, the prepared data, the training code, the library versions and the
environment variables that steer TensorFlow, XLA and JAX. It is a memo, not an output: a stage's results are the
same with or without it (only its time differs), so DVC's view is unchanged: a stage reruns exactly when its own
params, code or data change. A clone, a temporary experiment or `dvc repro -f` without it trains it again.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from fmnist.schema.training import TrainParams, Variant, trajectory_of

MEMO_DIR = Path(".dvc/tmp/trajectories")  # in the repository a stage runs in
KEPT_MEMOS = 12  # the most recently used; older ones are deleted (a family's memo is 10-50 MB)
# The code a trajectory's numbers come from: a change to any of it is a new fingerprint.
PROJECT = Path(__file__).resolve().parents[2]
CODE = ("fmnist/core", "fmnist/schema", "fmnist/compat", "stages/train.py")
STEERING = ("TF_", "XLA_", "JAX_", "KERAS_", "OMP_", "MKL_", "OPENBLAS_", "CUDA_")  # env vars that move rounding


def epochs_needed(members: dict[str, Variant]) -> int:
    return max(spec.epochs for spec in members.values())


def validated(members: dict[str, Variant]) -> bool:
    return any(spec.validation for spec in members.values())


def done(spec: Variant, history: dict[str, list[float]], epochs: int) -> bool:
    """Whether the epochs trained so far settle `spec`'s result: its epochs are reached, or its EarlyStopping fired."""
    from fmnist.core.replicates import replay_callbacks  # keras: only where a stage trains

    if epochs >= spec.epochs:
        return True
    return spec.callbacks.early_stopping is not None and replay_callbacks(spec, history).stopped_epoch is not None


def fingerprint(members: dict[str, Variant], shared: TrainParams, seeds: list[int], part: str,
                data: list[np.ndarray]) -> str:
    """A name for one part ('chapter': seed 42's fit, 'stack': the other seeds) of a family's trajectory that
    changes whenever anything its numbers depend on does, `data` (the training and validation arrays) included.
    Not the number of epochs: a longer run of the same trajectory begins with the shorter one, so a kept one
    serves every member whose result it settles (done())."""
    spec = next(iter(members.values()))
    digest = hashlib.sha256(json.dumps({
        "part": part, "trajectory": trajectory_of(spec, shared), "seeds": seeds, "validated": validated(members),
        "shared": shared.model_dump(),
        "versions": {package: _version(package) for package in ("keras", "tensorflow", "jax", "jaxlib", "numpy")},
        "machine": [platform.machine(), platform.processor(), sys.version],
        "environment": sorted((key, value) for key, value in os.environ.items() if key.startswith(STEERING)),
    }, sort_keys=True).encode())
    for path in sorted(path for root in CODE for path in
                       ((PROJECT / root).rglob("*.py") if (PROJECT / root).is_dir() else [PROJECT / root])):
        digest.update(path.relative_to(PROJECT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for array in data:
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))  # the same bytes as tobytes(), uncopied
    return digest.hexdigest()[:32]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def recall(key: str) -> tuple[dict, dict[str, np.ndarray]] | None:
    """A kept trajectory part: (its record, its arrays), or None where there is none (or it is unreadable)."""
    folder = MEMO_DIR / key
    try:
        record = json.loads((folder / "record.json").read_text())
        with np.load(folder / "arrays.npz", allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError):
        return None
    os.utime(folder)  # recently used: kept longer
    return record, arrays


def keep(key: str, record: dict, arrays: dict[str, np.ndarray]) -> None:
    """Store a trajectory part under `key`, whole or not at all (written aside, then renamed into place), and
    delete the least recently used beyond KEPT_MEMOS."""
    MEMO_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=MEMO_DIR))
    try:
        with open(staging / "arrays.npz", "wb") as handle:
            np.savez(handle, **arrays)
        (staging / "record.json").write_text(json.dumps(record))
        shutil.rmtree(MEMO_DIR / key, ignore_errors=True)
        os.replace(staging, MEMO_DIR / key)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    memos = sorted((path for path in MEMO_DIR.iterdir() if path.is_dir() and not path.name.startswith(".")),
                   key=lambda path: path.stat().st_mtime, reverse=True)
    for stale in memos[KEPT_MEMOS:]:
        shutil.rmtree(stale, ignore_errors=True)
