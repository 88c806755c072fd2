"""Stop signals: Ctrl-C (SIGINT), `kill`, CI cancellation or `docker stop` (SIGTERM) and a closed terminal (SIGHUP)
all stop a stage the same way, as a KeyboardInterrupt, and are held back while work that must not stop halfway runs.

Each stop is also recorded (`received`), because a KeyboardInterrupt raised while Python runs a finalizer is
swallowed ("Exception ignored in ...") and the work would go on: training checks the record at every epoch's end,
a transaction before its commit, and the runner when the stage returns (`check`).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
received: int | None = None  # the first stop signal this process received, until it has stopped


def _record(signum: int) -> None:
    global received
    if received is None:
        received = signum


def stop(signum, frame) -> None:
    """The handler of every stop signal (fmnist.plumbing.runner installs it): record it, and interrupt."""
    _record(signum)
    raise KeyboardInterrupt


def check() -> None:
    """Interrupt now if a stop signal came whose KeyboardInterrupt was lost (raised inside a finalizer)."""
    if received is not None:
        raise KeyboardInterrupt


def install() -> None:
    """Every stop signal stops this process as Ctrl-C does (the main thread only can)."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOPS:
            signal.signal(signum, stop)


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
    outer such block, the outer one holds them."""
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
