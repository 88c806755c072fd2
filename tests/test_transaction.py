"""A stage's outputs as one transaction (fmnist/plumbing/transaction.py): every output is the previous one, or every
output is the new one, after an error, a failed rename, a Ctrl-C or a crash; nothing stray is left.
The same promise on a real train@ stage, at every write it makes: tests/test_faults.py."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from fmnist.plumbing import transaction
from fmnist.plumbing.errors import StageError
from fmnist.plumbing.transaction import Transaction
from tests.helpers import ctrl_c


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A repo root with a previous run's outputs: a folder with two files and a lone file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models/v").mkdir(parents=True)
    (tmp_path / "models/v/a.bin").write_text("old a")
    (tmp_path / "models/v/b.bin").write_text("old b")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/v.json").write_text("old json")
    return tmp_path


def tree(root) -> dict[str, str]:
    """Every file and folder under root (the journal folder included), with the files' text."""
    return {str(p.relative_to(root)): ("" if p.is_dir() else p.read_text()) for p in sorted(root.rglob("*"))}


OLD = {"models": "", "models/v": "", "models/v/a.bin": "old a", "models/v/b.bin": "old b", "reports": "",
       "reports/v.json": "old json"}
NEW = {"models": "", "models/v": "", "models/v/c.bin": "new c", "reports": "", "reports/v.json": "new json",
       "reports/w.csv": "new csv"}


def write_new(outputs: Transaction) -> None:
    (outputs.folder("models/v") / "c.bin").write_text("new c")
    outputs.write_text("reports/v.json", "new json")
    outputs.write_text("reports/w.csv", "new csv")  # an output the previous run did not have


def test_commit_swaps_in_every_output_and_leaves_nothing_else(workspace):
    assert tree(workspace) == OLD
    with Transaction("train@v") as outputs:
        write_new(outputs)
        assert tree(workspace)["reports/v.json"] == "old json"  # nothing changes before the commit
    assert tree(workspace) == NEW


def test_an_error_before_the_commit_keeps_every_previous_output(workspace):
    with pytest.raises(RuntimeError):
        with Transaction("train@v") as outputs:
            write_new(outputs)
            raise RuntimeError("evaluation failed")
    assert tree(workspace) == OLD


def test_a_failed_rename_in_the_commit_puts_back_what_was_swapped(workspace, monkeypatch):
    real_replace = os.replace
    calls = []

    def replace(source, target):
        calls.append((str(source), str(target)))
        if len(calls) == 4:  # the 2nd output's old file was moved aside; its new one fails to move in
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    with pytest.raises(StageError, match="could not put the outputs of train@v in place .*the previous ones are kept"):
        with Transaction("train@v") as outputs:
            write_new(outputs)
            monkeypatch.setattr(transaction.os, "replace", replace)
    monkeypatch.setattr(transaction.os, "replace", real_replace)
    assert len(calls) > 4  # the undo ran
    assert tree(workspace) == OLD


def test_ctrl_c_during_the_commit_waits_for_it(workspace, monkeypatch):
    real_replace = os.replace

    def replace(source, target):
        if str(target) == "reports/v.json":
            ctrl_c()  # Ctrl-C in the middle of the swap
        real_replace(source, target)

    monkeypatch.setattr(transaction.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        with Transaction("train@v") as outputs:
            write_new(outputs)
    assert tree(workspace) == NEW


CRASH = textwrap.dedent("""
    import os, sys
    from fmnist.plumbing import transaction
    from fmnist.plumbing.transaction import Transaction
    crash_at = int(sys.argv[1])
    real_replace, count = os.replace, [0]

    def replace(source, target):  # the process dies (SIGKILL: no finally, no handler) at the n-th rename
        count[0] += 1
        if count[0] == crash_at:
            os.kill(os.getpid(), 9)
        real_replace(source, target)

    transaction.os.replace = replace
    with Transaction("train@v") as outputs:
        (outputs.folder("models/v") / "c.bin").write_text("new c")
        outputs.write_text("reports/v.json", "new json")
        outputs.write_text("reports/w.csv", "new csv")
    print("committed", count[0])
""")


def test_a_crash_at_any_rename_is_repaired_by_the_next_run(workspace):
    """SIGKILL at the n-th os.replace (journal writes included) for every n: the next run says what it repaired
    in one line, and the outputs are then all old (swap under way) or all new (swap finished)."""
    (workspace / "crash.py").write_text(CRASH)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    renames = int(subprocess.run([sys.executable, "crash.py", "0"], cwd=workspace, env=env, capture_output=True,
                                 text=True, check=True).stdout.split()[1])
    assert renames >= 8  # journal writes, 5 renames of outputs, the commit point
    # Restore the previous outputs after the probe run.
    for n in range(1, renames + 1):
        for path in ("models", "reports", ".transactions"):
            subprocess.run(["rm", "-rf", str(workspace / path)], check=True)
        (workspace / "models/v").mkdir(parents=True)
        (workspace / "models/v/a.bin").write_text("old a")
        (workspace / "models/v/b.bin").write_text("old b")
        (workspace / "reports").mkdir()
        (workspace / "reports/v.json").write_text("old json")
        crashed = subprocess.run([sys.executable, "crash.py", str(n)], cwd=workspace, env=env, capture_output=True)
        assert crashed.returncode == -9
        repaired = transaction.recover("train@v")
        left = {k: v for k, v in tree(workspace).items() if k != "crash.py"}
        assert left in (OLD, NEW), (n, repaired, left)
        assert repaired is None or (repaired.startswith("repaired: ") and "the last run of train@v" in repaired
                                    and "\n" not in repaired), repaired
        if left == NEW and repaired:
            assert "its new outputs stand" in repaired or "left of its journal" in repaired
        assert transaction.recover("train@v") is None  # nothing left to repair


def test_the_journal_names_each_temporary_before_it_exists(workspace):
    with Transaction("train@v") as outputs:
        tmp = outputs.folder("models/v")
        journal = json.loads((workspace / ".transactions/train@v.json").read_text())
        assert journal["state"] == "writing" and journal["outputs"][0]["tmp"] == str(tmp)
        with pytest.raises(ValueError, match="already an output"):
            outputs.folder("models/v")
