"""Stop signals: Ctrl-C (SIGINT), `kill`, CI cancellation or `docker stop` (SIGTERM) and a closed terminal (SIGHUP)
all stop a stage the same way, as a KeyboardInterrupt, and are held back while work that must not stop halfway runs.

Each stop is also recorded (`received`), because a KeyboardInterrupt raised while Python runs a finalizer is
swallowed ("Exception ignored in ...") and the work would go on: training checks the record at every epoch's end,
a transaction before its commit, and the runner when the stage returns (`check`).

The same checks stop a stage whose parent is gone, as a hangup would: `kill <dvc pid>` ends DVC alone, and a stage
that went on would write outputs that no dvc.lock records. Not under `nohup` (SIGHUP ignored at start), which asks
for the opposite.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator

STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
received: int | None = None  # the first stop signal this process received, until it has stopped
watched: tuple[int, int] | None = None  # (this process, the one that started it), from install; a fork is not it
orphaned = False  # the stop recorded is that parent's end, not a signal


def _record(signum: int) -> None:
    global received
    if received is None:
        received = signum


def stop(signum, frame) -> None:
    """The handler of every stop signal (fmnist.plumbing.runner installs it): record it, and interrupt."""
    _record(signum)
    raise KeyboardInterrupt


def check() -> None:
    """Interrupt now if a stop signal came whose KeyboardInterrupt was lost (raised inside a finalizer), or if the
    parent this process was started by is gone (its parent process id changed: it was adopted), as by SIGHUP."""
    global orphaned
    if received is None and watched is not None and watched[0] == os.getpid() and os.getppid() != watched[1]:
        orphaned = True
        _record(signal.SIGHUP)
    if received is not None:
        raise KeyboardInterrupt


def install() -> None:
    """Every stop signal stops this process as Ctrl-C does (the main thread only can), and its parent is watched;
    a SIGHUP ignored from the start (`nohup`) stays ignored, and the parent is not watched then."""
    global watched
    if threading.current_thread() is threading.main_thread():
        detached = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        for signum in STOPS:
            if not (detached and signum == signal.SIGHUP):
                signal.signal(signum, stop)
        watched = None if detached else (os.getpid(), os.getppid())


def exit_code() -> int:
    """What a stopped process exits with: 128 + the signal's number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
    return 128 + (received or signal.SIGINT)


class _Held:
    """A handler that holds stop signals instead of raising KeyboardInterrupt; `previous`: the handlers it replaced.
    It records what it holds only where the process stops on it (the runner's handlers were in place), so that a
    held Ctrl-C in a test process does not linger."""

    def __init__(self, previous: dict):
        self.previous = previous
        self.count = 0

    def __call__(self, signum, frame) -> None:
        if self.previous.get(signum) is stop:
            _record(signum)
        self.count += 1


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Stop signals meanwhile are held until the block is done, then interrupt: for work that must not stop halfway
    and whose libraries would swallow the KeyboardInterrupt or turn it into an error of their own (DVC's
    `exp save` stashes and restores the workspace; Optuna records a trial's end in its storage). Inside an
    outer such block, the outer one holds them; inside interrupts_allowed, this one does (a trial's calls to Optuna's
    storage, in a trial that may stop)."""
    if threading.current_thread() is not threading.main_thread() or isinstance(signal.getsignal(signal.SIGINT), _Held):
        yield
        return
    held = _Held({signum: signal.getsignal(signum) for signum in STOPS})
    for signum in STOPS:
        signal.signal(signum, held)
    try:
        yield
    finally:
        for signum, handler in held.previous.items():
            signal.signal(signum, handler)
    if held.count:
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_allowed() -> Iterator[None]:
    """Inside interrupts_deferred: a stop signal interrupts this block at once, as it would outside; one held
    already, on entry."""
    held = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if not isinstance(held, _Held):
        yield
        return
    if held.count:
        raise KeyboardInterrupt
    for signum, handler in held.previous.items():
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum in STOPS:
            signal.signal(signum, held)
