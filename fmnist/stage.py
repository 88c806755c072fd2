"""What every stage entry point shares: one error type for bad input, reported without a traceback."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Callable, Iterator, NoReturn

from fmnist import quiet


class StageError(Exception):
    """Bad input or a failed precondition, with a message that says what, where and what is allowed."""


RUN_LOG = "FMNIST_RUN_LOG"  # environment: a file each stage that completes appends its name to (make reproduce)


def stage_name(module: str, argv: list[str]) -> str:
    """The DVC stage a command line is: `python -m stages.train relu100` is train@relu100."""
    name = module.rpartition(".")[2]
    return f"{name}@{argv[0]}" if argv else name


def record_run() -> None:
    """Append this stage's name to $FMNIST_RUN_LOG, if set: the evidence a reproduction check needs that the stage
    really ran, rather than being skipped by DVC as up to date."""
    log = os.environ.get(RUN_LOG)
    main_module = sys.modules.get("__main__")
    spec = getattr(main_module, "__spec__", None)
    if log and spec is not None and spec.name.startswith("stages."):
        with open(log, "a", encoding="utf-8") as handle:  # one short line in append mode: written whole
            handle.write(stage_name(spec.name, sys.argv[1:]) + "\n")


def run(main: Callable[[], None]) -> NoReturn:
    """Run a stage's main(); report a StageError as one clear line and exit 1."""
    code = 0
    try:
        main()
        record_run()
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        # A stage's outputs change together (fmnist/transaction.py): all as they were, or all new if the Ctrl-C
        # came while they were being swapped in (then dvc.lock, not updated, shows them as changed).
        print("interrupted: the stage's outputs are all as they were, or all new; none is half-written", file=sys.stderr)
        code = 130
    quiet.finish()
    if code == 0 and "keras" in sys.modules:
        # Done: every output is written, closed and renamed into place, and the stage's own child process has
        # ended. Skip the interpreter's teardown, which with TensorFlow loaded takes about a second.
        sys.stdout.flush()
        os._exit(0)
    sys.exit(code)  # others (the baseline's joblib workers) are shut down by their atexit handlers


def command(args: list[str], what: str) -> str:
    """Run a command (git, dvc) and return its standard output; if it fails, a StageError
    '<what> failed: <the last line it said>'."""
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise StageError(f"{what} failed: {said[-1] if said else f'exit {result.returncode}'}")
    return result.stdout


class _Held:
    """A SIGINT handler that counts Ctrl-Cs instead of raising KeyboardInterrupt."""

    def __init__(self):
        self.count = 0

    def __call__(self, signum, frame) -> None:
        self.count += 1


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C meanwhile is held until the block is done, then interrupts: for work that must not stop halfway
    and whose libraries would swallow the KeyboardInterrupt or turn it into an error of their own (DVC's
    `exp save` stashes and restores the workspace; Optuna records a trial's end in its storage). Inside an
    outer such block, the outer one holds it."""
    if threading.current_thread() is not threading.main_thread() or isinstance(signal.getsignal(signal.SIGINT), _Held):
        yield
        return
    held = _Held()
    previous = signal.signal(signal.SIGINT, held)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held.count:
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_allowed() -> Iterator[None]:
    """Inside interrupts_deferred: Ctrl-C interrupts this block at once, as usual; one held already, on entry."""
    held = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if not isinstance(held, _Held):
        yield
        return
    if held.count:
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, held)


class Child:
    """A helper process of a stage, `python -m <module> <args>`, that works while the stage does and prints its
    result as JSON on its last line of standard output. Its errors come back as StageErrors."""

    def __init__(self, what: str, module: str, *args: str):
        self.what = what
        self.process = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=dict(os.environ))

    def result(self):
        out, err = self.process.communicate()
        if self.process.returncode != 0:
            problem = next((line for line in reversed(err.splitlines()) if line.startswith("error: ")), None)
            if problem is None:  # not one of ours (a crash): show everything it said
                sys.stderr.write(err)
                problem = f"exit status {self.process.returncode}"
            raise StageError(f"{self.what} failed: {problem.removeprefix('error: ')}")
        # On success its standard error holds nothing but the libraries' start-up chatter: not repeated here.
        return json.loads(out.strip().splitlines()[-1])

    def stop(self) -> None:
        """End it if it still runs (the stage failed or was interrupted)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
