"""One row per (variant, scenario, load model, load): repeats folded into medians.

The verdict and the charts read runs through this view. A level is valid when at least one of its
repeats is; then only the valid repeats count. A level with no valid repeat keeps the medians of its
invalid ones so a chart can still draw it (hollow) and name it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from loadtests.results import Percentiles, Point, RunResults


@dataclass(frozen=True, kw_only=True)
class Level:
    variant: str
    scenario: str
    load_model: str
    load: float
    valid: bool
    repeats: int  # repeats behind the figures (valid ones when valid)
    throughput_rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    peak_in_flight: int | None  # the highest the mock saw over the repeats
    littles_in_flight: float | None  # throughput x mean latency, when the mock gave no peak
    completed: int
    failed: int
    failures_by_status: dict[str, int]
    server_cpu_ms: float | None
    predicted_ceiling: int
    invalid_reasons: tuple[str, ...]
    server_cpu_bound: bool = False  # a server process was near 100% of a core: the limit was CPU
    # This level's own upstream latency when the run's levels differ in it (a reach run: L grows with
    # the streams); None when the run's one L applies.
    latency_s: float | None = None
    # 95 % intervals (loadtests.analysis.intervals), the hull over the repeats used; a point measured
    # before intervals existed counts as its own figure; None: the sample cannot support one.
    p95_ci_ms: tuple[float, float] | None = None
    throughput_ci_rps: tuple[float, float] | None = None
    # Under an upstream whose latency is drawn per call (every profile but article's fixed L): what the
    # server added (latency minus each request's own upstream call) and the mean upstream call it met.
    drawn_upstream: bool = False
    overhead_p95_ms: float | None = None
    overhead_p95_ci_ms: tuple[float, float] | None = None
    upstream_mean_s: float | None = None
    # The p95 against a latency limit, decided by that limit's own exceedances (intervals.limit_interval):
    # (the limit in ms, the hull of the repeats' intervals, the highest lower bound alone), when every
    # repeat was measured against the same limit.
    p95_at_limit: tuple[float, tuple[float, float] | None, float | None] | None = None

    @property
    def users(self) -> int:
        return int(self.load)

    @property
    def error_rate(self) -> float:
        total = self.completed + self.failed
        return self.failed / total if total else 0.0

    @property
    def in_flight(self) -> float | None:
        """The mock's ground truth when there is one, else Little's law."""
        return float(self.peak_in_flight) if self.peak_in_flight is not None else self.littles_in_flight

    def describe(self) -> str:
        unit = "users" if self.load_model == "closed" else "rps offered"
        return f"{self.variant} {self.scenario} {_num(self.load)} {unit}"


def levels_of(run: RunResults) -> list[Level]:
    groups: dict[tuple[str, str, str, float], list[Point]] = defaultdict(list)
    for point in run.points:
        groups[point.key].append(point)
    drawn = drawn_upstream(run)
    return [_fold(key, pts, drawn=drawn) for key, pts in sorted(groups.items())]


def drawn_upstream(run: RunResults) -> bool:
    """Whether each upstream call's latency was drawn (a tail, a replay) rather than a fixed L: the mock's
    profile says so; a name it does not know (a synthetic run's) keeps the fixed-L rules."""
    from mock_llm.profiles import PROFILES, REPLAY_PREFIX

    name = run.metadata.get("mock_profile")
    if not isinstance(name, str):
        return False
    if name.startswith(REPLAY_PREFIX):
        return True
    profile = PROFILES.get(name)
    return profile is not None and profile.fixed_total_s is None


def select(
    levels: Iterable[Level],
    *,
    variant: str | None = None,
    scenario: str | None = None,
    load_model: str | None = None,
    valid: bool | None = None,
) -> list[Level]:
    return [
        lv
        for lv in levels
        if (variant is None or lv.variant == variant)
        and (scenario is None or lv.scenario == scenario)
        and (load_model is None or lv.load_model == load_model)
        and (valid is None or lv.valid == valid)
    ]


def _fold(key: tuple[str, str, str, float], points: Sequence[Point], *, drawn: bool = False) -> Level:
    variant, scenario, load_model, load = key
    valid = [p for p in points if p.valid]
    used = valid or list(points)
    reasons = tuple(dict.fromkeys(r for p in points if not p.valid for r in p.invalid_reasons))
    failures: dict[str, int] = defaultdict(int)
    for p in used:
        for status, count in p.failures_by_status.items():
            failures[status] += count
    peaks = [p.upstream_peak_in_flight for p in used if p.upstream_peak_in_flight is not None]
    littles = [p.littles_law.measured_in_flight for p in used if p.littles_law is not None]
    return Level(
        variant=variant,
        scenario=scenario,
        load_model=load_model,
        load=load,
        valid=bool(valid),
        repeats=len(used),
        throughput_rps=statistics.median(p.throughput_rps for p in used),
        p50_ms=_median_of(used, lambda p: p.latency_ms, "p50"),
        p95_ms=_median_of(used, lambda p: p.latency_ms, "p95"),
        p99_ms=_median_of(used, lambda p: p.latency_ms, "p99"),
        mean_ms=_median_of(used, lambda p: p.latency_ms, "mean"),
        ttft_p50_ms=_median_of(used, lambda p: p.ttft_ms, "p50"),
        ttft_p95_ms=_median_of(used, lambda p: p.ttft_ms, "p95"),
        peak_in_flight=max(peaks) if peaks else None,
        littles_in_flight=statistics.median(littles) if littles else None,
        completed=sum(p.completed for p in used),
        failed=sum(p.failed for p in used),
        failures_by_status=dict(failures),
        server_cpu_ms=_median_values(
            [p.server_cpu_ms_per_request for p in used if p.server_cpu_ms_per_request is not None]
        ),
        predicted_ceiling=used[0].predicted_ceiling,
        invalid_reasons=reasons,
        server_cpu_bound=any(p.extra.get("server_cpu_bound", False) for p in used),
        latency_s=_own_latency(used),
        p95_ci_ms=_hull([_p95_interval(p) for p in used]),
        throughput_ci_rps=_hull(
            [tuple(p.throughput_ci_rps) if p.throughput_ci_rps else (p.throughput_rps,) * 2 for p in used]
        ),
        drawn_upstream=drawn,
        overhead_p95_ms=_median_of(used, lambda p: p.overhead_ms, "p95"),
        overhead_p95_ci_ms=_hull([_overhead_interval(p) for p in used]),
        upstream_mean_s=_median_values([p.upstream_latency_s for p in used if p.upstream_latency_s]),
        p95_at_limit=_at_limit(used),
    )


def _at_limit(points: Sequence[Point]) -> tuple[float, tuple[float, float] | None, float | None] | None:
    found = [p.extra.get("p95_at_limit") for p in points]
    limits = {round(float(f["limit_ms"]), 1) for f in found if isinstance(f, dict)}
    if len(limits) != 1 or any(not isinstance(f, dict) for f in found):
        return None
    records = [f for f in found if isinstance(f, dict)]
    if any(f.get("interval") is None for f in records):
        lowers = [float(f["lower"]) for f in records if f.get("lower") is not None]
        return limits.pop(), None, max(lowers) if lowers else None
    return limits.pop(), _hull([f["interval"] for f in records]), None


def _overhead_interval(point: Point) -> tuple[float, float] | None:
    found = ((point.breakdown_ms or {}).get("overhead_ci_ms") or {}).get("p95")
    return None if found is None else (float(found[0]), float(found[1]))


def _p95_interval(point: Point) -> tuple[float, float] | None:
    if point.latency_ci_ms is not None:
        found = point.latency_ci_ms.get("p95")
        return None if found is None else (float(found[0]), float(found[1]))
    return None if point.latency_ms is None else (point.latency_ms.p95, point.latency_ms.p95)


def _hull(intervals: Sequence[Sequence[float] | None]) -> tuple[float, float] | None:
    """The smallest interval holding every repeat's (those that have one); None when none has."""
    known = [i for i in intervals if i is not None]
    if not known:
        return None
    return min(float(i[0]) for i in known), max(float(i[1]) for i in known)


def _own_latency(points: Sequence[Point]) -> float | None:
    values = {p.extra.get("reach_latency_s") for p in points}
    value = values.pop() if len(values) == 1 else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _median_of(
    points: Sequence[Point], get: Callable[[Point], Percentiles | None], name: str
) -> float | None:
    return _median_values([getattr(pc, name) for p in points if (pc := get(p)) is not None])


def _median_values(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _num(value: float) -> str:
    return f"{value:g}"
