"""Where each request's time goes: the load generator's records joined with the mock's per-call records.

Each request carries an ``x-request-id`` that the servers forward to the upstream call, and the mock records
every call's arrival and the end of its answer on the system-wide monotonic clock (``GET /mock/calls``),
the clock the load generator also stamps each request's start with. One request's latency then splits into
``before_upstream`` (queueing and work in the server before its call reached the mock), ``upstream`` (the
mock's time, first arrival to last byte, retries included) and ``after_upstream`` (the server's work after
the answer, and the trip back); ``overhead`` is latency minus the upstream's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from loadtests.analysis.intervals import percentile_intervals
from loadtests.analysis.rawdata import Record
from loadtests.analysis.stats import nearest_rank, percentiles
from loadtests.results import Percentiles

# Scenarios whose request makes its one upstream call while the client waits (jobs answer 202 first; chat
# messages travel inside one WebSocket, with no header of their own). ``overhead`` is ``analyse`` against
# the instant profile: there the join gives what the server adds with no waiting, the figure a CPU
# regression moves.
JOINABLE = frozenset({"analyse", "stream", "overhead"})
CLOCK_SLACK_MS = 2.0  # a part below -2 ms would mean the two clocks disagree


def _spans(calls: Sequence[Sequence[Any]]) -> dict[str, tuple[float, float, int]]:
    """request id -> (first arrival, last end, number of calls)."""
    spans: dict[str, tuple[float, float, int]] = {}
    for rid, arrival, end, _status in calls:
        if not rid:
            continue
        if rid in spans:
            first, last, n = spans[rid]
            spans[rid] = (min(first, arrival), max(last, end), n + 1)
        else:
            spans[rid] = (float(arrival), float(end), 1)
    return spans


def _three(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {f"p{q}": round(nearest_rank(ordered, q), 3) for q in (50, 95, 99)}


def join(
    records: Sequence[Record], calls: Sequence[Sequence[Any]]
) -> tuple[dict[str, Any], Percentiles | None]:
    """(``breakdown_ms``, ``overhead_ms``) for the window's completed requests."""
    spans = _spans(calls)
    before: list[float] = []
    during: list[float] = []
    after: list[float] = []
    overhead: list[float] = []
    ends: list[float] = []  # each joined request's end (wall clock), for the overhead's interval
    unmatched = 0
    retried = 0
    clock_mismatch = 0
    for r in records:
        span = spans.get(r.rid)
        if span is None or r.mono is None or r.latency_ms is None:
            unmatched += 1
            continue
        first, last, n = span
        retried += n > 1
        b = (first - r.mono) * 1000.0
        u = (last - first) * 1000.0
        a = r.latency_ms - b - u
        if b < -CLOCK_SLACK_MS or a < -CLOCK_SLACK_MS:
            clock_mismatch += 1
        before.append(b)
        during.append(u)
        after.append(a)
        overhead.append(r.latency_ms - u)
        ends.append(r.start + r.latency_ms / 1000.0)
    breakdown = {
        "before_upstream": _three(before),
        "upstream": _three(during),
        "after_upstream": _three(after),
        "matched": len(during),
        "unmatched": unmatched,
        "retried": retried,
        "clock_mismatch": clock_mismatch,
        "clock": "monotonic",
    }
    intervals = percentile_intervals(list(zip(ends, overhead, strict=True)))
    if intervals is not None:  # what the server adds is judged by its interval, as latency is
        breakdown["overhead_ci_ms"] = asdict(intervals)
    return breakdown, percentiles(overhead)


def overhead_dict(value: Percentiles | None) -> dict[str, Any] | None:
    return None if value is None else asdict(value)
