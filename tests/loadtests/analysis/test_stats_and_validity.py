"""Exact percentiles, the window cut, and the validity rules a point is judged by."""

from __future__ import annotations

import random

import numpy as np
import pytest

from loadtests.analysis.rawdata import Record, cut_window, read_records, write_records
from loadtests.analysis.stats import nearest_rank, percentiles
from loadtests.analysis.validity import LOADGEN_CPU_LIMIT, Evidence, findings, invalid_reasons, littles_law
from loadtests.results import LittlesLaw


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


def test_steal_makes_a_transient_invalid_point_and_a_slower_core_a_finding() -> None:
    from loadtests.analysis.validity import findings, only_transient

    base = dict(
        load_model="closed", users=8, rate=None, completed=80, loadgen_cpu_percent={"locust": 10.0},
        littles_law=None, upstream_peak=8, expected_peak=8,
    )  # fmt: skip
    assert invalid_reasons(Evidence(**base, steal_percent=1.0, calibration_change=0.05)) == []  # type: ignore[arg-type]
    stolen = invalid_reasons(Evidence(**base, steal_percent=12.0))  # type: ignore[arg-type]
    assert len(stolen) == 1 and "steal" in stolen[0] and only_transient(stolen)
    slower = Evidence(**base, calibration_change=0.3)  # type: ignore[arg-type]
    assert invalid_reasons(slower) == []
    assert [f for f in findings(slower) if "+30%" in f]
    assert not [f for f in findings(Evidence(**base, calibration_change=0.1)) if "core's speed" in f]  # type: ignore[arg-type]
