"""One faults entry from its point: what a client got (goodput, the failed share, latency) and what the
upstream got (the mock's calls per finished client request: how much retries multiply the load)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from loadtests.results import Point


def summarise(point: Point, *, rate: float, retries: int, errors: tuple[str, ...]) -> dict[str, Any]:
    finished = point.completed + point.failed
    calls = point.upstream_requests
    return {
        "variant": point.variant,
        "scenario": point.scenario,
        "users": point.users,
        "fault_rate": rate,
        "errors": list(errors),
        "retries": retries,
        "goodput_rps": round(point.throughput_rps, 3),
        "failed_share": round(point.failed / finished, 4) if finished else 0.0,
        "failures_by_status": point.failures_by_status,
        "p50_ms": point.latency_ms.p50 if point.latency_ms else None,
        "p95_ms": point.latency_ms.p95 if point.latency_ms else None,
        "upstream_calls_per_request": round(calls / finished, 3) if calls is not None and finished else None,
        "valid": point.valid,
        "point": asdict(point),
    }
