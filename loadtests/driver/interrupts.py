"""How a run ends on a signal: Ctrl-C, SIGTERM and SIGHUP stop it the same way, and stopping child
processes cannot itself be cut short, or they are orphaned."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _handled_by(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """The stop signals go to the handler in the block; the caller's handlers come back after it."""
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """In the block, SIGINT, SIGTERM and SIGHUP (a closed terminal) raise KeyboardInterrupt.

    SIGINT is set too, not left as it came: a shell starts a background job with SIGINT ignored, and
    such a run must still stop on Ctrl-C sent to it, with its children, and keep what it measured.
    """
    with _handled_by(_raise_interrupt):
        yield


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold the stop signals until the block ends, then raise KeyboardInterrupt if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    with _handled_by(hold):
        yield
    if received:
        raise KeyboardInterrupt
