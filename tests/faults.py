"""Fault injection on a real train@<variant> stage: `python tests/faults.py <variant> <fail|sigint>`, run in a
DVC repository whose train@<variant> outputs are up to date and whose params.yaml has since changed.

Every filesystem write the stage makes inside the repository (an open for writing, a rename, a removal, a new
folder: CPython's audit events) is counted. A probe run counts them, n in all; then for each k in 1..n the stage
runs again from the previous outputs with the k-th write failing (OSError) or with SIGINT delivered there.
After each run it records which outputs are left (all previous, all new or a mix), what is stray (temporaries,
backups, journals), what the next run repaired (fmnist.plumbing.transaction.recover, the first thing a run does), and
whether DVC's status agrees. The stage runs in this one process, so TensorFlow starts once, not 2n times,
and its step functions run eagerly (trace_nothing).
Prints one JSON line: {"writes": [...], "runs": [...]}; tests/test_faults.py asserts on it.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from fmnist.compat import experiments as compat
from fmnist.plumbing import paths, transaction

ROOT = Path.cwd().resolve()
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
WRITE_EVENTS = {"os.rename", "os.replace", "os.remove", "os.rmdir", "os.mkdir", "os.truncate"}


class Injector:
    """An audit hook that counts the stage's writes in the repository and acts at the k-th one."""

    def __init__(self):
        self.active = False
        self.count = 0
        self.at: int | None = None
        self.mode = ""
        self.seen: list[str] = []

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = args
            if path is None or isinstance(path, int) or not (flags & WRITE_FLAGS or (mode and set(mode) & set("wax+"))):
                return
        elif event in WRITE_EVENTS:
            path = args[0]
        else:
            return
        where = Path(os.fsdecode(path)) if not isinstance(path, int) else None
        if where is None or "__pycache__" in where.parts:
            return
        resolved = (Path.cwd() / where) if not where.is_absolute() else where
        try:
            relative = resolved.resolve().relative_to(ROOT)
        except ValueError:
            return  # outside the repository (the system's temporary folder, caches)
        if relative.parts[:2] == (".dvc", "tmp") or relative.parts[:1] == (".git",):
            return
        self.count += 1
        self.seen.append(f"{event} {relative}")
        if self.count == self.at:
            self.active = False  # one fault per run
            if self.mode == "fail":
                raise OSError(errno.EIO, f"injected failure of write {self.count} ({event} {relative})")
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # as a Ctrl-C: the main thread's


def stage_outputs(variant: str) -> list[Path]:
    return [paths.MODELS_DIR / variant, paths.HISTORY_DIR / variant, paths.metrics_file(variant),
            paths.details_file(variant), paths.timing_file(variant), paths.CONFUSION_DIR / f"{variant}.csv"]


def snapshot(variant: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for output in stage_outputs(variant):
        found = [output] if output.is_file() else sorted(p for p in output.rglob("*") if p.is_file())
        files.update({str(p): p.read_bytes() for p in found})
    return files


def restore(variant: str, files: dict[str, bytes]) -> None:
    for output in stage_outputs(variant):
        if output.is_dir():
            shutil.rmtree(output)
        elif output.exists():
            output.unlink()
    for name, data in files.items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_bytes(data)


def strays(variant: str) -> list[str]:
    """Temporaries, backups and journals: anything hidden beside the outputs, and the journal folder."""
    found = [str(p) for folder in {o.parent for o in stage_outputs(variant)} if folder.exists()
             for p in folder.iterdir() if p.name.startswith(f".{variant}")]
    return found + ([str(transaction.JOURNAL_DIR)] if transaction.JOURNAL_DIR.exists() else [])


def run_stage(variant: str) -> str:
    """main() of stages.train as `python -m stages.train <variant>` runs it; how it ended."""
    from stages import train

    sys.argv = ["stages.train", variant]
    try:
        train.main()
        for _ in range(1000):  # a SIGINT from the last write is handled by now, inside this try
            pass
        return "ok"
    except KeyboardInterrupt:
        return "interrupted"
    except Exception as error:  # StageError, or the injected OSError from inside a library
        return f"failed: {type(error).__name__}: {error}"


def classify(now: dict[str, bytes], old: dict[str, bytes], new: dict[str, bytes], volatile: set[str]) -> str:
    """'old' when every file is the previous run's; 'new' when the files are those of a clean new run (byte for
    byte, but for the files two clean runs write differently, which must differ from the previous run's)."""
    if now == old:
        return "old"
    if set(now) == set(new) and all(now[f] == new[f] if f not in volatile else now[f] != old.get(f) for f in now):
        return "new"
    return "mixed"


def outs_status(stage: str):
    """A function telling whether DVC's status of the stage reports changed outputs (its params have changed in
    any case). The stage is read from dvc.yaml and dvc.lock once, which nothing here changes; each call is
    DVC's own Stage.status, as `dvc status <stage>` calls it: the outputs hashed afresh. (`dvc status` whole
    parses every DVC file again: 0.34 s a call, half as long as a run of the stage here, 0.67 s.)"""
    repo = compat.open_repo(str(ROOT))
    (found,) = repo.stage.collect_granular(stage)

    def outs_changed() -> bool:
        with repo.lock:  # Stage.status asserts it, as DVC's commands take it
            entries = found.stage.status().get(stage, [])
        return any("changed outs" in entry for entry in entries if isinstance(entry, dict))

    return outs_changed


def trace_nothing() -> None:
    """Keras's step functions run eagerly in this process: traced anew for each of the ~90 runs, they took
    about 40% of the harness's time. The writes under test are the stage's own Python code's, the same either
    way (the stage's main() still imports keras through backend.use, which finds it imported with this backend)."""
    from fmnist.core import backend
    from fmnist.plumbing import params
    from fmnist.schema.training import TrainParams

    chosen = params.load(TrainParams).backend
    backend.use(chosen)
    if chosen == "tensorflow":
        import tensorflow as tf

        tf.config.run_functions_eagerly(True)


def main() -> None:
    variant, mode = sys.argv[1], sys.argv[2]
    stage = paths.stage_for(variant)
    trace_nothing()
    injector = Injector()
    sys.addaudithook(injector)
    old = snapshot(variant)
    outs_changed = outs_status(stage)
    assert not outs_changed(), "the stage's outputs must match dvc.lock before the faults"

    def probe() -> dict[str, bytes]:
        injector.active, injector.count, injector.at, injector.seen = True, 0, None, []
        assert run_stage(variant) == "ok"
        injector.active = False
        made = snapshot(variant)
        restore(variant, old)
        return made

    new, again = probe(), probe()
    writes = list(injector.seen)
    volatile = {f for f in new if new[f] != again.get(f)}
    runs = []
    for k in range(1, len(writes) + 1):
        injector.active, injector.count, injector.at, injector.mode, injector.seen = True, 0, k, mode, []
        ended = run_stage(variant)
        injector.active = False
        left_now, stray_now = classify(snapshot(variant), old, new, volatile), strays(variant)
        repaired = transaction.recover(stage)  # what the next run of the stage does first
        left_after = classify(snapshot(variant), old, new, volatile)
        runs.append({"k": k, "write": writes[k - 1], "ended": ended, "left": left_now, "stray": stray_now,
                     "repaired": repaired, "left_after_repair": left_after, "stray_after_repair": strays(variant),
                     "dvc_outs_changed": outs_changed()})
        restore(variant, old)
    print(json.dumps({"writes": writes, "volatile": sorted(volatile), "runs": runs}))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # skip TensorFlow's teardown
