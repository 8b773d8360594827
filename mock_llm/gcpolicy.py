"""When the mock collects garbage: never in the middle of a load, where a pause shows up as injected delay.

Measured with ``python -m loadtests.driver.mockbench`` (2,000 calls in flight): CPython's automatic collector
paused the mock for up to 40-70 ms at a time (hundreds of ms per 6 s), putting the p99 delay error near 100
ms. The mock's per-call objects are freed by reference counting (a call leaves no reference cycles), so the
cyclic collector is switched off after start-up (everything alive then is frozen out of later collections)
and run only when the mock is idle (no call in flight, at most once a second), or as a safety valve when
more than ``MAX_PENDING`` tracked objects have piled up.
"""

from __future__ import annotations

import asyncio
import gc
from time import monotonic

MAX_PENDING = 1_000_000
MIN_IDLE_INTERVAL_S = 1.0


class IdleCollector:
    def __init__(
        self, *, max_pending: int = MAX_PENDING, min_interval_s: float = MIN_IDLE_INTERVAL_S
    ) -> None:
        self.max_pending = max_pending
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._scheduled = False
        self.idle_collections = 0
        self.forced_collections = 0

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        gc.disable()
        self._last = monotonic()

    def on_call_end(self, in_flight: int, loop: asyncio.AbstractEventLoop) -> None:
        """Called as each call ends: collect soon if idle, or now if garbage is piling up."""
        if gc.get_count()[0] > self.max_pending:
            self.forced_collections += 1
            self._collect()
        elif in_flight == 0 and not self._scheduled and monotonic() - self._last >= self.min_interval_s:
            self._scheduled = True
            loop.call_soon(self._collect_if_idle, loop)

    def _collect_if_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        del loop
        self.idle_collections += 1
        self._collect()

    def _collect(self) -> None:
        gc.collect()
        self._last = monotonic()

    def snapshot(self) -> dict[str, int]:
        return {
            "pending_objects": gc.get_count()[0],
            "idle_collections": self.idle_collections,
            "forced_collections": self.forced_collections,
        }
