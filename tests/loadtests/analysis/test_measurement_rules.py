"""The measurement rules: steady state, throughput without quantisation, hung requests, the mock's timing,
the join."""

from __future__ import annotations

import random

import pytest

from loadtests.analysis import steady
from loadtests.analysis.breakdown import join
from loadtests.analysis.rawdata import Record, cut_window, smooth_count
from loadtests.analysis.validity import Evidence, invalid_reasons


def test_a_climbing_latency_is_not_settled_however_flat_the_rate() -> None:
    # flask-sync filling its queue: 4 completions per bin from the start, latency +0.5 s per bin.
    series = steady.Series(t0=0.0, bin_s=0.5)
    for i in range(40):
        for k in range(2):
            end = i * 0.5 + 0.1 + k * 0.2
            series.add_completion(end, latency_ms=min(end, 16.0) * 1000.0)
        series.add_gauge(i * 0.5 + 0.25, 4.0)
    settled, trends = series.settled_trends(hi=20)  # bins 14..19: still climbing
    assert not settled and trends["latency_ms"] is not None and not trends["latency_ms"].settled
    assert trends["completions_per_s"] is not None and trends["completions_per_s"].settled
    settled, _ = series.settled_trends(hi=40)  # bins 34..39: the queue has cycled (latency 16 s flat)
    assert settled


def test_no_trend_window_starts_before_every_user_could_have_completed_once() -> None:
    # 16 users, one upstream call at a time, L = 1 s: a completion a second. Until 16 have completed, the
    # ones seen can look settled (here all fast, as the users served first) while 16 s waits are still to
    # come: a window inside that first cycle must not count as steady, however flat it looks.
    series = steady.Series(t0=0.0, bin_s=0.5)
    for k in range(1, 41):
        series.add_completion(float(k) - 0.3, latency_ms=1000.0 if k < 16 else 16000.0)
        series.add_gauge(float(k) - 0.5, 1.0)
        series.add_gauge(float(k), 1.0)
    assert series.bin_reaching(16) == 32 and series.bin_reaching(41) is None
    assert series.settled_trends(hi=30)[0]  # flat to the eye: the trap
    assert not series.settled_trends(hi=30, first=32)[0]  # the rule: not before the first cycle
    assert series.settled_trends(hi=80, first=32)[0]  # cycling at 16 s a request since


def test_noise_excuses_a_small_drift_never_a_large_one() -> None:
    rng = random.Random(4)
    flat = [10.0 + rng.gauss(0, 1.0) for _ in range(12)]
    assert steady.trend(flat) is not None and steady.trend(flat).settled  # type: ignore[union-attr]
    ramp = [10.0 + 0.5 * i + rng.gauss(0, 1.0) for i in range(12)]  # +55 % over the window, in noise
    result = steady.trend(ramp)
    assert result is not None and not result.settled
    assert steady.trend([1.0, None, 2.0]) is None  # too few bins to say


def test_mser5_truncates_the_transient() -> None:
    transient = [float(i) for i in range(20)] + [20.0] * 60
    cut = steady.mser5(transient)
    assert cut is not None and 15 <= cut <= 25


def test_phase_locked_workers_do_not_quantise_the_throughput() -> None:
    # flask-sync at 128 users, as measured: four workers finishing within 80 ms of each other, every
    # 1.008 s. A plain count over a 9 s window is 33 to 36 depending on where its edges fall, and a rate
    # between the completions next to the edges was 5 % high when an edge cut a cluster; the estimator
    # stays within 1 % of 4 / 1.008 wherever the edges fall, a cluster's middle included.
    ends = [k * 1.008 + d for k in range(1, 60) for d in (0.0, 0.045, 0.075, 0.08)]
    for start in (10.0, 10.07, 10.9, 10.1 + 0.04):
        assert smooth_count(ends, start, start + 9.0) / 9.0 == pytest.approx(4 / 1.008, rel=0.01), start
    plain = {sum(start <= e < start + 9.0 for e in ends) for start in (10.0, 10.05, 10.09)}
    assert len(plain) > 1  # the trap this estimator avoids


def test_one_cluster_in_a_short_window_is_counted_not_extrapolated() -> None:
    # Seen on a cut-short open-loop point of flask-sync: a 1.04 s window held one cluster of four
    # completions, and the slope through them read 77.9 requests/s.
    ends = [20.30, 20.33, 20.36, 20.38]
    assert smooth_count(ends, 19.9, 20.94) == 4.0


def test_a_request_stuck_since_before_the_window_is_hung_a_queued_one_is_not() -> None:
    queued = [
        Record(start=float(t), latency_ms=32_000.0, ttft_ms=None, status="200", ok=True) for t in range(60)
    ]
    window = cut_window(queued, 40.0, 48.0)
    assert window.hung == 0 and window.oldest_open_s > 8.0  # as old as the answers ahead of it
    stuck = Record(start=0.5, latency_ms=None, ttft_ms=None, status="unfinished", ok=False)
    window = cut_window([*queued, stuck], 40.0, 48.0)
    assert window.hung == 0  # 47.5 s old: within 1.5 x the 32 s answers, it may still be queued
    window = cut_window([*queued, stuck], 60.0, 68.0)
    assert window.hung == 1  # 67.5 s old: older than any answer could make it
    evidence = Evidence(
        load_model="closed", users=4, rate=None, completed=30, loadgen_cpu_percent={}, littles_law=None,
        upstream_peak=4, expected_peak=4, hung=window.hung,
    )  # fmt: skip
    assert any("hung" in r for r in invalid_reasons(evidence))


def test_a_late_mock_invalidates_the_point() -> None:
    base = Evidence(
        load_model="closed", users=4, rate=None, completed=30, loadgen_cpu_percent={}, littles_law=None,
        upstream_peak=4, expected_peak=4, upstream_latency_s=1.0, mock_late_p99_ms=12.0,
    )  # fmt: skip
    assert invalid_reasons(base) == []
    late = Evidence(**{**base.__dict__, "mock_late_p99_ms": 25.0})  # 2 % of 1 s is 20 ms
    assert any("mock was late by 25.0 ms" in r for r in invalid_reasons(late))


def test_the_join_splits_latency_and_counts_what_it_cannot_match() -> None:
    records = [
        Record(start=100.0, latency_ms=1500.0, ttft_ms=None, status="200", ok=True, rid="a", mono=10.0),
        Record(start=100.0, latency_ms=1200.0, ttft_ms=None, status="200", ok=True, rid="b", mono=20.0),
        Record(start=100.0, latency_ms=900.0, ttft_ms=None, status="200", ok=True, rid="c", mono=30.0),
    ]
    calls = [
        ["a", 10.4, 11.4, "200"],  # 400 ms queued, 1 s upstream, 100 ms after
        ["b", 20.01, 20.3, "529"],  # a retried call: first arrival to last end
        ["b", 20.5, 21.19, "200"],
    ]
    breakdown, overhead = join(records, calls)
    assert breakdown["matched"] == 2 and breakdown["unmatched"] == 1 and breakdown["retried"] == 1
    assert breakdown["before_upstream"]["p99"] == pytest.approx(400.0)
    assert breakdown["upstream"]["p50"] == pytest.approx(1000.0)
    assert breakdown["after_upstream"]["p99"] == pytest.approx(100.0)
    assert breakdown["clock_mismatch"] == 0
    assert overhead is not None and overhead.max == pytest.approx(500.0)
    # Two joined requests bound no percentile (a median needs six): the intervals are missing, and say why.
    ci = breakdown["overhead_ci_ms"]
    assert ci["p50"] is None and ci["p95"] is None and "2 completions" in ci["why"]["p95"]
