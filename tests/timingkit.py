"""In-process timing for the linear-time tests: best-of-N wall time, with a watchdog that interrupts a
screen that runs past its budget (a quadratic screen on a large body would otherwise run for hours).

(A uniquely named module: the root conftest puts tests/ on sys.path for every suite.)
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any


class OverBudget(Exception):
    """The watchdog fired: the work ran past its budget."""


@contextlib.contextmanager
def watchdog(budget_s: float) -> Iterator[None]:
    """Raise OverBudget inside the block once ``budget_s`` has passed (SIGALRM; the regex engine checks
    for signals as it runs). pytest-timeout's own alarm is put back, less the time spent here."""

    def fire(signum: int, frame: Any) -> None:
        raise OverBudget(f"over its {budget_s:g} s budget")

    previous = signal.signal(signal.SIGALRM, fire)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, budget_s)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:
            left = max(outer_delay - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def best_time(work: Callable[[], object], *, runs: int, within_s: float, budget_s: float) -> float:
    """The shortest of up to ``runs`` timings (the one least disturbed by other processes on a busy
    machine), stopping once ``within_s`` has been spent (one run at least); OverBudget when the runs
    together take longer than ``budget_s``."""
    best = float("inf")
    done = 0
    spent = 0.0
    with watchdog(budget_s):
        while done == 0 or (done < runs and spent < within_s):
            started = time.perf_counter()
            work()
            took = time.perf_counter() - started
            best = min(best, took)
            spent += took
            done += 1
    return best
