"""A stage's outputs as one transaction: after a failure, a Ctrl-C or a crash at any moment, its outputs are
all the previous ones or all the new ones, and nothing stray is left.

A stage asks for each output by its final path and gets a temporary sibling to write (`folder`, `file`,
`write_*`). When the block ends without error, `commit` swaps them all in: each previous output is renamed
aside, each new one renamed into place, then the previous ones are deleted. A journal,
.transactions/<stage>.json, records every name before it is made, so that whatever happens:

- an error or Ctrl-C before the commit removes the temporaries: the previous outputs stay;
- the commit holds Ctrl-C, SIGTERM and SIGHUP until it is done (fmnist.plumbing.interrupts.interrupts_deferred), so a
  stop during it leaves the new outputs; one that came earlier and was lost (interrupts.check) keeps the old;
- a rename that fails during the commit puts back what was already swapped: the previous outputs;
- a crash (power, SIGKILL) leaves the journal, and the stage's next run repairs it first, in one line: back
  to the previous outputs if the swap was under way, forward if it had finished. `make repro` and `make
  reproduce` repair every stage's before DVC starts (`python -m fmnist.plumbing.transaction`), and remove the
  temporaries that stopped processes left (theirs and fmnist.plumbing.atomic's: each name carries its pid).
  Meanwhile git and DVC ignore them (.gitignore, .dvcignore), so they change no folder DVC hashes.

Single files outside a stage's transaction (a download, predict's exports) use fmnist.plumbing.atomic.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from fmnist.plumbing import atomic, interrupts
from fmnist.plumbing.errors import StageError
from fmnist.plumbing.interrupts import interrupts_deferred

JOURNAL_DIR = Path(".transactions")  # relative to the repository root, where stages run; git- and DVC-ignored

WRITING, SWAPPING, DONE = "writing", "swapping", "done"  # the journal's states, in order


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _write_journal(journal: Path, record: dict) -> None:
    """Replace the journal in one rename (a half-written journal would be worse than none)."""
    if not journal.parent.is_dir():
        journal.parent.mkdir(parents=True)
    partial = journal.with_name(f".{journal.name}.tmp")
    partial.write_text(json.dumps(record, indent=1))
    os.replace(partial, journal)


def _drop_journal(journal: Path) -> bool:
    """Remove the journal, a partial one, and the folder once empty; whether there was anything to remove."""
    found = False
    for path in (journal, journal.with_name(f".{journal.name}.tmp")):
        if path.exists():
            path.unlink()
            found = True
    if journal.parent.is_dir() and not any(journal.parent.iterdir()):  # no other stage's journal is there
        journal.parent.rmdir()
        found = True
    return found


def _journal_of(stage: str) -> Path:
    return JOURNAL_DIR / f"{stage.replace('/', '_')}.json"


def recover(stage: str) -> str | None:
    """Repair what an interrupted run of `stage` left (nothing when it left no journal); returns the one line
    that says what was done, or None."""
    journal = _journal_of(stage)
    with interrupts_deferred():
        if not journal.exists():  # at most a partial first journal, or the empty folder of a finished one
            if _drop_journal(journal):
                return f"repaired: removed what the last run of {stage} left of its journal"
            return None
        try:
            record = json.loads(journal.read_text())
        except ValueError:  # cannot happen with _write_journal's rename; say so rather than guess
            raise StageError(f"{journal}: unreadable journal of an interrupted run of {stage}; check its outputs "
                             "by hand, then delete it") from None
        outputs = [{key: Path(value) if key != "existed" else value for key, value in entry.items()}
                   for entry in record["outputs"]]
        if record["state"] == DONE:
            for entry in outputs:
                _remove(entry["backup"])
            _drop_journal(journal)
            return f"repaired: the last run of {stage} was stopped while it tidied up; its new outputs stand"
        _roll_back(outputs, swapping=record["state"] == SWAPPING)
        _drop_journal(journal)
        if record["state"] == SWAPPING:
            return (f"repaired: the last run of {stage} was stopped while it swapped its outputs in; "
                    "the previous outputs are back")
        return f"repaired: the last run of {stage} was stopped before it finished; its temporary files are removed"


def _roll_back(outputs: list[dict], swapping: bool) -> None:
    """Back to the previous outputs from any point of writing (temporaries only) or swapping. Safe to repeat."""
    for entry in reversed(outputs):
        final, tmp, backup = entry["final"], entry["tmp"], entry["backup"]
        if swapping and os.path.lexists(backup):  # the previous output was moved aside: the new one (if in) goes
            if os.path.lexists(final):
                _remove(final)
            os.replace(backup, final)
        elif swapping and not entry["existed"] and os.path.lexists(final) and not os.path.lexists(tmp):
            _remove(final)  # there was none before, and the new one had been renamed in
        if os.path.lexists(tmp):
            _remove(tmp)


class Transaction:
    """The outputs of one run of a stage. Use as `with Transaction("train@relu100") as outputs:`."""

    def __init__(self, stage: str):
        self.stage = stage
        self.journal = _journal_of(stage)
        self.outputs: list[dict] = []  # final, tmp, backup (Paths), existed (whether final was there before)

    def __enter__(self) -> "Transaction":
        repaired = recover(self.stage)
        if repaired:
            print(repaired, file=sys.stderr)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None and interrupts.received is None:
            self.commit()
        else:
            self.abort()  # an error, or a stop whose KeyboardInterrupt was lost: the previous outputs stay
            interrupts.check()

    def _record(self, state: str) -> None:
        _write_journal(self.journal, {"stage": self.stage, "state": state, "outputs": [
            {key: str(value) if isinstance(value, Path) else value for key, value in entry.items()}
            for entry in self.outputs]})

    def _add(self, path: str | os.PathLike, make_folder: bool) -> Path:
        """Journal the output's temporary name, then make it if it is a folder (a file is made by its first write)."""
        final = Path(path)
        if any(entry["final"] == final for entry in self.outputs):
            raise ValueError(f"{final}: already an output of this transaction")
        final.parent.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}-{len(self.outputs)}"
        entry = {"final": final, "tmp": final.with_name(f".{final.name}.{tag}.tmp"),
                 "backup": final.with_name(f".{final.name}.{tag}.old"), "existed": os.path.lexists(final)}
        with interrupts_deferred():  # the journal names the temporary before it exists, so no Ctrl-C orphans it
            self.outputs.append(entry)
            self._record(WRITING)
            if make_folder:
                entry["tmp"].mkdir()
                entry["tmp"].chmod(0o777 & ~atomic.current_umask())
        return entry["tmp"]

    def folder(self, path: str | os.PathLike) -> Path:
        """An empty temporary folder that becomes `path` at commit."""
        return self._add(path, make_folder=True)

    def folder_of(self, path: str | os.PathLike) -> Path:
        """The temporary that stands for output `path` until the commit (to read back what was written)."""
        return next(entry["tmp"] for entry in self.outputs if entry["final"] == Path(path))

    def write_bytes(self, path: str | os.PathLike, data: bytes) -> None:
        """`data` as the file that becomes `path` at commit."""
        self._add(path, make_folder=False).write_bytes(data)

    def write_text(self, path: str | os.PathLike, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def write_json(self, path: str | os.PathLike, obj: Any) -> None:
        self.write_text(path, atomic.json_text(obj))

    def commit(self) -> None:
        """Swap every new output in, or (when a rename fails) none."""
        if not self.outputs:
            return
        with interrupts_deferred():
            try:
                self._record(SWAPPING)
                for entry in self.outputs:
                    if entry["existed"]:
                        os.replace(entry["final"], entry["backup"])
                    os.replace(entry["tmp"], entry["final"])
                self._record(DONE)  # the commit point: from here on, the new outputs stand
            except OSError as error:
                self._undo(f"could not put the outputs of {self.stage} in place ({error}); the previous ones are kept")
            try:
                for entry in self.outputs:
                    _remove(entry["backup"])
                _drop_journal(self.journal)
            except OSError as error:
                print(f"warning: {self.stage}: its new outputs are in place, but removing the previous ones failed "
                      f"({error}); its next run removes them", file=sys.stderr)

    def _undo(self, message: str) -> None:
        try:
            _roll_back(self.outputs, swapping=True)
        except OSError as error:
            raise StageError(f"{message}, but putting them back failed too ({error}): the next run of "
                             f"{self.stage} repairs it from {self.journal}") from None
        try:
            _drop_journal(self.journal)
        except OSError:
            pass  # the outputs are the previous ones; the next run finds nothing left to undo and drops it
        raise StageError(message)

    def abort(self) -> None:
        """Remove the temporaries: the previous outputs stay as they are."""
        with interrupts_deferred():
            try:
                _roll_back(self.outputs, swapping=False)
                _drop_journal(self.journal)
            except OSError as error:
                print(f"warning: could not remove the temporary outputs of {self.stage} ({error}); its next run "
                      "removes them", file=sys.stderr)


OUTPUT_ROOTS = ("data", "models", "reports", "tuning")  # where stages and tools write (dvc.yaml's outs)
# A temporary or a backup: .<name>.<pid>-<n>.tmp|.old (a transaction's), .<name>.<pid>.<random>.tmp (atomic's)
LEFTOVER = re.compile(r"^\..+\.(\d+)(?:-\d+|\.[A-Za-z0-9_]+)\.(?:tmp|old)$")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def repair_all() -> list[str]:
    """Every stage's journal repaired (recover), then every temporary a process that no longer runs left under
    OUTPUT_ROOTS removed; a line for each thing done."""
    lines = []
    for journal in sorted(JOURNAL_DIR.glob("*.json")) if JOURNAL_DIR.is_dir() else []:
        try:
            stage = json.loads(journal.read_text())["stage"]
        except (ValueError, KeyError):
            raise StageError(f"{journal}: unreadable journal of an interrupted run; check its outputs by hand, "
                             "then delete it") from None
        lines.append(recover(stage))
    leftovers = [path for root in OUTPUT_ROOTS if Path(root).is_dir() for path in Path(root).rglob(".*")
                 if (match := LEFTOVER.match(path.name)) and not _running(int(match.group(1)))]
    with interrupts_deferred():
        for path in leftovers:
            if os.path.lexists(path):  # not already gone with a removed folder
                _remove(path)
    if leftovers:
        lines.append(f"repaired: removed {len(leftovers)} temporary file(s) that stopped runs left: "
                     + ", ".join(str(path) for path in leftovers[:5]) + (", ..." if len(leftovers) > 5 else ""))
    return [line for line in lines if line]


def main() -> None:
    """`python -m fmnist.plumbing.transaction`: repair what stopped runs left, before DVC looks at the outputs."""
    for line in repair_all():
        print(line, file=sys.stderr)


if __name__ == "__main__":
    from fmnist.plumbing import runner

    runner.run(main, stopped="the repair of each output is whole or not begun; run it again")
