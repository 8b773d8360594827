"""Steady state, detected from the data: when has a point's load settled, and did its window stay settled?

Three per-bin series are watched while the load runs: completions per second, the mean latency of the
requests completed in the bin, and the mock's in-flight gauge (sampled several times a second). The latency
series is what the other two miss: flask-sync at 128 users completes 4 requests/s with 4 calls in flight
from its first second, while its latency climbs for 32 upstream periods until the queue has cycled once.

The test is a rolling-window trend test: over the last ``MIN_BINS`` bins (then 2x and 4x as many, when the
data are noisy), an ordinary least-squares line is fit to each series, and the series has settled when its
drift over the window (slope x span) is within ``TOLERANCE`` of its mean (or a floor of one unit of
resolution: one completion per bin, one call in flight), plus up to two standard errors of the drift but
never more than another ``TOLERANCE`` (noise may excuse a small drift, never a large one). Settled, for all
three, ends the warm-up; a false "not yet" costs one bin of waiting, a false "settled" a wrong number, so
the rule leans strict.
Why this test and not MSER-5 alone: MSER-5 says where to truncate a *finished* run, but the sweep must
decide *while* the load runs when to start the window (reset the mock's counters, sample CPU) and how long
to make it; a trend test is a stopping rule. MSER-5 (White 1997: batch means of 5, the truncation point
that minimises the standard error of the remaining mean) is still computed over warm-up and window as a
cross-check and recorded with the point.

Nothing here reads a predicted ceiling: the only time unit is the upstream latency L the mock injects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

TOLERANCE = 0.10  # a drift of up to 10 % of the mean over the trend window counts as flat
MIN_BINS = 6  # bins in the trend window
Z = 2.0  # standard errors of drift allowed on top of the tolerance (noise is not a trend)


@dataclass(frozen=True, kw_only=True)
class Trend:
    mean: float
    drift: float  # fitted change over the window, in the series' units
    allowed: float  # max(tolerance x |mean|, floor) + min(Z standard errors of the drift, tolerance x |mean|)
    bins: int

    @property
    def settled(self) -> bool:
        return abs(self.drift) <= self.allowed

    @property
    def relative_drift(self) -> float | None:
        return None if self.mean == 0 else self.drift / abs(self.mean)

    def figure(self) -> dict[str, float | int | bool | None]:
        rel = self.relative_drift
        return {
            "mean": round(self.mean, 4),
            "drift": round(self.drift, 4),
            "relative_drift": None if rel is None else round(rel, 4),
            "allowed": round(self.allowed, 4),
            "bins": self.bins,
            "settled": self.settled,
        }


def trend(
    values: Sequence[float | None], *, tolerance: float = TOLERANCE, floor: float = 0.0
) -> Trend | None:
    """The fitted drift of ``values`` (one per bin, None for a bin with no data) over their span."""
    points = [(float(i), float(v)) for i, v in enumerate(values) if v is not None]
    n = len(points)
    if n < 4:
        return None
    mean_x = math.fsum(x for x, _ in points) / n
    mean_y = math.fsum(y for _, y in points) / n
    sxx = math.fsum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    slope = math.fsum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    residual = math.fsum((y - mean_y - slope * (x - mean_x)) ** 2 for x, y in points)
    se_slope = math.sqrt(residual / (n - 2) / sxx)
    span = points[-1][0] - points[0][0]
    practical = tolerance * abs(mean_y)
    return Trend(
        mean=mean_y,
        drift=slope * span,
        allowed=max(practical, floor) + min(Z * se_slope * span, practical),
        bins=n,
    )


@dataclass(kw_only=True)
class Series:
    """Per-bin sums from the start of the point (t0); bins are ``bin_s`` long."""

    t0: float
    bin_s: float
    open_loop: bool = False
    completions: list[int] = field(default_factory=list)
    latency_sum_ms: list[float] = field(default_factory=list)
    gauge_sum: list[float] = field(default_factory=list)
    gauge_n: list[int] = field(default_factory=list)

    def _grow(self, index: int) -> None:
        while len(self.completions) <= index:
            self.completions.append(0)
            self.latency_sum_ms.append(0.0)
            self.gauge_sum.append(0.0)
            self.gauge_n.append(0)

    def bin_of(self, t: float) -> int:
        return int((t - self.t0) // self.bin_s)

    def add_completion(self, end: float, latency_ms: float) -> None:
        index = self.bin_of(end)
        if index < 0:
            return
        self._grow(index)
        self.completions[index] += 1
        self.latency_sum_ms[index] += latency_ms

    def add_gauge(self, t: float, in_flight: float) -> None:
        index = self.bin_of(t)
        if index < 0:
            return
        self._grow(index)
        self.gauge_sum[index] += in_flight
        self.gauge_n[index] += 1

    def bin_reaching(self, count: int) -> int | None:
        """The first bin by whose end ``count`` completions have happened, or None (not yet)."""
        total = 0
        for index, n in enumerate(self.completions):
            total += n
            if total >= count:
                return index + 1
        return None

    def rates(self, lo: int, hi: int) -> list[float | None]:
        return [self.completions[i] / self.bin_s if i < len(self.completions) else 0.0 for i in range(lo, hi)]

    def latencies(self, lo: int, hi: int) -> list[float | None]:
        return [
            self.latency_sum_ms[i] / self.completions[i]
            if i < len(self.completions) and self.completions[i]
            else None
            for i in range(lo, hi)
        ]

    def gauges(self, lo: int, hi: int) -> list[float | None]:
        return [
            self.gauge_sum[i] / self.gauge_n[i] if i < len(self.gauge_n) and self.gauge_n[i] else None
            for i in range(lo, hi)
        ]

    def trends(self, lo: int, hi: int) -> dict[str, Trend | None]:
        out = {
            "completions_per_s": trend(self.rates(lo, hi), floor=1.0 / self.bin_s),
            "latency_ms": trend(self.latencies(lo, hi)),
            "in_flight": trend(self.gauges(lo, hi), floor=1.0),
        }
        if self.open_loop:
            # Open loop, completions follow the Poisson arrivals, not the server: their noise is no trend.
            del out["completions_per_s"]
        return out

    def settled_trends(self, hi: int, *, first: int = 0) -> tuple[bool, dict[str, Trend | None]]:
        """The trend test over the MIN_BINS bins before ``hi``, then over 2x and 4x as many (never before
        ``first``): settled when any of those windows passes for every series."""
        trends: dict[str, Trend | None] = {}
        for size in (MIN_BINS, 2 * MIN_BINS, 4 * MIN_BINS):
            lo = hi - size
            if lo < first:
                break
            trends = self.trends(lo, hi)
            if all_settled(trends):
                return True, trends
        if not trends:  # what the last bins say, for the record and the SLO check, even before ``first``
            trends = self.trends(max(first, hi - MIN_BINS) if first < hi else max(0, hi - MIN_BINS), hi)
        return False, trends


def all_settled(trends: dict[str, Trend | None]) -> bool:
    """Every series flat. A series with too little data (no completions yet) has not settled, except
    the gauge when the mock could not be polled (then the other two decide)."""
    for name, result in trends.items():
        if result is None:
            if name == "in_flight":
                continue
            return False
        if not result.settled:
            return False
    return True


def figures(trends: dict[str, Trend | None]) -> dict[str, object]:
    return {name: None if t is None else t.figure() for name, t in trends.items()}


def mser5(values: Sequence[float]) -> int | None:
    """MSER-5 truncation point, in bins of the input: batch means of 5, then the d (searched over the
    first half, as is standard, since the statistic is unstable near the end) that minimises
    sum((x - mean)^2) / (n - d)^2 over the batches after d."""
    batches = [math.fsum(values[i : i + 5]) / 5 for i in range(0, len(values) - 4, 5)]
    k = len(batches)
    if k < 4:
        return None
    best_d, best = 0, math.inf
    for d in range(k // 2 + 1):
        rest = batches[d:]
        m = math.fsum(rest) / len(rest)
        stat = math.fsum((x - m) ** 2 for x in rest) / len(rest) ** 2
        if stat < best:
            best_d, best = d, stat
    return best_d * 5
