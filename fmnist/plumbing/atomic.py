"""Atomic writes: an output appears whole under its final name or not at all.

Everything is written to a temporary sibling first and renamed into place, so an interrupted
stage never leaves a half-written file or folder for DVC (or a reader) to pick up.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from fmnist.plumbing.interrupts import interrupts_deferred


def current_umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    try:
        # A Ctrl-C while the file is made is raised once `tmp` names it, so that `finally` removes it.
        with interrupts_deferred():
            # The pid in the name: `python -m fmnist.plumbing.transaction` removes what a process no longer running left
            fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp")
            os.close(fd)
            tmp = Path(tmp_name)
        tmp.chmod(0o666 & ~current_umask())  # mkstemp makes it private; the output should look like any other file
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    """Stable JSON (sorted keys, fixed indent) so identical results give identical bytes."""
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json_text(obj))
