"""Counters behind ``GET /mock/stats``: the ground truth of what the mock saw.

The in-flight gauge counts ``/v1/*`` calls from arrival until the last byte of the answer is sent (streams
included; a stream or a stall also ends when its client goes away); ``/mock/*`` and ``/health`` are not
counted.
"""

from __future__ import annotations

import random
from collections import deque
from time import perf_counter
from typing import Any

# Delay samples kept for percentiles; past this, reservoir sampling keeps a uniform sample.
MAX_SAMPLES = 200_000
# Per-call records kept (about 100 bytes each): the most recent ones, whatever the resets.
MAX_CALL_RECORDS = 500_000
CLIENT_CLOSED = "499"  # by_status key for calls the client abandoned before the answer was complete


def summarise_ms(samples: list[float], count: int) -> dict[str, float | int]:
    """count, mean, p50, p99, max of samples given in seconds, reported in milliseconds (nearest rank)."""
    if not samples:
        return {"count": count, "mean": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, int(q * n + 0.999999) - 1))]

    return {
        "count": count,
        "mean": round(sum(ordered) / n * 1000, 3),
        "p50": round(rank(0.50) * 1000, 3),
        "p99": round(rank(0.99) * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
    }


class Reservoir:
    def __init__(self, *, seed: int) -> None:
        self.samples: list[float] = []
        self.count = 0
        self._rng = random.Random(f"reservoir:{seed}")

    def add(self, value: float) -> None:
        self.count += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(value)
            return
        slot = self._rng.randrange(self.count)
        if slot < MAX_SAMPLES:
            self.samples[slot] = value

    def clear(self) -> None:
        self.samples.clear()
        self.count = 0


class MockStats:
    def __init__(self, *, seed: int) -> None:
        self.in_flight = 0
        self.peak_in_flight = 0
        self.requests = 0
        self.retries_seen = 0
        self.streams = 0
        self.by_status: dict[str, int] = {}
        self.faults: dict[str, int] = {}
        self.injected = Reservoir(seed=seed)
        # Observed minus injected delay, measured inside the mock (arrival to last byte written).
        self.lateness = Reservoir(seed=seed + 1)
        # (x-request-id, arrival, end of answer, status) per call, on the system-wide monotonic clock, so a
        # load generator can join them with its own records and split each request's latency.
        # Kept across resets: a request that completes just inside a window may have made its call before.
        self.calls: deque[tuple[str, float, float, str]] = deque(maxlen=MAX_CALL_RECORDS)

    def begin(self) -> None:
        self.requests += 1
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight

    def end(self, status: str) -> None:
        self.in_flight -= 1
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def record_call(self, request_id: str, arrival: float, end: float, status: str) -> None:
        self.calls.append((request_id, arrival, end, status))

    def calls_snapshot(self, *, since: float = 0.0) -> dict[str, Any]:
        """The calls that ended at or after ``since`` (monotonic seconds), oldest first."""
        return {
            "clock": "monotonic",
            "fields": ["request_id", "arrival", "end", "status"],
            "calls": [[rid, round(a, 6), round(e, 6), st] for rid, a, e, st in self.calls if e >= since],
            "kept": len(self.calls),
        }

    def fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def delay(self, *, injected_s: float, observed_s: float) -> None:
        self.injected.add(injected_s)
        self.lateness.add(observed_s - injected_s)

    def reset(self) -> None:
        self.peak_in_flight = self.in_flight
        self.requests = 0
        self.retries_seen = 0
        self.streams = 0
        self.by_status = {}
        self.faults = {}
        self.injected.clear()
        self.lateness.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "requests": self.requests,
            "by_status": dict(sorted(self.by_status.items())),
            "injected_delay_ms": summarise_ms(self.injected.samples, self.injected.count),
            "delay_error_ms": summarise_ms(self.lateness.samples, self.lateness.count),
            "retries_seen": self.retries_seen,
            "streams": self.streams,
            "faults": dict(sorted(self.faults.items())),
        }


class GcPauses:
    """Garbage-collector pauses in this process, from ``gc.callbacks``: the mock's own tail-latency source."""

    def __init__(self) -> None:
        self._started = 0.0
        self.by_generation = [0, 0, 0]
        self.total_s = 0.0
        self.max_s = 0.0

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = perf_counter()
            return
        pause = perf_counter() - self._started
        self.by_generation[info["generation"]] += 1
        self.total_s += pause
        self.max_s = max(self.max_s, pause)

    def reset(self) -> None:
        self.by_generation = [0, 0, 0]
        self.total_s = 0.0
        self.max_s = 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "collections": list(self.by_generation),
            "total_pause_ms": round(self.total_s * 1000, 3),
            "max_pause_ms": round(self.max_s * 1000, 3),
        }
