"""Pure pieces of the sweep: exact percentiles, the window cut, timing, validity and point building."""

from __future__ import annotations

import random

import numpy as np
import pytest

from loadtests.analysis.rawdata import Record, cut_window, read_records, write_records
from loadtests.analysis.stats import nearest_rank, percentiles
from loadtests.analysis.validity import LOADGEN_CPU_LIMIT, Evidence, findings, invalid_reasons, littles_law
from loadtests.driver.pointrun import (
    PointSpec,
    Target,
    build_point,
    plan_timing,
    span_throughput,
    window_seconds,
)
from loadtests.presets import PRESETS
from loadtests.results import LittlesLaw
from loadtests.sweep import estimate_seconds, group_points, plan_points

SPEC = PointSpec(variant="flask-sync", scenario="analyse", load_model="closed", users=8, rate=None, repeat=0)
TARGET = Target(
    url="http://127.0.0.1:1", mock_url="http://127.0.0.1:2", server_pid=1, mock_pid=1, ceiling=4,
    latency_s=1.0, token="t",
)  # fmt: skip


def test_percentiles_are_exact_nearest_rank() -> None:
    rng = random.Random(3)
    samples = [rng.uniform(1000, 3000) for _ in range(1001)]
    result = percentiles(samples)
    assert result is not None and result.count == 1001
    for q, got in ((50, result.p50), (90, result.p90), (95, result.p95), (99, result.p99)):
        assert got == pytest.approx(float(np.percentile(samples, q, method="inverted_cdf")), abs=1e-3)
    assert result.max == pytest.approx(max(samples), abs=1e-3)
    assert nearest_rank([5.0], 99) == 5.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentiles([]) is None


def test_window_counts_by_completion_and_keeps_unfinished(tmp_path) -> None:  # type: ignore[no-untyped-def]
    records = [
        Record(start=0.5, latency_ms=1000.0, ttft_ms=None, status="200", ok=True),  # ends 1.5: in
        Record(start=9.0, latency_ms=2000.0, ttft_ms=None, status="200", ok=True),  # ends 11: unfinished
        Record(start=2.0, latency_ms=500.0, ttft_ms=None, status="503", ok=False),  # failed in window
        Record(start=3.0, latency_ms=None, ttft_ms=None, status="unfinished", ok=False),  # never ended
        Record(start=0.1, latency_ms=500.0, ttft_ms=None, status="200", ok=True),  # ends before window
        Record(start=4.0, latency_ms=None, ttft_ms=None, status="dropped", ok=False),
    ]
    window = cut_window(records, 1.0, 10.0)
    assert (window.completed, window.failed, window.unfinished, window.dropped) == (1, 2, 2, 1)
    assert window.failures_by_status == {"503": 1, "dropped": 1}
    assert window.latencies_ms == [1000.0]
    path = tmp_path / "raw.csv.gz"
    write_records(records, path)
    assert read_records([path]) == sorted(records, key=lambda r: r.start)


def test_window_is_sized_from_the_measured_rate_in_whole_periods() -> None:
    timing = plan_timing(latency_s=1.0, duration_s=4.2, warmup_s=None)
    assert window_seconds(timing, 4.0) == 8.0  # 30 completions at a measured 4/s, in whole periods
    assert window_seconds(timing, 128.0) == 5.0  # the requested duration, rounded up to whole periods
    assert window_seconds(timing, None) == 5.0
    assert window_seconds(timing, 0.01) == 120.0  # capped


def test_starved_load_generator_makes_the_point_invalid() -> None:
    good = Evidence(
        load_model="closed", users=8, rate=None, completed=40, loadgen_cpu_percent={"locust": 20.0},
        littles_law=LittlesLaw(expected_in_flight=8, measured_in_flight=8.1, ratio=1.01),
        upstream_peak=4, expected_peak=4,
    )  # fmt: skip
    assert invalid_reasons(good) == []
    starved = Evidence(**{**good.__dict__, "loadgen_cpu_percent": {"locust worker 1": LOADGEN_CPU_LIMIT + 5}})
    reasons = invalid_reasons(starved)
    assert len(reasons) == 1 and "locust worker 1" in reasons[0] and "--loadgen-processes" in reasons[0]


