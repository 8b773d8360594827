"""What the machine gave a point: CPU time stolen by the hypervisor, and the speed of one core before and
after the window (a fixed piece of work, timed).

On a shared VM a neighbour takes CPU (steal) and the clock frequency moves; for a CPU-bound level the
machine's speed is then part of the answer. Both are recorded on every point (``extra["machine"]``), so a
spread between runs can be read against them, and a point during which the machine changed is flagged.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

CALIBRATION_ITEMS = 20_000  # one run builds and reads a dict this big: about 2 ms of interpreter work
CALIBRATION_RUNS = 5  # the fastest of these is the core's speed (the others met interruptions)
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def steal_seconds() -> float | None:
    """CPU seconds the hypervisor gave to others since boot, summed over CPUs (/proc/stat), or None."""
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    return int(fields[8]) / _TICKS


def _work() -> int:
    table = {i: str(i) for i in range(CALIBRATION_ITEMS)}
    return sum(len(table[i]) for i in range(0, CALIBRATION_ITEMS, 3))


def calibrate_ms() -> float:
    """CPU milliseconds one core takes for a fixed piece of interpreter work (what the servers do: objects,
    dicts, strings), the fastest of CALIBRATION_RUNS: CPU time, so waiting for a core while the load runs
    does not count, but a slower core does (frequency, a busy sibling thread, a neighbour's cache
    pressure)."""
    best = float("inf")
    for _ in range(CALIBRATION_RUNS):
        start = time.thread_time()  # CPU time: waiting for a core while the load runs does not count
        _work()
        best = min(best, time.thread_time() - start)
    return best * 1000.0


@dataclass(frozen=True, kw_only=True)
class MachineMark:
    """The machine at one instant: stolen CPU so far, and one core's speed."""

    steal_s: float | None
    calibration_ms: float

    @classmethod
    def now(cls) -> MachineMark:
        return cls(steal_s=steal_seconds(), calibration_ms=calibrate_ms())


def machine_record(
    before: MachineMark, after: MachineMark, *, seconds: float, cpus: int
) -> dict[str, float | None]:
    """extra["machine"] of a point: steal over the window in percent of the machine, and the calibration
    at both ends with its change (positive: the machine got slower)."""
    steal = None
    if before.steal_s is not None and after.steal_s is not None and seconds > 0:
        steal = round(max(0.0, after.steal_s - before.steal_s) / (seconds * cpus) * 100.0, 2)
    change = after.calibration_ms / before.calibration_ms - 1.0 if before.calibration_ms > 0 else None
    return {
        "steal_percent": steal,
        "calibration_before_ms": round(before.calibration_ms, 4),
        "calibration_after_ms": round(after.calibration_ms, 4),
        "calibration_change": None if change is None else round(change, 4),
    }
