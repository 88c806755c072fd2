"""Ctrl-C held back while work that must not stop halfway runs, and let through again inside it."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


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
