"""Capacity's pure rules: which level comes next, and what bound a capacity."""

from __future__ import annotations

import dataclasses

from loadtests.analysis.capacity import next_level
from loadtests.results import Percentiles, Point

LATE = (
    "the mock was late by 32.0 ms at p99 (limit 2% of L, at least 10 ms: 10 ms): the upstream's own timing "
    "was off"
)


def _walk(capacity: int, *, start: int, max_users: int = 1024, max_points: int = 8) -> list[int]:
    """The levels the search visits against a server that passes up to ``capacity`` users."""
    passed: dict[int, bool] = {}
    while len(passed) < max_points:
        users = next_level(passed, start=start, max_users=max_users)
        if users is None:
            break
        passed[users] = users <= capacity
    return list(passed)


def test_the_search_brackets_then_bisects_within_its_budget() -> None:
    assert _walk(4, start=4) == [4, 16, 10, 7, 5]  # exact: 5 fails, 4 passes
    assert _walk(1, start=1) == [1, 4, 2]
    assert _walk(0, start=8) == [8, 2, 1]  # nothing passes: capacity 0
    assert _walk(40, start=1000, max_users=1024)[:3] == [1000, 250, 62]  # a wrong seed costs two points
    walked = _walk(300, start=128)
    assert walked[:2] == [128, 512] and len(walked) <= 8
    assert _walk(5000, start=128, max_users=1024) == [128, 512, 1024]  # bounded by --max-users


def test_undecided_levels_split_the_span_and_the_search_narrows_every_gap() -> None:
    # 128 passed, 224 failed, 170 undecided: the wider gap, 128 to 170, is bisected first, then 170 to 224.
    passed: dict[int, bool | None] = {128: True, 224: False, 170: None}
    assert next_level(passed, start=128, max_users=1024) == 149
    passed.update({149: True})
    assert next_level(passed, start=128, max_users=1024) == 197
    done = {128: True, 131: None, 150: None, 153: False}  # both gaps within 5 % of 128; between: noise
    assert next_level(done, start=128, max_users=1024) is None
    # Nothing failed yet, 512 undecided: the bracket goes on above it.
    assert next_level({128: True, 512: None}, start=128, max_users=1024) == 1024


def test_the_interval_and_bound_of_a_search_that_ran_out_of_levels() -> None:
    from loadtests.analysis.capacity import SearchState, capacity_interval

    state = SearchState(passed={}, points={}, why={}, measurements={})
    for users, passed in ((128, True), (512, False)):
        state.record(users, _point(users, p95_ms=1000.0), _judged(passed))
    found = capacity_interval(state, max_users=1024, broken=None)
    assert (found.lo, found.hi, found.bound) == (128, 512, "max_points")  # 128-512 is still wide


def _judged(passed: bool | None):  # type: ignore[no-untyped-def]
    from loadtests.analysis.capacity import LevelJudgement

    return LevelJudgement(passed=passed, why="")


def _point(users: int, *, p95_ms: float) -> Point:
    latency = Percentiles(
        count=50, min=p95_ms, mean=p95_ms, p50=p95_ms, p90=p95_ms, p95=p95_ms, p99=p95_ms, max=p95_ms
    )
    return Point(
        variant="flask-sync", scenario="analyse", load_model="closed", users=users, rate=None, repeat=0,
        duration_s=5.0, completed=50, failed=0, unfinished=0, throughput_rps=min(users, 4) / 1.0,
        latency_ms=latency, ttft_ms=None, upstream_peak_in_flight=min(users, 4), upstream_requests=50,
        littles_law=None, cpu={}, valid=True, invalid_reasons=[], upstream_latency_s=1.0, warmup_s=2.0,
        failures_by_status={}, predicted_ceiling=4, server_cpu_ms_per_request=1.0,
    )  # fmt: skip


def test_what_stopped_a_search_is_read_from_its_first_failing_level() -> None:
    from loadtests.analysis.capacity import bound_of

    slow = dataclasses.replace(_point(128, p95_ms=1320.0), upstream_peak_in_flight=128, throughput_rps=118.6)
    assert bound_of(slow) == "latency"  # every call in flight, none failed, no CPU ran out: just slower
    assert bound_of(_point(128, p95_ms=32_000.0)) == "concurrency"  # the gauge stopped at 4
    assert bound_of(dataclasses.replace(slow, failed=3)) == "errors"
    unsteady = dataclasses.replace(slow, valid=False, invalid_reasons=["the window itself was not steady"])
    assert bound_of(unsteady) == "invalid"
    late = dataclasses.replace(slow, valid=False, invalid_reasons=[LATE])
    assert bound_of(late) == "mock"