def test_other_invalidity_rules_and_findings() -> None:
    law = littles_law(load_model="closed", users=10, rate=None, throughput_rps=4.0, mean_latency_ms=2000.0)
    assert law is not None and law.ratio == pytest.approx(0.8)
    evidence = Evidence(
        load_model="closed", users=10, rate=None, completed=0, loadgen_cpu_percent={}, littles_law=law,
        upstream_peak=12, expected_peak=10, dropped=3, lag_p99_ms=80.0, server_max_process_percent=97.0,
    )  # fmt: skip
    text = " | ".join(invalid_reasons(evidence))
    for needle in (
        "no request completed",
        "Little's law",
        "above the 10 users",
        "refused",
        "send lag",
    ):
        assert needle in text
    noisy = Evidence(
        **{**evidence.__dict__, "other_cpu_percent": 60.0, "machine_busy_percent": 180.0, "cpu_count": 2}
    )
    assert any("other processes used 60%" in r for r in invalid_reasons(noisy))
    roomy = Evidence(**{**noisy.__dict__, "machine_busy_percent": 100.0})  # a neighbour, but CPU to spare
    saturated = Evidence(**{**roomy.__dict__, "machine_busy_percent": 198.0})
    assert any("99% busy" in f for f in findings(saturated))
    assert not any("other processes" in r for r in invalid_reasons(roomy))
    below = Evidence(**{**evidence.__dict__, "upstream_peak": 7})
    assert "below min(users, ceiling)" in findings(below)[0] and "CPU-bound" in findings(below)[1]
    unbound = Evidence(**{**evidence.__dict__, "users": 128, "upstream_peak": 99, "expected_peak": 40})
    assert not any("above" in r for r in invalid_reasons(unbound))
    assert "ceiling does not bind" in findings(unbound)[0]
    assert (
        littles_law(load_model="open", users=None, rate=10, throughput_rps=5, mean_latency_ms=100).ratio
        == 0.5
    )  # type: ignore[union-attr]


def test_an_open_loop_point_above_capacity_has_no_steady_state() -> None:
    # 8 arrivals/s for 10 s into a server that finishes 4/s: the backlog grows by about 40.
    overloaded = Evidence(
        load_model="open", users=None, rate=8, completed=40, loadgen_cpu_percent={}, littles_law=None,
        upstream_peak=None, expected_peak=None, arrivals=80, backlog_growth=40, mean_latency_s=3.0,
        window_s=10.0,
    )  # fmt: skip
    assert any("backlog grew by 40" in r for r in invalid_reasons(overloaded))
    # An idle server's backlog moves by Poisson noise only (lambda x W = 8 in the system): not a queue.
    kept_up = Evidence(**{**overloaded.__dict__, "backlog_growth": 7, "mean_latency_s": 1.0})
    assert invalid_reasons(kept_up) == []


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
    point = build_point(spec, TARGET, timing, loadgen_cpu={"locust": 12.0}, **kwargs)  # type: ignore[arg-type]
    assert point.valid, point.invalid_reasons
    assert point.throughput_rps == pytest.approx(4.0)
    assert point.latency_ms is not None and point.latency_ms.p99 == 1000.0
    assert point.littles_law is not None and point.littles_law.ratio == pytest.approx(1.0)
    assert point.server_cpu_ms_per_request == pytest.approx(10.0)
    assert point.extra["expected_throughput_rps"] == 4.0
    starved = build_point(spec, TARGET, timing, loadgen_cpu={"locust": 97.0}, **kwargs)  # type: ignore[arg-type]
    assert not starved.valid and "97%" in starved.invalid_reasons[0]
    assert span_throughput(window.completion_times) == pytest.approx(4.0)


def test_the_default_preset_plans_to_fit_its_promise() -> None:
    # `make bench` promises about ten minutes (README): the sweep's own plan (its ETA) must agree.
    settings = PRESETS["default"]
    assert estimate_seconds(group_points(plan_points(settings), settings), settings) <= 12 * 60


def test_a_scenario_a_variant_cannot_serve_is_skipped_and_named() -> None:
    from loadtests.sweep import UserError, _variant_info, validate

    settings = PRESETS["quick"].with_overrides(
        {"variants": ("flask-granian", "fastapi-granian"), "scenarios": ("analyse", "chat"), "users": (2,)}
    )
    planned = {(s.variant, s.scenario) for s in plan_points(validate(settings))}
    assert planned == {
        ("flask-granian", "analyse"),
        ("fastapi-granian", "analyse"),
        ("fastapi-granian", "chat"),
    }
    info = _variant_info(
        "flask-granian", verified=True, reason=None, log_file=None, scenarios=("analyse", "chat")
    )
    assert info.verified and info.reason is not None and info.reason.startswith("unsupported: chat (granian")
    assert (
        _variant_info(
            "fastapi-granian", verified=True, reason=None, log_file=None, scenarios=("chat",)
        ).reason
        is None
    )
    with pytest.raises(UserError, match="variant flask-granian cannot serve chat: granian's WSGI"):
        validate(settings.with_overrides({"scenarios": ("chat",)}))
