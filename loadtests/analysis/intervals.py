"""95 % intervals for a point's percentiles and throughput that respect the correlation of a closed loop.

Latencies measured under load are not independent: a request that queued behind a slow one is slow too,
and in a closed loop each user's next request starts when its last one ends. An order-statistic interval
for i.i.d. samples is then too narrow. Both intervals here are built from the data's own correlation:

* **Percentiles** (p50, p95, p99): the distribution-free order-statistic interval (the ranks from a
  Binomial(n, q), as for i.i.d. samples), taken at the *effective* sample size n / tau, where tau is the
  integrated autocorrelation time of the quantile's indicator series 1{x_i <= x_q} in completion order,
  estimated by non-overlapping batch means (tau = batch size x variance of the batch means / variance of
  the indicator, at least 1). The ranks found at n / tau are scaled back to the n samples. When the
  interval would need an order statistic beyond the sample (at 95 %, a p99 needs about 367 effectively
  independent completions, a p95 about 72, a p50 6), there is no interval: ``None`` with the reason,
  never the maximum dressed as a p99.
  A point's interval (``latency_ci_ms``) is taken within its window, by batches of sqrt(n) completions
  unless ``batch_s`` is given. It states what one start of the load shows, not the spread between
  starts: measured on 20 repeated windows of fastapi-async at 128 users (each a fresh start of the load
  on one server), the pooled p95 fell inside 1 of 11 intervals of 3 s windows and 5 of 15 of 10 s windows;
  the windows' p95s ranged 1008-1070 ms and 1008-1065 ms, while the three periods inside one 3 s window
  agreed within a few milliseconds. Saturated flask-sync (16 users, 30 s windows): 4 of 7.
* **At a limit** (``limit_interval``, a capacity level's decision): the p95 interval with tau from the
  indicator 1{x_i > limit}, the event the SLO counts, over batches of one turnover of the requests in
  flight (``batch_s``: their mean latency, at least one upstream period). Requests in flight together
  share the server's stalls (a collection, a burst of CPU), and a queue carries its state for as long as
  a request waits in it, so their exceedances come together; batches of sqrt(n) completions, a third of
  a period at 128 users, hid that. With fewer than MIN_BATCHES turnovers in the window tau cannot be
  estimated, and each turnover counts as one independent sample: a short window of many users in flight
  decides only a level far past its limit, and an undecided level is measured longer. A level near its
  limit is also measured again on a fresh server, for the spread between starts that no window shows.
* **Throughput**: batch means over time: the window cut into equal batches of whole upstream periods
  (so phase-locked workers finishing once a period do not make the batches differ), a Student t interval
  around the point's throughput from the batches' rates.

The coverage is measured, not assumed: ``tests/loadtests/analysis/test_intervals.py`` checks it on
correlated series whose true quantile is known; the repeated real points are above.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
MIN_BATCHES = 10  # the batch-means estimate of tau needs this many batches at least
MIN_THROUGHPUT_BATCHES = 4
PERCENTILE_METHOD = (
    "order-statistic interval at the effective sample size n / tau (tau: the integrated autocorrelation "
    "time of the quantile's indicator in completion order, by batch means), within the window: not the "
    "spread between starts of the load"
)
THROUGHPUT_METHOD = "batch means over whole upstream periods, Student t"
# Two-sided 97.5 % quantiles of Student's t by degrees of freedom (scipy is not a dependency).
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
    11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
    20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980,
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class PercentileIntervals:
    """95 % intervals of p50, p95 and p99 (ms); None where the sample cannot support one (``why``)."""

    p50: tuple[float, float] | None
    p95: tuple[float, float] | None
    p99: tuple[float, float] | None
    effective_n: dict[str, float]  # per percentile: n / tau
    why: dict[str, str]  # per unsupported percentile: the reason
    # Per unsupported percentile whose lower end the sample does bound: that bound alone (enough to say a
    # percentile is above a limit; too few completions to say it is below one).
    lower: dict[str, float]
    method: str = PERCENTILE_METHOD

    def get(self, name: str) -> tuple[float, float] | None:
        return {"p50": self.p50, "p95": self.p95, "p99": self.p99}[name]


def t_quantile(df: int) -> float:
    """Student's t, two-sided 95 %: the table's value at the largest tabulated df not above ``df``."""
    if df < 1:
        raise ValueError("at least one degree of freedom")
    return _T975[max(k for k in _T975 if k <= df)] if df <= 120 else 1.960


def effective_size(indicator: Sequence[float], *, per_batch: float | None) -> float:
    """n / tau of an indicator in completion order, with batches of ``per_batch`` completions (at least 2);
    with fewer than MIN_BATCHES such batches, one sample per batch. Without ``per_batch``: batches of
    sqrt(n) completions (a series with no period, such as a synthetic one)."""
    n = len(indicator)
    if per_batch is None:
        return n / autocorrelation_time(indicator)
    size = max(2, round(per_batch))
    if n // size < MIN_BATCHES:
        return max(1.0, min(float(n), n / max(per_batch, 1.0)))
    return n / autocorrelation_time(indicator, batch_size=size)


def autocorrelation_time(series: Sequence[float], *, batch_size: int | None = None) -> float:
    """tau of a series by non-overlapping batch means: batch size x var(batch means) / var(series), at
    least 1 (a negatively correlated series earns no credit). 1.0 when it cannot be estimated. Batches of
    ``batch_size``, else of sqrt(n)."""
    n = len(series)
    size = batch_size or max(1, min(math.isqrt(n), n // MIN_BATCHES))
    batches = n // size
    if batches < MIN_BATCHES or size < 2:
        return 1.0
    mean = math.fsum(series) / n
    var = math.fsum((x - mean) ** 2 for x in series) / (n - 1)
    if var <= 0:
        return 1.0
    means = [math.fsum(series[i * size : (i + 1) * size]) / size for i in range(batches)]
    grand = math.fsum(means) / batches
    var_means = math.fsum((m - grand) ** 2 for m in means) / (batches - 1)
    return max(1.0, size * var_means / var)


def _binomial_cdf_table(n: int, p: float) -> list[float]:
    """P(B <= k) for k = 0..n, B ~ Binomial(n, p): each term from log-gamma (no underflow at n = 2000)."""
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    table, total = [], 0.0
    for k in range(n + 1):
        total += math.exp(log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q)
        table.append(min(total, 1.0))
    return table


@functools.lru_cache(maxsize=4096)
def order_statistic_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int, int]:
    """1-based ranks (l, u) with P(l <= B < u) >= confidence for B ~ Binomial(n, q), the count of samples
    below the true q-quantile: [x_(l), x_(u)] then covers it. l < 1 or u > n: the sample cannot bound it."""
    alpha = (1.0 - confidence) / 2
    if n > 2000:  # the normal approximation is exact enough here, and the table would be long
        mean, sd = n * q, math.sqrt(n * q * (1 - q))
        return math.floor(mean - 1.96 * sd) + 1, math.ceil(mean + 1.96 * sd) + 1
    cdf = _binomial_cdf_table(n, q)
    # l: the largest with F(l - 1) <= alpha (F(-1) = 0); u: the smallest with F(u - 1) >= 1 - alpha.
    low = 0
    while low < n and cdf[low] <= alpha:
        low += 1
    high = next((k + 1 for k in range(n + 1) if cdf[k] >= 1.0 - alpha), n + 1)
    if high > n:  # F(n - 1) < 1 - alpha: only x_(n+1), beyond the sample, would do
        high = n + 1
    return low, high


def quantile_interval(
    ordered: Sequence[float],
    in_time_order: Sequence[float],
    q: float,
    *,
    per_batch: float | None = None,
    at: float | None = None,
) -> tuple[tuple[float, float] | None, float, str, float | None]:
    """(interval or None, effective n, why not, lower bound alone) of the q-quantile; ``ordered`` sorted,
    ``in_time_order`` the same samples by completion; ``per_batch``: completions per batch;
    ``at``: a limit whose exceedances give tau (module docstring)."""
    n = len(ordered)
    if n == 0:
        return None, 0.0, "no completion", None
    cut = ordered[max(math.ceil(q * n), 1) - 1] if at is None else at
    n_eff = effective_size([1.0 if x <= cut else 0.0 for x in in_time_order], per_batch=per_batch)
    whole = max(1, math.floor(n_eff))
    low, high = order_statistic_ranks(whole, q)
    need = needed_samples(q)
    lo_rank = max(1, math.floor(low * n / whole))
    if low < 1 or high > whole:
        why = f"{n} completions ({n_eff:.0f} effectively independent): a p{q * 100:g} needs {need}"
        if per_batch is not None and n // max(2, round(per_batch)) < MIN_BATCHES:
            why += (
                f"; one per turnover of the requests in flight, the window holding fewer than {MIN_BATCHES}"
            )
        return None, n_eff, why, (ordered[lo_rank - 1] if low >= 1 else None)
    hi_rank = min(n, math.ceil(high * n / whole))
    return (ordered[lo_rank - 1], ordered[hi_rank - 1]), n_eff, "", None


@functools.lru_cache(maxsize=16)
def needed_samples(q: float) -> int:
    """The fewest independent samples whose order statistics bound the q-quantile at CONFIDENCE."""
    n = 1
    while True:
        low, high = order_statistic_ranks(n, q)
        if low >= 1 and high <= n:
            return n
        n += 1 if n < 100 else max(1, n // 50)


def completions_per_batch(
    samples: Sequence[tuple[float, float]], batch_s: float | None, window_s: float
) -> float | None:
    """Completions per batch of ``batch_s`` seconds over the window; None without one (no batching)."""
    if not batch_s or batch_s <= 0 or window_s <= 0:
        return None
    return len(samples) * batch_s / window_s


def batch_seconds(period_s: float, mean_latency_s: float | None) -> float | None:
    """One batch: one turnover of the requests in flight together (their mean latency), at least one
    upstream period; None without a period (an instant upstream: nothing to batch by)."""
    if period_s <= 0:
        return None
    return max(period_s, mean_latency_s or 0.0)


def percentile_intervals(
    samples: Sequence[tuple[float, float]], *, batch_s: float | None = None, window_s: float = 0.0
) -> PercentileIntervals | None:
    """From (completion time, latency ms) pairs over a window of ``window_s`` seconds, batched by
    batches of ``batch_s`` seconds (module docstring); None when there is no sample at all."""
    if not samples:
        return None
    in_time = [latency for _, latency in sorted(samples)]
    ordered = sorted(in_time)
    per_batch = completions_per_batch(samples, batch_s, window_s)
    found: dict[str, tuple[float, float] | None] = {}
    eff: dict[str, float] = {}
    why: dict[str, str] = {}
    lower: dict[str, float] = {}
    for name, q in QUANTILES.items():
        interval, n_eff, reason, bound = quantile_interval(ordered, in_time, q, per_batch=per_batch)
        found[name] = None if interval is None else (round(interval[0], 3), round(interval[1], 3))
        eff[name] = round(n_eff, 1)
        if reason:
            why[name] = reason
        if bound is not None:
            lower[name] = round(bound, 3)
    return PercentileIntervals(
        p50=found["p50"], p95=found["p95"], p99=found["p99"], effective_n=eff, why=why, lower=lower
    )


def limit_interval(
    samples: Sequence[tuple[float, float]],
    *,
    limit_ms: float,
    q: float = 0.95,
    batch_s: float | None = None,
    window_s: float = 0.0,
) -> dict[str, object]:
    """The q-quantile's interval with tau from the exceedances of ``limit_ms`` (module docstring), for
    deciding whether the quantile is within that limit: ``interval`` ([low, high] or None), ``lower`` (the
    lower bound alone, when only it exists), ``effective_n``, ``over`` (completions above the limit)."""
    in_time = [latency for _, latency in sorted(samples)]
    ordered = sorted(in_time)
    per_batch = completions_per_batch(samples, batch_s, window_s)
    interval, n_eff, why, bound = quantile_interval(ordered, in_time, q, per_batch=per_batch, at=limit_ms)
    return {
        "limit_ms": round(limit_ms, 3),
        "q": q,
        "interval": None if interval is None else [round(interval[0], 3), round(interval[1], 3)],
        "lower": None if bound is None else round(bound, 3),
        "effective_n": round(n_eff, 1),
        "over": sum(1 for x in in_time if x > limit_ms),
        "why": why,
    }


def throughput_interval(
    completion_times: Sequence[float], *, start: float, end: float, period_s: float, throughput: float
) -> tuple[float, float] | None:
    """95 % interval of completions per second around ``throughput``, by batch means: batches of whole
    upstream periods (``period_s``) when the window holds at least MIN_THROUGHPUT_BATCHES of them, else
    MIN_BATCHES equal batches; None when there are fewer batches than that."""
    seconds = end - start
    if seconds <= 0 or not completion_times:
        return None
    periods = round(seconds / period_s) if period_s > 0 else 0
    if periods >= MIN_THROUGHPUT_BATCHES:
        per_batch = max(1, periods // MIN_BATCHES)
        batches = periods // per_batch
        width = per_batch * seconds / periods
    else:
        batches, width = MIN_BATCHES, seconds / MIN_BATCHES
    counts = [0] * batches
    for t in completion_times:
        index = int((t - start) / width) if t >= start else -1
        if 0 <= index < batches:
            counts[index] += 1
    rates = [c / width for c in counts]
    mean = math.fsum(rates) / batches
    sd = math.sqrt(math.fsum((r - mean) ** 2 for r in rates) / (batches - 1))
    half = t_quantile(batches - 1) * sd / math.sqrt(batches)
    return round(max(0.0, throughput - half), 4), round(throughput + half, 4)
