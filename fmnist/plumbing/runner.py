"""The stage runner: runs a stage's (or tool's) main(), reports a StageError as one line with exit 1, a stop signal
(Ctrl-C, SIGTERM, SIGHUP: fmnist.plumbing.interrupts) with exit 128 + its number (130, 143, 129), and records which
stages really ran (make reproduce)."""
from __future__ import annotations

import os
import signal
import sys
import time
from typing import Callable, NoReturn

from fmnist.plumbing import interrupts, quiet
from fmnist.plumbing.errors import StageError

RUN_LOG = "FMNIST_RUN_LOG"  # environment: a file each stage that completes appends its name to (make reproduce)
STARTED = time.perf_counter()  # a stage imports this module first thing: its seconds count from here


def stage_name(module: str, argv: list[str]) -> str:
    """The DVC stage a command line is: `python -m stages.train relu100` is train@relu100."""
    name = module.rpartition(".")[2]
    return f"{name}@{argv[0]}" if argv else name


def record_run() -> None:
    """Append this stage's name and seconds to $FMNIST_RUN_LOG, if set: the evidence a reproduction check needs
    that the stage really ran, rather than being skipped by DVC as up to date (and benchmarks/floor.py's timings)."""
    log = os.environ.get(RUN_LOG)
    main_module = sys.modules.get("__main__")
    spec = getattr(main_module, "__spec__", None)
    if log and spec is not None and spec.name.startswith("stages."):
        with open(log, "a", encoding="utf-8") as handle:  # one short line in append mode: written whole
            handle.write(f"{stage_name(spec.name, sys.argv[1:])} {time.perf_counter() - STARTED:.1f}\n")


def run(main: Callable[[], None], stopped: str = "the stage's outputs are all as they were, or all new; none is "
                                                  "half-written") -> NoReturn:
    """Run a stage's main(); report a StageError as one clear line and exit 1, a stop signal as `stopped` says."""
    code = 0
    interrupts.install()
    try:
        main()
        interrupts.check()  # a stop whose KeyboardInterrupt a finalizer swallowed: still a stop
        record_run()
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        # A stage's outputs change together (fmnist/plumbing/transaction.py): all as they were, or all new if the stop
        # came while they were being swapped in (then dvc.lock, not updated, shows them as changed).
        code = interrupts.exit_code()
        by = "" if code == 128 + signal.SIGINT else f" by {signal.Signals(code - 128).name}"
        by += " (the process that started it is gone)" if interrupts.orphaned else ""
        print(f"interrupted{by}: {stopped}", file=sys.stderr)
    quiet.finish()
    if code == 0 and "keras" in sys.modules:
        # Done: every output is written, closed and renamed into place, and the stage's own child process has
        # ended. Skip the interpreter's teardown, which with TensorFlow loaded takes about a second.
        sys.stdout.flush()
        os._exit(0)
    sys.exit(code)  # others (the baseline's joblib workers) are shut down by their atexit handlers
