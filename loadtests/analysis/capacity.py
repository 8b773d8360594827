"""Capacity under an SLO, the pure part: how a level is judged, which level to measure next, what bound the
capacity, and the entry a search writes (``loadtests.driver.capacity`` measures; this decides).

A level passes when its point is valid and meets the SLO: p95 latency <= p95_factor x L (L as the mock
injected it), failed share <= the limit, no hung request. The capacity is the highest passing level; what
stopped it is read from the first failing level above it (see :func:`bound_of`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from loadtests.analysis.validity import (
    LOADGEN_CPU_LIMIT,
    MACHINE_SATURATED,
    MOCK_LATE,
    OTHER_CPU,
    peak_tolerance,
)
from loadtests.results import Point

SEED_CAP = 128  # the first level tried is the predicted ceiling, but no more than this
DEFAULT_START = 8  # ... or this, when nothing is predicted


@dataclass(frozen=True, kw_only=True)
class Slo:
    p95_factor: float = 1.25  # p95 latency <= this x L
    failed_share: float = 0.001
    hung: int = 0

    def describe(self) -> str:
        return (
            f"p95 <= {self.p95_factor:g} x L, failed <= {self.failed_share:.1%}, hung requests <= {self.hung}"
        )


@dataclass(frozen=True, kw_only=True)
class LevelJudgement:
    """One level against the SLO."""

    passed: bool
    why: str  # why it failed ("" when it passed)


def judge(point: Point, slo: Slo, latency_s: float) -> LevelJudgement:
    if point.latency_ms is None or point.completed == 0:
        return LevelJudgement(passed=False, why="no request completed")
    total = point.completed + point.failed
    failed_share = point.failed / total if total else 0.0
    limit_ms = slo.p95_factor * latency_s * 1000.0
    if not point.valid:
        return LevelJudgement(passed=False, why="invalid: " + "; ".join(point.invalid_reasons))
    if point.hung > slo.hung:
        return LevelJudgement(passed=False, why=f"{point.hung} hung")
    if failed_share > slo.failed_share:
        return LevelJudgement(passed=False, why=f"failed {failed_share:.2%}")
    if point.latency_ms.p95 > limit_ms:
        return LevelJudgement(passed=False, why=f"p95 {point.latency_ms.p95:.0f} ms > {limit_ms:.0f} ms")
    return LevelJudgement(passed=True, why="")


def next_level(passed: dict[int, bool], *, start: int, max_users: int) -> int | None:
    """The next user count to measure, or None when the capacity is found: the highest pass below the
    lowest fail, to within one user or 5 % (bracketing by x4, then bisection, geometric while wide)."""
    if not passed:
        return max(1, min(start, max_users))
    ok = [u for u, p in passed.items() if p]
    bad = [u for u, p in passed.items() if not p]
    lo = max(ok, default=0)
    hi = min((u for u in bad if u > lo), default=None)
    if hi is None:
        if lo >= max_users:
            return None
        return min(max_users, lo * 4)
    if lo == 0:  # nothing passed yet: step down by 4 until something does (capacity 0 if 1 user fails)
        return None if hi == 1 else max(1, hi // 4)
    if hi - lo <= max(1, math.floor(0.05 * lo)):
        return None
    mid = round(math.sqrt(lo * hi)) if hi > 4 * lo else (lo + hi) // 2
    mid = min(max(mid, lo + 1), hi - 1)
    return None if mid in passed else mid


def seed_level(predicted: int | None, start_users: int | None = None) -> int:
    """The first level tried: --start-users, else the prediction clamped to SEED_CAP, else DEFAULT_START."""
    return start_users or min(predicted or DEFAULT_START, SEED_CAP)


def guess_levels(predicted: int | None, *, max_users: int, max_points: int) -> list[int]:
    """For the ETA only: the levels the search would measure if the prediction held (it never decides)."""
    truth = predicted if predicted is not None else 4 * DEFAULT_START
    passed: dict[int, bool] = {}
    while len(passed) < max_points:
        users = next_level(passed, start=seed_level(predicted), max_users=max_users)
        if users is None:
            break
        passed[users] = users <= truth
    return list(passed)


def bound_of(point: Point | None) -> str:
    """What stopped the capacity, read from the lowest failing level above it (None: nothing failed)."""
    if point is None:
        return "max_users"
    loadgen = point.extra.get("loadgen_cpu_percent") or {}
    if any(v > LOADGEN_CPU_LIMIT for v in loadgen.values()):
        return "loadgen"
    if point.extra.get("server_cpu_bound"):
        return "server_cpu"
    busy = point.extra.get("machine_busy_percent")
    cpus = os.cpu_count() or 1
    if busy is not None and busy > MACHINE_SATURATED * 100.0 * cpus:
        return "machine"
    if any(r.startswith(OTHER_CPU) for r in point.invalid_reasons):
        return "machine"
    if any(r.startswith(MOCK_LATE) for r in point.invalid_reasons):
        return "mock"
    peak, users = point.upstream_peak_in_flight, point.users or 0
    if peak is not None and peak < users - peak_tolerance(users):
        return "concurrency"
    if point.failed:
        return "errors"
    if peak is not None and peak < users:  # within the tolerance, yet never every user's call at once
        return "concurrency"
    if not point.valid:
        return "invalid"
    return "latency"  # every call in flight, nothing failed, no CPU ran out: each request took longer


@dataclass(kw_only=True)
class SearchState:
    """What a search has measured so far: each level's point, whether it passed and why not."""

    passed: dict[int, bool]
    points: dict[int, Point]
    why: dict[int, str]

    def record(self, users: int, point: Point, judgement: LevelJudgement) -> None:
        self.passed[users], self.points[users], self.why[users] = judgement.passed, point, judgement.why


def capacity_entry(
    variant: str,
    scenario: str,
    state: SearchState,
    *,
    slo: Slo,
    max_users: int,
    broken: int | None,
    wall_time_s: float,
) -> dict[str, Any]:
    """The ``capacity`` entry of a finished search: the highest passing level, what bound it, every level."""
    passed, points = state.passed, state.points
    capacity = max((u for u, p in passed.items() if p), default=0)
    above = sorted(u for u, p in passed.items() if not p and u > capacity)
    first_fail = points[above[0]] if above else None
    bound = bound_of(first_fail) if first_fail is not None or capacity >= max_users else "max_points"
    if broken is not None:
        bound = "measurement"
    best = points.get(capacity)
    return {
        "variant": variant,
        "scenario": scenario,
        "users": capacity,
        "throughput_rps": round(best.throughput_rps, 3) if best is not None else 0.0,
        "bound": bound,
        "points": len(passed),
        "levels": [
            {
                "users": u,
                "passed": passed[u],
                "why": state.why[u],
                "peak_in_flight": points[u].upstream_peak_in_flight,
            }
            for u in sorted(passed)
        ],
        "first_failing_users": above[0] if above else None,
        "measurement_failed_users": broken,
        "in_flight_at_capacity": best.upstream_peak_in_flight if best is not None else None,
        "p95_ms_at_capacity": best.latency_ms.p95 if best is not None and best.latency_ms else None,
        "slo": slo.describe(),
        "wall_time_s": wall_time_s,
    }
