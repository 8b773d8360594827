"""Capacity under an SLO, the pure part: how a level is judged, which level to measure next, what bound the
capacity, and the entry a search writes (``loadtests.driver.capacity`` measures; this decides).

A level is decided by evidence that clears the SLO by more than the noise: it **passes** when its point is
valid, nothing failed beyond the limit, nothing hung, and the whole 95 % interval of its p95 latency
(``loadtests.analysis.intervals``) lies at or under p95_factor x L (L as the mock injected it); it **fails**
when it is invalid, failed or hung beyond the limits, or the whole interval lies above the limit; otherwise
it is **undecided** (the interval straddles the limit, or the sample is too small for a p95 interval) and
the search measures it again, longer. The capacity is an interval [lo, hi]: lo the most users that passed,
hi the fewest above lo that failed (None when none did); what stopped it is read from the first level
above lo (see :func:`bound_of`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtests.analysis.validity import (
    LOADGEN_CPU_LIMIT,
    MACHINE_CHANGED,
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
    # When set, the p95 of what the server adds (each request's latency minus its own upstream call, from
    # the x-request-id join) must stay under this many ms, instead of the p95 latency against L: the same
    # meaning under any upstream latency distribution, a tailed one included.
    overhead_p95_ms: float | None = None

    def describe(self) -> str:
        latency = (
            f"p95 <= {self.p95_factor:g} x L"
            if self.overhead_p95_ms is None
            else f"overhead p95 <= {self.overhead_p95_ms:g} ms"
        )
        return f"{latency}, failed <= {self.failed_share:.1%}, hung requests <= {self.hung}"

    def cutoff_ms(self, latency_s: float) -> float:
        """A level whose mean latency is past this and still rising cannot pass: it is cut short."""
        if self.overhead_p95_ms is None:
            return self.p95_factor * latency_s * 1000.0
        return 3.0 * latency_s * 1000.0 + self.overhead_p95_ms  # a queue, whatever the upstream's tail


@dataclass(frozen=True, kw_only=True)
class LevelJudgement:
    """One level against the SLO: passed True (the evidence clears it), False (it breaks it) or None
    (undecided: within the noise)."""

    passed: bool | None
    why: str  # why it failed or is undecided ("" when it passed)

    @property
    def decision(self) -> str:
        return {True: "pass", False: "fail", None: "undecided"}[self.passed]


def p95_interval(point: Point) -> tuple[float, float] | str | None:
    """The p95's 95 % interval, or why there is none; a point measured before intervals existed (no
    ``latency_ci_ms``) is judged by its p95 alone, as then."""
    if point.latency_ci_ms is None:
        p95 = point.latency_ms.p95 if point.latency_ms else None
        return None if p95 is None else (p95, p95)
    found = point.latency_ci_ms.get("p95")
    if found is None:
        return str((point.latency_ci_ms.get("why") or {}).get("p95", "no p95 interval"))
    return float(found[0]), float(found[1])


def decision_interval(point: Point, limit_ms: float) -> tuple[tuple[float, float] | str | None, float | None]:
    """(the p95 interval a level is decided by, or why there is none; its lower bound alone): the one at
    the SLO's own limit when the point was measured against it (``extra["p95_at_limit"]``), else the p95's."""
    at = point.extra.get("p95_at_limit")
    if isinstance(at, dict) and abs(float(at.get("limit_ms", -1.0)) - limit_ms) < 0.5:
        found = at.get("interval")
        if found is None:
            return str(at.get("why") or "no p95 interval"), at.get("lower")
        return (float(found[0]), float(found[1])), None
    return p95_interval(point), ((point.latency_ci_ms or {}).get("lower") or {}).get("p95")


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
    if slo.overhead_p95_ms is not None:
        return _judge_overhead(point, slo.overhead_p95_ms)
    interval, floor = decision_interval(point, limit_ms)
    p95 = point.latency_ms.p95
    if isinstance(interval, str) or interval is None:
        # Too few completions to bound the p95 above; its lower bound alone can still show it is too high.
        if floor is not None and floor > limit_ms:
            return LevelJudgement(
                passed=False, why=f"p95 {p95:.0f} ms, at least {floor:.0f} ms > {limit_ms:.0f} ms"
            )
        return LevelJudgement(passed=None, why=f"p95 {p95:.0f} ms has no interval: {interval}")
    low, high = interval
    if low > limit_ms:
        return LevelJudgement(
            passed=False, why=f"p95 {p95:.0f} ms [{low:.0f}, {high:.0f}] > {limit_ms:.0f} ms"
        )
    if high > limit_ms:
        return LevelJudgement(
            passed=None,
            why=f"within the noise: p95 {p95:.0f} ms, its interval [{low:.0f}, {high:.0f}] straddles "
            f"{limit_ms:.0f} ms",
        )
    return LevelJudgement(passed=True, why="")


def _judge_overhead(point: Point, limit_ms: float) -> LevelJudgement:
    """The p95 of what the server added (latency minus its own upstream call), by its interval."""
    overhead = point.overhead_ms
    found = (point.breakdown_ms or {}).get("overhead_ci_ms") or {}
    if overhead is None:
        return LevelJudgement(passed=None, why="no request joined with its upstream call: no overhead")
    interval = found.get("p95")
    floor = (found.get("lower") or {}).get("p95")
    if interval is None:
        if floor is not None and floor > limit_ms:
            return LevelJudgement(passed=False, why=f"overhead p95 at least {floor:.0f} ms > {limit_ms:g} ms")
        why = (found.get("why") or {}).get("p95", "no interval")
        return LevelJudgement(passed=None, why=f"overhead p95 {overhead.p95:.0f} ms has no interval: {why}")
    low, high = float(interval[0]), float(interval[1])
    if low > limit_ms:
        return LevelJudgement(
            passed=False, why=f"overhead p95 {overhead.p95:.0f} ms [{low:.0f}, {high:.0f}] > {limit_ms:g} ms"
        )
    if high > limit_ms:
        return LevelJudgement(
            passed=None,
            why=f"within the noise: overhead p95 {overhead.p95:.0f} ms, its interval [{low:.0f}, {high:.0f}] "
            f"straddles {limit_ms:g} ms",
        )
    return LevelJudgement(passed=True, why="")


def tolerance(lo: int) -> int:
    """How close the search brings the edge: one user, or 5 % of the capacity."""
    return max(1, math.floor(0.05 * lo))


def next_level(passed: dict[int, bool | None], *, start: int, max_users: int) -> int | None:
    """The next user count to measure, or None when the capacity is resolved: bracketing by x4 until a
    level fails, then bisection (geometric while wide) of the wider of two gaps, lo (the most users that
    passed) to the first level above it, and the last undecided level to hi (the fewest above lo that
    failed), until both are within :func:`tolerance`."""
    if not passed:
        return max(1, min(start, max_users))
    lo = max((u for u, p in passed.items() if p is True), default=0)
    above = sorted(u for u, p in passed.items() if u > lo and p is not True)
    hi = next((u for u in above if passed[u] is False), None)
    if lo == 0:  # nothing passed yet: step down by 4 until something does (capacity 0 if 1 user fails)
        lowest = min(passed)
        return None if lowest == 1 else max(1, lowest // 4)
    if hi is None:  # nothing failed above lo: bracket upwards from the highest level not known to fail
        top = max([lo, *above])
        if top < max_users:
            return min(max_users, top * 4)
    between = [u for u in above if hi is None or u < hi]  # undecided levels
    # Two gaps matter: lo to the first level above it (where the capacity's edge is), and the last
    # undecided level to hi (where the server fails for certain); between undecided levels, more of the
    # same noise.
    edges = [(lo, between[0] if between else hi)] if between or hi is not None else []
    if between and hi is not None:
        edges.append((between[-1], hi))
    gaps = [(a, b) for a, b in edges if b is not None and b - a > tolerance(lo)]
    if not gaps:
        return None
    a, b = max(gaps, key=lambda gap: gap[1] / gap[0])
    mid = round(math.sqrt(a * b)) if b > 4 * a else (a + b) // 2
    mid = min(max(mid, a + 1), b - 1)
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
    if any(r.startswith((OTHER_CPU, MACHINE_CHANGED)) for r in point.invalid_reasons):
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
    """What a search has measured so far: each level's (last) point, its decision and why, and how many
    measurements it took."""

    passed: dict[int, bool | None]
    points: dict[int, Point]
    why: dict[int, str]
    measurements: dict[int, int]
    # Levels measured again with fresh processes, and that decision (the search's edges, see confirm).
    confirmations: dict[int, bool | None] = field(default_factory=dict)

    def record(self, users: int, point: Point, judgement: LevelJudgement, *, measurements: int = 1) -> None:
        self.passed[users], self.points[users], self.why[users] = judgement.passed, point, judgement.why
        self.measurements[users] = measurements

    def edges(self) -> list[int]:
        """The levels that make the interval, not yet measured with fresh processes: lo (the most users
        that passed) and hi (the fewest above it that failed)."""
        lo = max((u for u, p in self.passed.items() if p is True), default=0)
        hi = min((u for u, p in self.passed.items() if u > lo and p is False), default=None)
        return [u for u in (lo, hi) if u and u not in self.confirmations]

    def confirm(self, users: int, point: Point, judgement: LevelJudgement, *, measurements: int) -> None:
        """A level measured again with fresh processes: decided only when both decisions agree (the
        process-to-process spread is part of the noise a decision must clear), otherwise undecided."""
        first = self.passed[users]
        self.confirmations[users] = judgement.passed
        self.measurements[users] = self.measurements.get(users, 1) + measurements
        self.points[users] = point
        if judgement.passed != first:
            words = {True: "passed", False: "failed", None: "undecided"}
            self.passed[users] = None
            self.why[users] = (
                f"within the noise: {words[first]}, then {words[judgement.passed]} with fresh processes"
                + (f" ({judgement.why})" if judgement.why else "")
            )


@dataclass(frozen=True, kw_only=True)
class CapacityInterval:
    lo: int  # the most users that passed (0: none did)
    hi: int | None  # the fewest users above lo that failed (None: none did)
    undecided: list[int]  # levels above lo, below hi, within the noise
    bound: str


def capacity_interval(state: SearchState, *, max_users: int, broken: int | None) -> CapacityInterval:
    """lo, hi and what bound the capacity: the first level above lo says (undecided: within the noise;
    failed: :func:`bound_of` its point); gaps the search could not close: max_points."""
    passed = state.passed
    lo = max((u for u, p in passed.items() if p is True), default=0)
    above = sorted(u for u, p in passed.items() if u > lo and p is not True)
    hi = next((u for u in above if passed[u] is False), None)
    undecided = [u for u in above if passed[u] is None and (hi is None or u < hi)]
    if broken is not None:
        bound = "measurement"
    elif passed and next_level(passed, start=lo or 1, max_users=max_users) is not None:
        bound = "max_points"
    elif not above:
        bound = "max_users" if lo >= max_users else "max_points"
    elif passed[above[0]] is None:
        bound = "undecided"
    else:
        bound = bound_of(state.points[above[0]])
    return CapacityInterval(lo=lo, hi=hi, undecided=undecided, bound=bound)


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
    """The ``capacity`` entry of a finished search: its interval, what bound it, every level."""
    found = capacity_interval(state, max_users=max_users, broken=broken)
    best = state.points.get(found.lo)
    return {
        "variant": variant,
        "scenario": scenario,
        "users": found.lo,
        "interval": [found.lo, found.hi],
        "undecided": found.undecided,
        "throughput_rps": round(best.throughput_rps, 3) if best is not None else 0.0,
        "bound": found.bound,
        "points": len(state.passed),
        "measurements": sum(state.measurements.values()),
        "levels": [_level(u, state) for u in sorted(state.passed)],
        "first_failing_users": found.hi,
        "measurement_failed_users": broken,
        "in_flight_at_capacity": best.upstream_peak_in_flight if best is not None else None,
        "p95_ms_at_capacity": best.latency_ms.p95 if best is not None and best.latency_ms else None,
        "slo": slo.describe(),
        "machine": machine_summary(state, found.bound),
        "wall_time_s": wall_time_s,
    }


def machine_summary(state: SearchState, bound: str) -> dict[str, Any]:
    """What the machine gave the search: one core's speed at each level (a fixed piece of work's CPU ms,
    the median of the window's two ends), its spread across the levels, the most steal. A capacity bound
    by server CPU is this machine's: it scales with that speed, so the entry says so."""
    speeds, steals = [], []
    for point in state.points.values():
        machine = point.extra.get("machine") or {}
        ends = [v for v in (machine.get("calibration_before_ms"), machine.get("calibration_after_ms")) if v]
        if ends:
            speeds.append(sum(ends) / len(ends))
        if machine.get("steal_percent") is not None:
            steals.append(float(machine["steal_percent"]))
    summary: dict[str, Any] = {
        "calibration_ms": round(sorted(speeds)[len(speeds) // 2], 4) if speeds else None,
        "calibration_spread": round(max(speeds) / min(speeds) - 1.0, 4) if speeds else None,
        "steal_percent_max": max(steals) if steals else None,
    }
    if bound == "server_cpu":
        summary["note"] = (
            "bound by a server process's CPU: the capacity is this machine's, and scales with its speed "
            "(calibration_ms: CPU ms of a fixed piece of work; lower is faster)"
        )
    return summary


def _level(users: int, state: SearchState) -> dict[str, Any]:
    point = state.points[users]
    interval = p95_interval(point)
    return {
        "users": users,
        "passed": state.passed[users],
        "decision": LevelJudgement(passed=state.passed[users], why="").decision,
        "why": state.why[users],
        "peak_in_flight": point.upstream_peak_in_flight,
        "p95_ms": point.latency_ms.p95 if point.latency_ms else None,
        "p95_ci_ms": list(interval) if isinstance(interval, tuple) else None,
        "measurements": state.measurements.get(users, 1),
        # the decision of its measurement with fresh processes ("pass", "fail", "undecided"), when it had one
        "fresh_processes": (
            LevelJudgement(passed=state.confirmations[users], why="").decision
            if users in state.confirmations
            else None
        ),
        "machine": point.extra.get("machine"),
    }


def level_marks(levels: list[dict[str, Any]]) -> str:
    """'4+, 16-, 10?': each level and its decision (+ pass, - fail, ? undecided), for tables."""
    marks = {True: "+", False: "-", None: "?"}
    return ", ".join(f"{lv['users']}{marks[lv.get('passed')]}" for lv in levels)


def entry_interval(entry: dict[str, Any]) -> tuple[Any, Any]:
    """(lo, hi) of a capacity entry; one from before intervals reads its users and first failing level
    (what its search had established)."""
    lo, hi = entry.get("interval") or [entry.get("users"), entry.get("first_failing_users")]
    return lo, hi


def interval_text(entry: dict[str, Any], *, unit: str = " users") -> str:
    """'128-224 users', or '128+ users' when nothing failed above."""
    lo, hi = entry_interval(entry)
    return f"{lo}-{hi}{unit}" if hi is not None else f"{lo}+{unit}"


def intervals_overlap(a: Sequence[int | None], b: Sequence[int | None]) -> bool:
    """Whether two capacity intervals [lo, hi) can hold the same capacity (hi None: unbounded)."""
    (a_lo, a_hi), (b_lo, b_hi) = a, b
    assert a_lo is not None and b_lo is not None
    return (b_hi is None or a_lo < b_hi) and (a_hi is None or b_lo < a_hi)


def repeat_summary(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (variant, scenario) searched more than once: each search's interval, their union, and whether
    one capacity fits them all (the largest lo below the smallest hi)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault((str(entry["variant"]), str(entry["scenario"])), []).append(entry)
    summary = []
    for (variant, scenario), found in groups.items():
        intervals = [list(entry_interval(e)) for e in found]
        los = [i[0] for i in intervals]
        his = [i[1] for i in intervals]
        top = None if any(h is None for h in his) else max(his)
        least = None if all(h is None for h in his) else min(h for h in his if h is not None)
        summary.append(
            {
                "variant": variant,
                "scenario": scenario,
                "intervals": intervals,
                "union": [min(los), top],
                "overlap": least is None or max(los) < least,
                "wall_time_s": [e.get("wall_time_s") for e in found],
                "points": [e.get("measurements", e.get("points")) for e in found],
            }
        )
    return summary
