"""Stop signals (fmnist/plumbing/interrupts.py, run by fmnist/plumbing/runner.py): SIGTERM and SIGHUP stop a stage as
Ctrl-C does, a stop whose KeyboardInterrupt a finalizer swallowed still stops it, and a helper process dies with
its parent. Small real programs run by the real runner, each a process of its own; no TensorFlow."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.helpers import process_ended

# A stage in miniature: out.txt ("old") is replaced by "new" in a transaction, and the program waits where the
# test stops it. STEP says where: "writing" (before the commit), "swapping" (inside it), "finalizer" (a finalizer
# receives a Ctrl-C and swallows it, then the stage goes on to commit), "after" (the same, after the commit),
# "epochs" (5 s of short epochs before the commit, each ending in the check training makes).
PROGRAM = textwrap.dedent('''
    import gc, os, signal, sys, time
    from pathlib import Path
    from fmnist.plumbing import interrupts, runner, transaction
    from fmnist.plumbing.transaction import Transaction

    STEP = sys.argv[1]

    def wait_for_a_stop():
        print("ready", flush=True)
        time.sleep(30)

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)  # the handler's KeyboardInterrupt is raised here, and swallowed
            time.sleep(0.2)

    def swallow_a_ctrl_c():
        Finalized()
        gc.collect()

    def main():
        if STEP == "finalizer":
            swallow_a_ctrl_c()
        with Transaction("demo") as outputs:
            outputs.write_text("out.txt", "new")
            if STEP == "writing":
                wait_for_a_stop()
            if STEP == "epochs":
                print("ready", flush=True)
                for epoch in range(100):
                    time.sleep(0.05)
                    interrupts.check()
            if STEP == "swapping":
                real = os.replace
                def replace(source, target):  # the stop arrives in the middle of the swap
                    real(source, target)
                    if str(target) == "out.txt":
                        print("ready", flush=True)
                        time.sleep(1)
                transaction.os.replace = replace
        if STEP == "after":
            swallow_a_ctrl_c()
        print("done", flush=True)

    runner.run(main)
''')


# A stage started from a terminal or by DVC has SIGHUP at its default, also when the tests run under `nohup` (whose
# ignored SIGHUP every process they start inherits, and a stage rightly keeps ignoring). This `python -c` resets it,
# then becomes the stage (exec): the pid a test signals is the stage's.
HANGUPS_AT_DEFAULT = ("import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
                      "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def start(tmp_path: Path, step: str) -> subprocess.Popen:
    (tmp_path / "out.txt").write_text("old")
    (tmp_path / "program.py").write_text(PROGRAM)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-c", HANGUPS_AT_DEFAULT, "program.py", step], cwd=tmp_path, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_when_ready(process: subprocess.Popen, signum: int) -> tuple[str, str]:
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    return out, err


def strays(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_every_stop_signal_rolls_back_and_exits_128_plus_its_number(tmp_path, signum, code):
    process = start(tmp_path, "writing")
    _, err = stop_when_ready(process, signum)
    assert process.returncode == code, err
    by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    assert f"interrupted{by}: the stage's outputs are all as they were" in err
    assert (tmp_path / "out.txt").read_text() == "old"
    assert strays(tmp_path) == []  # no temporary, no journal


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_during_the_commit_waits_for_it(tmp_path, signum, code):
    process = start(tmp_path, "swapping")
    out, err = stop_when_ready(process, signum)
    assert process.returncode == code, err
    assert (tmp_path / "out.txt").read_text() == "new" and strays(tmp_path) == []
    assert "done" not in out  # it stopped as soon as the commit was done


def test_a_ctrl_c_swallowed_by_a_finalizer_still_stops_the_stage_before_its_commit(tmp_path):
    process = start(tmp_path, "finalizer")
    out, err = process.communicate(timeout=30)
    assert "Exception ignored in" in err and "KeyboardInterrupt" in err  # Python swallowed it ...
    assert process.returncode == 130, out + err  # ... but the record stops the stage
    assert (tmp_path / "out.txt").read_text() == "old" and strays(tmp_path) == []


def test_a_ctrl_c_swallowed_after_the_commit_still_ends_the_run_as_interrupted(tmp_path):
    process = start(tmp_path, "after")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert (tmp_path / "out.txt").read_text() == "new"  # committed before the stop: the new outputs stand
    assert "interrupted: " in err


# A stage with a helper process (processes.Child) that writes nothing and would run for a minute.
PARENT = textwrap.dedent('''
    from fmnist.plumbing import processes, runner

    def main():
        child = processes.Child("a helper", "timeit", "-n", "1", "-r", "1", "import time; time.sleep(60)")
        print(child.process.pid, flush=True)
        try:
            child.result()
        finally:
            child.stop()

    runner.run(main)
''')


# DVC in miniature: it starts the stage (its stderr to stage.err), passes on its "ready", and waits for it. NOHUP:
# the stage starts with SIGHUP ignored, as under `nohup`; otherwise at its default, whatever the tests inherited.
LAUNCHER = textwrap.dedent('''
    import signal, subprocess, sys
    nohup = sys.argv[1] == "nohup"
    with open("stage.err", "w") as err:
        hangups = signal.SIG_IGN if nohup else signal.SIG_DFL
        stage = subprocess.Popen([sys.executable, "program.py", "epochs"], stdout=subprocess.PIPE, stderr=err,
                                 text=True, preexec_fn=lambda: signal.signal(signal.SIGHUP, hangups))
        print(stage.pid, flush=True)
        print(stage.stdout.readline(), end="", flush=True)
        stage.wait()
''')


@pytest.mark.parametrize("nohup", [False, True])
def test_a_stage_whose_parent_is_killed_stops_as_on_a_hangup_unless_started_with_nohup(tmp_path, nohup):
    """`kill <dvc pid>` alone: the stage outlives DVC, and what it would write no dvc.lock would record. At its next
    check (each epoch's end, the commit) it sees it was adopted and stops as on SIGHUP: rolled back, its message
    says why. Under `nohup` a lost parent and a hangup are what the user asked for: it trains on and commits."""
    (tmp_path / "out.txt").write_text("old")
    (tmp_path / "program.py").write_text(PROGRAM)
    (tmp_path / "launcher.py").write_text(LAUNCHER)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    launcher = subprocess.Popen([sys.executable, "launcher.py", "nohup" if nohup else "-"], cwd=tmp_path, env=env,
                                text=True, stdout=subprocess.PIPE)
    stage = int(launcher.stdout.readline())
    assert launcher.stdout.readline() == "ready\n"
    launcher.kill()
    launcher.wait(timeout=10)
    if nohup:
        os.kill(stage, signal.SIGHUP)  # and the terminal closes
    assert process_ended(stage, 30), f"the stage {stage} outlived its parent"
    if nohup:
        assert (tmp_path / "out.txt").read_text() == "new" and strays(tmp_path) == []
    else:
        assert ("interrupted by SIGHUP (the process that started it is gone): the stage's outputs are all as they were"
                in (tmp_path / "stage.err").read_text())
        assert (tmp_path / "out.txt").read_text() == "old" and strays(tmp_path) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's prctl")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_the_helper_process_dies_with_its_parent(tmp_path, signum):
    """SIGTERM: the parent stops its child on the way out, exit 143. SIGKILL: the parent runs nothing more, and the
    kernel's parent-death signal ends the child."""
    (tmp_path / "parent.py").write_text(PARENT)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    parent = subprocess.Popen([sys.executable, "parent.py"], cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    child = int(parent.stdout.readline())
    time.sleep(0.5)  # the child is running its minute
    assert not process_ended(child, 0)
    parent.send_signal(signum)
    parent.communicate(timeout=30)
    assert parent.returncode == (143 if signum == signal.SIGTERM else -signal.SIGKILL)
    assert process_ended(child, 10), f"the helper {child} outlived its parent"
