"""The capacity search with a fake measurement: resumed levels, broken measurements, transient invalidity."""

from __future__ import annotations

import dataclasses

from loadtests.analysis.capacity import Slo
from loadtests.driver.capacity import search
from loadtests.driver.pointspec import PointSpec
from loadtests.results import Percentiles, Point

LATE = (
    "the mock was late by 32.0 ms at p99 (limit 2% of L, at least 10 ms: 10 ms): the upstream's own timing "
    "was off"
)


def _point(users: int, *, p95_ms: float, ci: tuple[float, float] | None = None) -> Point:
    """A point with a p95 (and, with ``ci``, its interval: without one it is judged by the p95 alone)."""
    intervals = None if ci is None else {"p95": list(ci), "effective_n": {"p95": 500.0}, "why": {}}
    latency = Percentiles(
        count=50, min=p95_ms, mean=p95_ms, p50=p95_ms, p90=p95_ms, p95=p95_ms, p99=p95_ms, max=p95_ms
    )
    return Point(
        variant="flask-sync", scenario="analyse", load_model="closed", users=users, rate=None, repeat=0,
        duration_s=5.0, completed=50, failed=0, unfinished=0, throughput_rps=min(users, 4) / 1.0,
        latency_ms=latency, ttft_ms=None, upstream_peak_in_flight=min(users, 4), upstream_requests=50,
        littles_law=None, cpu={}, valid=True, invalid_reasons=[], upstream_latency_s=1.0, warmup_s=2.0,
        failures_by_status={}, predicted_ceiling=4, server_cpu_ms_per_request=1.0, latency_ci_ms=intervals,
    )  # fmt: skip


def test_a_resumed_search_judges_its_finished_levels_instead_of_measuring_them_again() -> None:
    measured: list[int] = []

    def measure(spec: PointSpec, factor: float) -> Point:
        assert spec.users is not None
        measured.append(spec.users)
        return _point(spec.users, p95_ms=1000.0 if spec.users <= 4 else 2000.0)  # 4 workers

    prior = [_point(4, p95_ms=1000.0), _point(16, p95_ms=4000.0)]
    entry = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=8, prior=prior,
    )  # fmt: skip
    assert measured == [10, 7, 5]  # 4 and 16 were already known
    assert entry["users"] == 4 and entry["points"] == 5


def test_a_broken_measurement_stops_the_search_without_judging_the_server() -> None:
    from loadtests.driver.pointbuild import MEASUREMENT_FAILED

    def measure(spec: PointSpec, factor: float) -> Point:
        assert spec.users is not None
        point = _point(spec.users, p95_ms=1000.0)
        if spec.users > 4:
            point = dataclasses.replace(point, valid=False, completed=0, latency_ms=None)
            point.extra[MEASUREMENT_FAILED] = "load generator did not start within 60 s"
        return point

    entry = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=8,
    )  # fmt: skip
    assert (entry["users"], entry["bound"], entry["points"]) == (4, "measurement", 1)
    assert entry["measurement_failed_users"] == 16


def test_a_level_spoilt_by_the_mocks_timing_is_measured_again_and_judged_by_the_second_point() -> None:
    measured: list[tuple[int, int]] = []
    seen: list[Point] = []

    def measure(spec: PointSpec, factor: float) -> Point:
        assert spec.users is not None
        measured.append((spec.users, spec.repeat))
        point = _point(spec.users, p95_ms=1000.0 if spec.users <= 4 else 2000.0)
        if spec.users == 4 and spec.repeat == 0:  # one stall of the mock's clock, the first time only
            point = dataclasses.replace(point, valid=False, invalid_reasons=[LATE])
        return point

    entry = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=8, on_point=seen.append,
    )  # fmt: skip
    assert measured[:3] == [(4, 0), (4, 1), (16, 0)]
    assert entry["users"] == 4 and entry["bound"] == "concurrency"  # not 0 users because of one stall
    assert [p.valid for p in seen[:2]] == [False, True]  # both kept
    assert "mock was late" in seen[1].extra["capacity_measured_again"]


def test_a_level_the_mock_is_late_for_twice_is_bound_by_the_mock_and_other_reasons_are_not_retried() -> None:
    measured: list[tuple[int, int]] = []
    little = "Little's law off by 30%: throughput x mean latency = 11.2 in flight, but 16 users"

    def measure(spec: PointSpec, factor: float) -> Point:
        assert spec.users is not None
        measured.append((spec.users, spec.repeat))
        point = _point(spec.users, p95_ms=1000.0)
        if spec.users == 16:
            point = dataclasses.replace(point, valid=False, invalid_reasons=[LATE])
        if spec.users == 10:
            point = dataclasses.replace(point, valid=False, invalid_reasons=[little])
        return point

    entry = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=3,
    )  # fmt: skip
    assert measured == [(4, 0), (16, 0), (16, 1), (10, 0)]  # 16 twice, 10 (Little's law) once
    assert entry["users"] == 4 and entry["first_failing_users"] == 10

    def late_above_4(spec: PointSpec, factor: float) -> Point:
        assert spec.users is not None
        point = _point(spec.users, p95_ms=1000.0)
        return point if spec.users <= 4 else dataclasses.replace(point, valid=False, invalid_reasons=[LATE])

    late_only = search(
        "flask-sync", "analyse", measure=late_above_4, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=8,
    )  # fmt: skip
    assert (late_only["interval"], late_only["bound"]) == ([4, 5], "mock")  # the harness could not tell