def test_repeated_searches_are_summarised_by_their_intervals_union_and_overlap() -> None:
    from loadtests.analysis.capacity import intervals_overlap, repeat_summary

    assert intervals_overlap([128, 224], [170, 176]) and not intervals_overlap([128, 170], [170, 224])
    assert intervals_overlap([208, None], [320, 332])  # nothing failed above 208: unbounded
    entries = [
        {"variant": "fastapi-async", "scenario": "analyse", "users": u, "interval": [u, h]}
        for u, h in ((208, 224), (320, 332), (170, 176))
    ]
    (row,) = repeat_summary(entries)
    assert row["union"] == [170, 332] and row["overlap"] is False  # 320 passed where 176 failed
    (row,) = repeat_summary([entries[0], {**entries[0], "interval": [214, None]}])
    assert row["union"] == [208, None] and row["overlap"] is True


def test_a_p95_too_high_is_decided_by_its_lower_bound_when_the_sample_cannot_bound_it_above() -> None:
    from loadtests.analysis.capacity import Slo, judge

    few = {"p95": None, "why": {"p95": "40 completions (40 effectively independent): a p95 needs 72"}}
    high = dataclasses.replace(_point(8, p95_ms=1600.0), latency_ci_ms={**few, "lower": {"p95": 1400.0}})
    assert judge(high, Slo(), 1.0).passed is False  # even its lower bound is above 1250 ms
    near = dataclasses.replace(_point(8, p95_ms=1200.0), latency_ci_ms={**few, "lower": {"p95": 1100.0}})
    judged = judge(near, Slo(), 1.0)
    assert judged.passed is None and "a p95 needs 72" in judged.why  # below the limit, but unbounded above


def test_an_overhead_slo_judges_what_the_server_adds_whatever_the_upstream_took() -> None:
    from loadtests.analysis.capacity import Slo, judge

    slo = Slo(overhead_p95_ms=50.0)
    assert "overhead p95 <= 50 ms" in slo.describe()
    # A tailed upstream: p95 latency 9 s, far past 1.25 x L, but the server added 10-20 ms: passes.
    tail = dataclasses.replace(
        _point(64, p95_ms=9000.0),
        overhead_ms=Percentiles(count=500, min=5, mean=12, p50=11, p90=18, p95=20, p99=30, max=40),
        breakdown_ms={"overhead_ci_ms": {"p95": [17.0, 24.0], "why": {}, "lower": {}}},
    )
    assert judge(tail, slo, 1.0).passed is True
    assert judge(tail, Slo(), 1.0).passed is False  # the latency rule would blame the upstream's tail
    slow = dataclasses.replace(tail, breakdown_ms={"overhead_ci_ms": {"p95": [40.0, 70.0], "why": {}}})
    assert judge(slow, slo, 1.0).passed is None  # within the noise: measured again, longer
    unjoined = dataclasses.replace(tail, overhead_ms=None, breakdown_ms=None)
    assert judge(unjoined, slo, 1.0).passed is None


def test_a_level_is_decided_at_the_slo_limit_when_its_point_was_measured_against_it() -> None:
    from loadtests.analysis.capacity import Slo, judge

    unbounded = {"p95": None, "why": {"p95": "1280 completions (55 effectively independent): a p95 needs 72"}}
    at_limit = {"limit_ms": 1250.0, "interval": [1031.0, 1046.0], "lower": None, "effective_n": 1280.0}
    point = dataclasses.replace(_point(128, p95_ms=1040.0), latency_ci_ms=unbounded)
    assert judge(point, Slo(), 1.0).passed is None  # by the p95's own interval: within the noise
    decided = dataclasses.replace(point, extra={**point.extra, "p95_at_limit": at_limit})
    assert judge(decided, Slo(), 1.0).passed is True
    other = {**at_limit, "limit_ms": 1500.0}  # measured against another limit: not this SLO's evidence
    assert (
        judge(dataclasses.replace(point, extra={**point.extra, "p95_at_limit": other}), Slo(), 1.0).passed
        is None
    )
