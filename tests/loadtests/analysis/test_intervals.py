"""The 95 % intervals of a point's percentiles and throughput: their coverage on correlated samples whose
true quantiles are known, the percentiles a sample cannot support, and the order-statistic ranks."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from loadtests.analysis import intervals
from loadtests.analysis.intervals import (
    order_statistic_ranks,
    percentile_intervals,
    quantile_interval,
    throughput_interval,
)

Z95 = 1.6448536269514722  # standard normal quantiles of the lognormal's true percentiles
Z50 = 0.0


def _ar1_lognormal(n: int, rho: float, rng: random.Random) -> list[float]:
    """Latencies exp(x_t), x an AR(1) with unit variance: correlated like a queue, quantiles known."""
    x, out = rng.gauss(0.0, 1.0), []
    scale = math.sqrt(1.0 - rho * rho)
    for _ in range(n):
        x = rho * x + scale * rng.gauss(0.0, 1.0)
        out.append(1000.0 * math.exp(x))
    return out


def _coverage(rho: float, *, reps: int, n: int, z: float, name: str, iid: bool = False) -> float:
    rng = random.Random(7)
    truth = 1000.0 * math.exp(z)
    hits = total = 0
    for _ in range(reps):
        series = _ar1_lognormal(n, rho, rng)
        if iid:  # the i.i.d. order-statistic interval, for contrast: tau forced to 1
            ordered = sorted(series)
            low, high = order_statistic_ranks(n, intervals.QUANTILES[name])
            found = (ordered[low - 1], ordered[high - 1]) if low >= 1 and high <= n else None
        else:
            found = percentile_intervals(list(enumerate(series))).get(name)  # type: ignore[union-attr]
        if found is not None:
            total += 1
            hits += found[0] <= truth <= found[1]
    return hits / total


@pytest.mark.parametrize(("name", "z"), [("p50", Z50), ("p95", Z95)])
def test_the_interval_covers_the_true_percentile_of_a_correlated_series(name: str, z: float) -> None:
    # rho 0.9: each latency carries most of the last one's, as behind a queue (tau about 19 for the mean).
    coverage = _coverage(0.9, reps=300, n=1500, z=z, name=name)
    assert coverage >= 0.90, coverage


def test_an_iid_interval_is_too_narrow_for_the_same_series() -> None:
    # What the effective sample size corrects: order statistics taken as if the samples were independent.
    assert _coverage(0.9, reps=300, n=1500, z=Z95, name="p95", iid=True) < 0.75


def test_independent_samples_keep_their_nominal_coverage() -> None:
    assert 0.92 <= _coverage(0.0, reps=400, n=400, z=Z50, name="p50") <= 0.995


def test_a_sample_too_small_for_a_p99_has_no_p99_and_says_why() -> None:
    found = percentile_intervals([(float(i), float(i)) for i in range(71)])
    assert found is not None and found.p99 is None
    assert "71 completions" in found.why["p99"] and "p99 needs" in found.why["p99"]
    assert found.p50 is not None and found.p95 is None  # 71 bounds a median, not a p95 (it needs 72)
    assert percentile_intervals([]) is None


def test_the_ranks_are_the_textbook_ones() -> None:
    assert order_statistic_ranks(100, 0.5) == (40, 61)  # x_(40) .. x_(61) for the median of 100
    low, high = order_statistic_ranks(400, 0.99)
    assert 1 <= low < 396 < high <= 400
    assert order_statistic_ranks(71, 0.99)[1] > 71


def test_a_constant_indicator_has_no_autocorrelation_to_estimate() -> None:
    assert intervals.autocorrelation_time([1.0] * 500) == 1.0
    ordered = [5.0] * 200
    found, n_eff, why, _ = quantile_interval(ordered, ordered, 0.5)
    assert found == (5.0, 5.0) and n_eff == 200 and why == ""


def test_the_throughput_interval_covers_a_poisson_rate() -> None:
    rng = random.Random(3)
    rate, seconds, hits = 20.0, 30.0, 0
    for _ in range(300):
        t, times = 0.0, []
        while True:
            t += rng.expovariate(rate)
            if t >= seconds:
                break
            times.append(t)
        found = throughput_interval(
            times, start=0.0, end=seconds, period_s=1.0, throughput=len(times) / seconds
        )
        assert found is not None
        hits += found[0] <= rate <= found[1]
    assert 0.90 <= hits / 300 <= 0.99


def test_phase_locked_completions_in_whole_periods_have_a_narrow_interval() -> None:
    # Four workers finishing together once a period (flask-sync at saturation): every whole-period batch
    # counts four, so the rate is known exactly; equal batches that cut periods would see 0, 4 and 8.
    times = [period + 0.01 * k for period in range(20) for k in range(4)]
    found = throughput_interval(times, start=0.0, end=20.0, period_s=1.0, throughput=4.0)
    assert found == (4.0, 4.0)
    assert statistics.mean(found) == 4.0
