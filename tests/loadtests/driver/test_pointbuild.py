"""A point from what its window measured: the timing of the window, the figures and the validity verdict."""

from __future__ import annotations

import pytest

from loadtests.analysis.rawdata import Record, cut_window
from loadtests.driver.pointbuild import WindowMeasurement, build_point, span_throughput
from loadtests.driver.pointspec import (
    LEVEL_MIN_COMPLETIONS,
    MIN_PERIODS,
    PointSpec,
    Target,
    plan_timing,
    settled_window_timing,
    window_seconds,
)

TARGET = Target(
    url="http://127.0.0.1:1", mock_url="http://127.0.0.1:2", server_pid=1, mock_pid=1, ceiling=4,
    latency_s=1.0, token="t",
)  # fmt: skip


def test_window_is_sized_from_the_measured_rate_in_whole_periods() -> None:
    timing = plan_timing(latency_s=1.0, duration_s=4.2, warmup_s=None)
    assert window_seconds(timing, 4.0) == 8.0  # 30 completions at a measured 4/s, in whole periods
    assert window_seconds(timing, 128.0) == 5.0  # the requested duration, rounded up to whole periods
    assert window_seconds(timing, None) == 5.0
    assert window_seconds(timing, 0.01) == 120.0  # capped
    level = plan_timing(latency_s=0.5, duration_s=3.0, warmup_s=None, min_periods=11)
    assert window_seconds(level, 128.0) == 5.5  # a capacity level: ten whole turnovers for its decision


def test_a_settled_level_sizes_its_window_from_its_own_latency() -> None:
    level = plan_timing(
        latency_s=1.0, duration_s=3.0, warmup_s=None, min_completions=LEVEL_MIN_COMPLETIONS,
        min_periods=MIN_PERIODS,
    )  # fmt: skip

    def window(users: int, mean_ms: float, rate: float, limit_ms: float | None = 1250.0) -> float:
        timing = settled_window_timing(level, users=users, latency_mean_ms=mean_ms, slo_latency_ms=limit_ms)
        return window_seconds(timing, rate)

    # Far below the limit at 1 in flight: 100 completions, as before.
    assert window(1, 1008.0, 1.0) == 100.0
    # Past it (2 users on one worker, 2 s each): five turnovers of two users, not 100 s.
    assert window(2, 2000.0, 1.0) == 10.0
    assert window(2, 2000.0, 1.0, limit_ms=None) == 100.0  # no SLO (a sweep point): no shortcut
    assert window(512, 3000.0, 170.0) == 15.0  # five turnovers of 3 s, where 100 completions took 1 s
    # Near the knee a turnover is longer than a period: eleven turnovers, not eleven periods.
    assert window(200, 1200.0, 170.0) == 14.0
    assert window(128, 1010.0, 127.0) == 12.0
    # A sweep point (no SLO) keeps eleven periods: at 128 users on 4 workers, not eleven 32 s turnovers.
    fixed = plan_timing(latency_s=1.0, duration_s=3.0, warmup_s=None, min_periods=MIN_PERIODS)
    timing = settled_window_timing(fixed, users=128, latency_mean_ms=32_000.0, slo_latency_ms=None)
    assert window_seconds(timing, 4.0) == 11.0


def _window_records(users: int, latency_ms: float, seconds: float) -> list[Record]:
    records = []
    for user in range(users):
        t = user / users * latency_ms / 1000
        while t < seconds:
            records.append(Record(start=t, latency_ms=latency_ms, ttft_ms=None, status="200", ok=True))
            t += latency_ms / 1000
    return records


def test_build_point_checks_the_numbers_and_marks_starvation() -> None:
    window = cut_window(_window_records(4, 1000.0, 30.0), 10.0, 20.0)
    spec = PointSpec(
        variant="flask-sync", scenario="analyse", load_model="closed", users=4, rate=None, repeat=0
    )
    kwargs = dict(
        window=window,
        server_cpu_s=0.4,
        mock_cpu_s=0.1,
        gc_pauses=[],
        raw_file=None,
        loadgen_processes=1,
        mock_stats={"peak_in_flight": 4, "requests": 40, "by_status": {"200": 40}},
    )
    timing = plan_timing(latency_s=1.0, duration_s=10, warmup_s=3)
    point = build_point(spec, TARGET, timing, WindowMeasurement(loadgen_cpu={"locust": 12.0}, **kwargs))  # type: ignore[arg-type]
    assert point.valid, point.invalid_reasons
    assert point.throughput_rps == pytest.approx(4.0)
    assert point.latency_ms is not None and point.latency_ms.p99 == 1000.0
    assert point.littles_law is not None and point.littles_law.ratio == pytest.approx(1.0)
    assert point.server_cpu_ms_per_request == pytest.approx(10.0)
    assert point.extra["expected_throughput_rps"] == 4.0
    # 40 completions: a median interval, no p95 or p99 (they need 72 and 372 independent ones), and the
    # throughput's from ten whole periods of four completions each.
    ci = point.latency_ci_ms
    assert ci is not None and ci["p50"][0] <= point.latency_ms.p50 <= ci["p50"][1]
    assert ci["p95"] is None and "40 completions" in ci["why"]["p95"] and ci["p99"] is None
    assert (
        point.throughput_ci_rps is not None
        and point.throughput_ci_rps[0] <= 4.0 <= point.throughput_ci_rps[1]
    )
    starved = build_point(spec, TARGET, timing, WindowMeasurement(loadgen_cpu={"locust": 97.0}, **kwargs))  # type: ignore[arg-type]
    assert not starved.valid and "97%" in starved.invalid_reasons[0]
    assert span_throughput(window.completion_times) == pytest.approx(4.0)


def test_goodput_is_the_share_of_timely_successes_of_the_throughput() -> None:
    """Under a provider's limit, goodput counts successes within 1.25 x L. Workers in phase finish in
    clusters the closed loop's smoothed count spreads out; goodput follows that throughput, never above it."""
    records = [
        Record(start=float(t), latency_ms=latency_ms, ttft_ms=None, status="200", ok=True)
        for latency_ms in (1000.0, 2000.0)
        for _ in range(8)
        for t in range(0, 30, int(latency_ms / 1000))
    ]
    window = cut_window(records, 10.0, 13.0)  # 40 counted, 36 by the smoothed count
    assert window.completed > window.completed_smooth
    spec = PointSpec(
        variant="fastapi-async", scenario="analyse", load_model="closed", users=16, rate=None, repeat=0
    )
    stats = {
        "peak_in_flight": 16, "requests": 200, "by_status": {"200": 200},
        "limits": {"rpm": 600, "minute_s": 60.0, "rate_limited": {"rpm": 3}},
    }  # fmt: skip
    measured = WindowMeasurement(
        window=window, server_cpu_s=0.4, mock_cpu_s=0.1, gc_pauses=[], raw_file=None, loadgen_processes=1,
        mock_stats=stats, loadgen_cpu={"locust": 12.0},
    )  # fmt: skip
    point = build_point(spec, TARGET, plan_timing(latency_s=1.0, duration_s=3, warmup_s=3), measured)
    provider = point.extra["provider"]
    timely = sum(1 for ms in window.latencies_ms if ms <= 1250.0) / len(window.latencies_ms)
    assert provider["limits"] == {"rpm": 600} and provider["goodput_within_ms"] == 1250.0
    assert 0.0 < timely < 1.0
    assert provider["goodput_rps"] == pytest.approx(point.throughput_rps * timely, abs=1e-3)
    assert provider["goodput_rps"] <= point.throughput_rps