def test_an_undecided_level_is_measured_again_longer_until_its_interval_clears_the_limit() -> None:
    measured: list[tuple[int, int, float]] = []

    def measure(spec: PointSpec, factor: float) -> Point:
        assert spec.users is not None
        measured.append((spec.users, spec.repeat, factor))
        if spec.users <= 4:
            return _point(spec.users, p95_ms=1000.0, ci=(990.0, 1010.0))
        if spec.users == 16 and factor == 1.0:  # the first window: p95 1240 ms, [1180, 1300] vs 1250 ms
            return _point(spec.users, p95_ms=1240.0, ci=(1180.0, 1300.0))
        return _point(spec.users, p95_ms=1300.0, ci=(1270.0, 1330.0))  # longer: clearly above the limit

    entry = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=2,
    )  # fmt: skip
    assert measured == [(4, 0, 1.0), (16, 0, 1.0), (16, 1, 4.0)]
    assert entry["interval"] == [4, 16] and entry["undecided"] == []
    (sixteen,) = [lv for lv in entry["levels"] if lv["users"] == 16]
    assert sixteen["decision"] == "fail" and sixteen["measurements"] == 2
    assert sixteen["p95_ci_ms"] == [1270.0, 1330.0]


def test_a_level_that_stays_within_the_noise_leaves_the_capacity_an_interval_and_says_so() -> None:
    def measure(spec: PointSpec, factor: float) -> Point:
        assert spec.users is not None
        if spec.users <= 8:
            return _point(spec.users, p95_ms=1000.0, ci=(990.0, 1010.0))
        if spec.users < 32:  # 9 to 31 users: at the limit, whatever the window
            return _point(spec.users, p95_ms=1250.0, ci=(1200.0, 1300.0))
        return _point(spec.users, p95_ms=3000.0, ci=(2900.0, 3100.0))

    entry = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=8,
        max_users=1024, max_points=12,
    )  # fmt: skip
    lo, hi = entry["interval"]
    assert lo == 8 and hi == 32
    assert entry["undecided"] and all(8 < u < 32 for u in entry["undecided"])
    assert entry["bound"] == "undecided"  # the first level above 8 is within the noise
    assert all(lv["measurements"] == 3 for lv in entry["levels"] if lv["decision"] == "undecided")


def test_the_edges_are_measured_again_with_fresh_processes_and_a_decision_that_moves_is_undecided() -> None:
    # Each server process has its own knee (one's CPU per request is not the next one's): the first holds
    # 200 users, the second 194, and so on in turn. A search on one process alone would report [200, 206).
    processes = {"count": 0}

    def knee() -> int:
        return (200, 194)[processes["count"] % 2]

    def measure(spec: PointSpec, factor: float) -> Point:
        assert spec.users is not None
        ok = spec.users <= knee()
        return _point(
            spec.users, p95_ms=1000.0 if ok else 1400.0, ci=(990.0, 1010.0) if ok else (1380.0, 1420.0)
        )

    def restart() -> None:
        processes["count"] += 1

    entry = search(
        "fastapi-async", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=128,
        max_users=1024, max_points=10, restart=restart,
    )  # fmt: skip
    lo, hi = entry["interval"]
    assert lo <= 194 and hi is not None and hi > 200, entry["interval"]  # wide enough for both processes
    moved = [
        lv for lv in entry["levels"] if lv["fresh_processes"] is not None and lv["decision"] == "undecided"
    ]
    assert moved and all(194 < lv["users"] <= 200 for lv in moved), entry["levels"]
    assert "then failed with fresh processes" in moved[0]["why"]
    assert 2 <= processes["count"] <= 4  # the edges of at most two rounds
    one_process = search(
        "fastapi-async", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=128,
        max_users=1024, max_points=10,
    )  # fmt: skip
    assert (
        one_process["interval"][1] - one_process["interval"][0] <= 10
    )  # narrower than the processes' spread


def test_an_undecided_level_grows_its_window_by_what_its_decision_lacked() -> None:
    from loadtests.driver.capacity import STRADDLE_FACTOR, extension_factor

    point = _point(128, p95_ms=1040.0)

    def at(interval: list[float] | None, effective_n: float) -> Point:
        found = {"limit_ms": 1250.0, "interval": interval, "lower": None, "effective_n": effective_n}
        return dataclasses.replace(point, extra={**point.extra, "p95_at_limit": found})

    assert extension_factor(at(None, 3.0)) == 4.0  # three turnovers: eleven first, to estimate correlation
    assert extension_factor(at(None, 2.0)) == 6.0  # a window twice as long would still count four
    assert (
        extension_factor(at(None, 40.0)) == 3.0
    )  # enough turnovers, too few effective completions: 1.3 x 72
    assert extension_factor(at([1200.0, 1300.0], 900.0)) == STRADDLE_FACTOR  # straddles: halve its width
