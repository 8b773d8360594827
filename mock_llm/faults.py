"""The fault model: which calls fail, and how. Pure and seeded.

Kinds:
- ``429``: ``rate_limit_error`` with ``retry-after`` (whole seconds) and ``retry-after-ms`` headers.
- ``529``: ``overloaded_error``.
- ``500``: ``api_error``.
- ``stream_error``: a stream starts normally and sends an ``event: error`` (``overloaded_error``) halfway
  through its deltas. A non-streaming call drawn for it is answered normally (the kind exists only in
  streams).
- ``stall``: the connection is held without an answer until the client gives up, or at most
  ``stall_cap_s(time_scale)`` seconds, after which a 500 ``api_error`` is sent.
- ``stall_midstream``: a 200 answer starts, then its events (or, for a non-streaming call, its body bytes)
  stop halfway until the client gives up (at most ``stall_cap_s``, then the connection is dropped).
- ``drop_midstream``: a 200 answer starts and the connection closes halfway, without an error event or
  the end of the body.
- ``truncated``: a 200 answer starts and ends cleanly halfway: a stream's body ends after half its deltas
  (no ``message_stop``, no error event), a non-streaming body is the first half of its JSON with a
  Content-Length to match. Nothing at the transport level says anything went wrong.
- ``slow_drip``: every delta (or, non-streaming, each of ``DRIP_PIECES`` pieces of the body) arrives
  ``drip_gap_s(time_scale)`` after the previous one: never a read timeout, far too slow to finish in time.

Status errors (429, 529, 500) are answered at once, without the profile's delay, as the real API does for
rejected calls.

For tests, a request may force a kind with the header ``x-mock-fault: KIND``, or (for a client that cannot
set the upstream's headers, such as a test driving a server) with the text ``mock-fault:KIND`` anywhere in
its body. With ``x-mock-fault-times: N``
the fault applies only to the first N requests that carry the same ``x-mock-fault-key`` (any string the test
picks; the SDK resends the same headers on each retry), so "a 429, then success" is one header set.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_KINDS: tuple[str, ...] = ("429", "529", "500", "stream_error", "stall")  # --errors default
MIDSTREAM_KINDS: tuple[str, ...] = ("stall_midstream", "drop_midstream", "slow_drip", "truncated")
FAULT_KINDS: tuple[str, ...] = DEFAULT_KINDS + MIDSTREAM_KINDS

# How long the real API tells a rate-limited client to wait, before the time scale.
RETRY_AFTER_S = 1.0
STALL_CAP_S = 600.0
STALL_CAP_MIN_S = 5.0
DRIP_GAP_S = 0.25  # before the time scale: shorter than any sane per-read timeout
DRIP_PIECES = 40  # a non-streaming body drips in this many pieces: 10 s at time scale 1


def stall_cap_s(time_scale: float) -> float:
    """A stall holds the connection at most this long (600 s x time scale, at least 5 s)."""
    return max(STALL_CAP_S * time_scale, STALL_CAP_MIN_S)


def drip_gap_s(time_scale: float) -> float:
    return DRIP_GAP_S * time_scale


def retry_after_s(time_scale: float) -> float:
    return RETRY_AFTER_S * time_scale


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"429,529"`` -> ``("429", "529")``; an unknown kind raises ValueError naming it."""
    kinds = tuple(part.strip() for part in text.split(",") if part.strip())
    for kind in kinds:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose from {','.join(FAULT_KINDS)}")
    if not kinds:
        raise ValueError(f"no fault kinds given; choose from {','.join(FAULT_KINDS)}")
    return kinds


@dataclass(frozen=True, kw_only=True)
class FaultConfig:
    error_rate: float = 0.0
    kinds: tuple[str, ...] = DEFAULT_KINDS

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be between 0 and 1, got {self.error_rate}")
        for kind in self.kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; choose from {','.join(FAULT_KINDS)}")


class FaultModel:
    """Seeded random faults, plus the bookkeeping for forced ``x-mock-fault-times`` faults."""

    def __init__(self, config: FaultConfig, *, seed: int) -> None:
        self.config = config
        # A stream of its own, so the latency draws do not shift when the error rate changes.
        self._rng = random.Random(f"faults:{seed}")
        self._forced_counts: dict[tuple[str, str], int] = {}

    def draw(self) -> str | None:
        """The fault for the next call, or None. Draws nothing when the error rate is 0."""
        rate = self.config.error_rate
        if rate <= 0.0 or not self.config.kinds:
            return None
        if self._rng.random() >= rate:
            return None
        kinds = self.config.kinds
        return kinds[self._rng.randrange(len(kinds))]

    def forced(self, kind: str, *, times: int | None, key: str) -> bool:
        """Whether a forced fault applies to this request: always without ``times``, else the first N."""
        if times is None:
            return True
        slot = (kind, key)
        seen = self._forced_counts.get(slot, 0)
        self._forced_counts[slot] = seen + 1
        return seen < times

    def reset(self) -> None:
        self._forced_counts.clear()
