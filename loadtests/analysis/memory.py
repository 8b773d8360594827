"""Memory per in-flight call, derived across a variant's load levels: a least-squares line of the server
tree's peak memory against the calls the mock saw in flight (the window's mean gauge), with its fit.

Pure: points in, fits out. Each valid closed-loop point with a memory reading is one observation (repeats
are separate observations of the same level, so the fit sees their spread). The x axis is what the mock
measured, not the users offered: past a concurrency ceiling more users add no calls in flight, and the
slope must not be diluted by them. The slope is only as good as the spread of x: a variant that never
held more than 4 calls has no slope worth the name (``usable`` says so, with why).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from loadtests.results import Point, RunResults

Metric = Literal["uss", "rss"]
MIN_LEVELS = 3  # two points always fit a line exactly; a standard error needs a third
MIN_SPAN_CALLS = 16.0  # a slope over fewer calls in flight than this is noise in a ~1 MB sampling jitter


@dataclass(frozen=True, kw_only=True)
class Fit:
    """y = intercept + slope x, by ordinary least squares."""

    n: int
    slope: float
    intercept: float
    r2: float | None  # None when y does not vary
    slope_se: float | None  # None with fewer than 3 observations


@dataclass(frozen=True, kw_only=True)
class MemoryFit:
    variant: str
    scenario: str
    metric: Metric  # uss: what one more call adds; rss counts shared pages once per process
    levels: int  # distinct load levels behind the fit
    points: int
    in_flight_min: float
    in_flight_max: float
    mb_per_call: float | None  # the slope; None when it cannot be fitted
    intercept_mb: float | None
    r2: float | None
    slope_se_mb: float | None
    usable: bool
    why_not: str  # "" when usable
    processes: int | None  # the most processes the tree had over the fit's points

    @property
    def kb_per_call(self) -> float | None:
        return None if self.mb_per_call is None else self.mb_per_call * 1024.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def least_squares(xs: Sequence[float], ys: Sequence[float]) -> Fit | None:
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    residuals = [y - (intercept + slope * x) for x, y in zip(xs, ys, strict=True)]
    sse = sum(r * r for r in residuals)
    syy = sum((y - my) ** 2 for y in ys)
    r2 = 1.0 - sse / syy if syy > 0 else None
    se = math.sqrt(sse / (n - 2) / sxx) if n > 2 else None
    return Fit(n=n, slope=slope, intercept=intercept, r2=r2, slope_se=se)


def observations(points: Sequence[Point], metric: Metric) -> list[tuple[float, float, Point]]:
    out = []
    for p in points:
        mb = p.server_uss_mb if metric == "uss" else p.server_rss_mb
        if p.valid and p.load_model == "closed" and mb is not None and p.in_flight_mean is not None:
            out.append((p.in_flight_mean, mb, p))
    return out


def fit_memory(variant: str, scenario: str, points: Sequence[Point], metric: Metric = "uss") -> MemoryFit:
    obs = observations(points, metric)
    xs = [x for x, _, _ in obs]
    ys = [y for _, y, _ in obs]
    levels = len({p.load for _, _, p in obs})
    fit = least_squares(xs, ys)
    span = (max(xs) - min(xs)) if xs else 0.0
    why = ""
    if fit is None:
        why = "fewer than two distinct in-flight counts" if obs else "no valid point with a memory reading"
    elif levels < MIN_LEVELS:
        why = f"{levels} level(s); at least {MIN_LEVELS} are needed for a fit with an error"
    elif span < MIN_SPAN_CALLS:
        why = (
            f"calls in flight spanned only {xs and min(xs):.1f} to {xs and max(xs):.1f}: a concurrency "
            "ceiling, so memory scales with processes or threads, not with calls"
        )
    processes = [int((p.extra.get("memory") or {}).get("processes_max") or 0) for _, _, p in obs]
    return MemoryFit(
        variant=variant,
        scenario=scenario,
        metric=metric,
        levels=levels,
        points=len(obs),
        in_flight_min=round(min(xs), 2) if xs else 0.0,
        in_flight_max=round(max(xs), 2) if xs else 0.0,
        mb_per_call=None if fit is None else fit.slope,
        intercept_mb=None if fit is None else fit.intercept,
        r2=None if fit is None else fit.r2,
        slope_se_mb=None if fit is None else fit.slope_se,
        usable=not why,
        why_not=why,
        processes=max(processes, default=0) or None,
    )


def memory_fits(run: RunResults, metric: Metric = "uss") -> list[MemoryFit]:
    """One fit per (variant, scenario) whose points carry memory, in the run's order."""
    groups: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for p in run.points:
        if p.load_model == "closed" and p.server_uss_mb is not None:
            groups[(p.variant, p.scenario)].append(p)
    return [fit_memory(v, s, pts, metric) for (v, s), pts in groups.items()]


def worker_uss_mb(points: Sequence[Point]) -> float | None:
    """The median worker's USS (a process without children) over the valid points: what one more worker
    process costs, since a forked worker's shared pages are not duplicated."""
    values = [
        v
        for p in points
        if p.valid
        for v in (p.extra.get("memory", {}) or {}).get("leaf_uss_mb", [])
        if isinstance(v, int | float)
    ]
    return statistics.median(values) if values else None
