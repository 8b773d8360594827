"""The comparison judge: two runs' points matched, each figure's change decided (a regression, better, or
within the noise), capacities compared. Pure: runs in, a :class:`Comparison` out; ``loadtests.reporting.
compare_doc`` renders it, and the ``compare`` and ``gate`` commands take their exit codes from it.

Points are matched by ``Point.key`` (variant, scenario, load model, load; repeats grouped) and only valid
repeats count. A metric regresses when it moves the wrong way by more than the tolerance (default 10%) and
is beyond the noise of the repeats: with 5 or more valid repeats on both sides (``gate`` measures that many
rounds) by an exact one-sided rank test on the medians' side (analysis.gate_stats); with 2 to 4, when the
bootstrap interval of the ratio of means excludes 1.0 (analysis.resampling); with a single repeat the
tolerance alone decides. A point valid in the baseline with no valid repeat in the current run is a
regression, and so is a point or a gated figure the current run lacks. The failed share regresses on an
absolute rise of more than one percentage point (a ratio of zeros means nothing), confirmed by the rank test
when there are repeats.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loadtests.analysis import gate_stats
from loadtests.analysis.capacity import entry_interval
from loadtests.analysis.resampling import ratio_interval
from loadtests.results import Point, RunResults

Key = tuple[str, str, str, float]
METRICS: dict[str, tuple[Callable[[Point], float | None], bool, str]] = {
    # name: (value, higher is better, unit)
    "throughput": (lambda p: p.throughput_rps, True, "rps"),
    "p50": (lambda p: p.latency_ms.p50 if p.latency_ms else None, False, "ms"),
    "p95": (lambda p: p.latency_ms.p95 if p.latency_ms else None, False, "ms"),
    "p99": (lambda p: p.latency_ms.p99 if p.latency_ms else None, False, "ms"),
    "errors": (lambda p: _failed_share(p), False, "%"),
    # The figures a code change moves when latency is dominated by the upstream's wait.
    "cpu": (lambda p: p.server_cpu_ms_per_request, False, "ms"),
    "overhead_p50": (lambda p: p.overhead_ms.p50 if p.overhead_ms else None, False, "ms"),
    "overhead_p95": (lambda p: p.overhead_ms.p95 if p.overhead_ms else None, False, "ms"),
    # The same figures in units of the mock's CPU per request in the same window (see machine_speed_ms):
    # what the gate decides on, so a machine that is slower for a while moves neither side.
    "cpu_rel": (lambda p: _per_speed(p.server_cpu_ms_per_request, p), False, "x"),
    "overhead_p50_rel": (lambda p: _per_speed(p.overhead_ms.p50 if p.overhead_ms else None, p), False, "x"),
    "overhead_p95_rel": (lambda p: _per_speed(p.overhead_ms.p95 if p.overhead_ms else None, p), False, "x"),
    "throughput_rel": (lambda p: _times_speed(p.throughput_rps, p), True, "x"),
    # The server tree's peak unique memory over the window: what holding the load costs (a leak, a
    # heavier import, a cache per request move it). Per call in flight it is a slope across levels
    # (analysis.memory); at the gate's one level, the total is the figure a change moves.
    "memory": (lambda p: p.server_uss_mb, False, "MB"),
}
# p99 of a short window is too noisy to fail a build.
# CPU and overhead are gated relative to the machine's speed in the same window (the raw ones are shown).
DEFAULT_GATE = ("throughput", "p50", "p95", "errors", "cpu_rel", "overhead_p50_rel", "overhead_p95_rel")
RANK_TEST_REPEATS = 5  # fewer: the exact rank test cannot reach gate_stats.ALPHA (3 + 3 rounds: p >= 5%)
# Error rates are often zero, where a ratio means nothing: they regress on an absolute rise instead, and
# the tolerance alone decides (no bootstrap).
ERROR_RATE_SLACK = 0.01
# Differences reported, not refused: another machine, harness or per-request work moves figures by itself.
CONTEXT_KEYS = ("cpu_model", "cpu_count", "machine_id", "harness_version", "work_ms", "preset")


def machine_speed_ms(p: Point) -> float | None:
    """The mock's CPU milliseconds per request in this point's window: a reference workload measured
    alongside the server. The mock is the measurer's code on both sides of a gate and does the same work
    for every request, so it moves only with the machine: on this 2-core VM, in one comparison of a
    revision with itself, it cost 0.47-0.55 ms in base's rounds and 0.57-0.69 ms in head's, and the
    server's CPU per request moved with it."""
    if p.cpu is None or not p.completed or p.duration_s <= 0 or p.cpu.mock_percent <= 0:
        return None
    return p.cpu.mock_percent / 100.0 * p.duration_s * 1000.0 / p.completed


def _per_speed(value: float | None, p: Point) -> float | None:
    speed = machine_speed_ms(p)
    return None if value is None or speed is None else value / speed


def _times_speed(value: float | None, p: Point) -> float | None:
    speed = machine_speed_ms(p)
    return None if value is None or speed is None else value * speed


def _failed_share(p: Point) -> float:
    """Failed over finished requests. Not ``unfinished``: in closed loop every user has one request open
    when the window closes, so that count is the load, not a fault; hangs show as invalid points (a
    Little's-law miss), which the gate counts as regressions."""
    total = p.completed + p.failed
    return p.failed / total if total else 0.0


class Incomparable(Exception):
    """The two runs measure different things: comparing them would mislead."""


@dataclass(frozen=True, kw_only=True)
class Change:
    metric: str
    base: float  # mean over valid repeats
    cur: float
    ratio: float
    low: float | None  # bootstrap interval of the ratio, when both sides have repeats
    high: float | None
    worse: bool  # beyond the tolerance in the bad direction
    better: bool  # beyond the tolerance in the good direction
    significant: bool | None  # None: tolerance only
    gated: bool
    p_value: float | None = None  # the rank test's, when both sides have RANK_TEST_REPEATS
    centre: str = "mean"  # what base and cur are: "mean", or "median" under the rank test
    missing: bool = False  # the baseline has this figure, the current run does not

    @property
    def regression(self) -> bool:
        return self.gated and (self.missing or (self.worse and self.significant is not False))

    @property
    def not_significant(self) -> bool:
        return self.worse and self.significant is False


@dataclass(frozen=True, kw_only=True)
class Row:
    key: Key
    n_base: int
    n_cur: int
    changes: list[Change]

    @property
    def bootstrapped(self) -> bool:
        return self.n_base >= 2 and self.n_cur >= 2

    @property
    def rank_tested(self) -> bool:
        return self.n_base >= RANK_TEST_REPEATS and self.n_cur >= RANK_TEST_REPEATS

    @property
    def regression(self) -> bool:
        return any(c.regression for c in self.changes)


@dataclass(frozen=True, kw_only=True)
class Comparison:
    rows: list[Row]
    skipped: list[str]  # why a point was left out
    only_base: list[Key]
    only_cur: list[Key]
    scenario_note: str | None
    # Valid in the baseline, no valid repeat now: a change that breaks a point outright must not pass
    # because the broken point drops out of the comparison.
    lost: list[str]
    capacity: list[CapacityChange] = field(default_factory=list)
    shared_only: bool = False  # points only in the baseline were allowed to be missing
    agreement: list[Agreement] = field(default_factory=list)  # do the two runs' intervals overlap

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regression]

    @property
    def missing(self) -> list[Key]:
        """Points of a shared scenario the current run lacks: regressions unless --shared-only."""
        return [] if self.shared_only else self.only_base

    @property
    def failed(self) -> bool:
        return bool(self.regressions or self.lost or self.missing or any(c.regression for c in self.capacity))


@dataclass(frozen=True, kw_only=True)
class Agreement:
    """One figure measured in both runs, each with its 95 % interval: they agree when the intervals
    overlap (one value fits both), and differ beyond their noise when they do not."""

    what: str  # "capacity" or the figure: "p95", "throughput"
    key: str  # the point or the (variant, scenario) it belongs to
    base: tuple[float | None, float | None]
    current: tuple[float | None, float | None]

    @property
    def agree(self) -> bool:
        (b_lo, b_hi), (c_lo, c_hi) = self.base, self.current
        low = max((v for v in (b_lo, c_lo) if v is not None), default=None)
        high = min((v for v in (b_hi, c_hi) if v is not None), default=None)
        if self.what == "capacity":  # [lo, hi): the capacity is at least lo and below hi
            return low is None or high is None or low < high
        return low is None or high is None or low <= high


@dataclass(frozen=True, kw_only=True)
class CapacityChange:
    variant: str
    scenario: str
    base_users: int
    cur_users: int | None  # None: the current run has no capacity for it
    tolerance: float

    @property
    def regression(self) -> bool:
        return self.cur_users is None or self.cur_users < self.base_users * (1 - self.tolerance)


def check_comparable(baseline: RunResults, current: RunResults) -> tuple[set[str], str | None]:
    """The scenarios both runs cover; raises Incomparable naming what differs."""
    problems = []
    for key in ("mock_profile", "time_scale"):
        b, c = baseline.metadata.get(key), current.metadata.get(key)
        if not _same(b, c):
            problems.append(f"{key} differs (baseline {b!r}, current {c!r})")
    if problems:
        raise Incomparable("; ".join(problems))
    b_sc, c_sc = _scenarios(baseline), _scenarios(current)
    shared = b_sc & c_sc
    if not shared:
        raise Incomparable(
            f"no scenario in common (baseline: {', '.join(sorted(b_sc)) or 'none'}; "
            f"current: {', '.join(sorted(c_sc)) or 'none'})"
        )
    note = None
    if b_sc != c_sc:
        parts = []
        if b_sc - c_sc:
            parts.append(f"only in the baseline: {', '.join(sorted(b_sc - c_sc))}")
        if c_sc - b_sc:
            parts.append(f"only in the current run: {', '.join(sorted(c_sc - b_sc))}")
        shared_text = ", ".join(sorted(shared))
        note = f"scenario sets differ ({'; '.join(parts)}); compared the shared ones: {shared_text}"
    # Comparable, but worth a warning: another machine or preset moves CPU-bound figures by itself.
    context = [
        f"{key} differs (baseline {baseline.metadata.get(key)!r}, current {current.metadata.get(key)!r})"
        for key in CONTEXT_KEYS
        if not _same(baseline.metadata.get(key), current.metadata.get(key))
    ]
    if context:
        warning = "; ".join(context) + ": figures may differ for that reason alone"
        note = f"{note}. {warning}" if note else warning
    return shared, note


def compare_runs(
    baseline: RunResults,
    current: RunResults,
    *,
    tolerance: float = 0.10,
    gate: Sequence[str] = DEFAULT_GATE,
    shared_only: bool = False,
    count_unsteady: bool = False,
) -> Comparison:
    """``count_unsteady`` (the gate): also count repeats that are invalid only because a rule about
    steady state or the machine failed but whose measurement stands (it finished, it has requests):
    comparing two sides round by round, the spread of those rounds is noise the rank test judges, and
    leaving them out would leave too few rounds for it. Measurement failures never count."""
    usable = (lambda p: p.valid or _measured(p)) if count_unsteady else (lambda p: p.valid)
    shared_scenarios, note = check_comparable(baseline, current)
    base_groups, cur_groups = _groups(baseline), _groups(current)
    base_keys = {k for k in base_groups if k[1] in shared_scenarios}
    cur_keys = {k for k in cur_groups if k[1] in shared_scenarios}
    rows: list[Row] = []
    skipped: list[str] = []
    lost: list[str] = []
    for key in sorted(base_keys & cur_keys):
        base_valid = [p for p in base_groups[key] if usable(p)]
        cur_valid = [p for p in cur_groups[key] if usable(p)]
        dropped = [
            f"{side} repeat {p.repeat} ({'; '.join(p.invalid_reasons) or 'invalid'})"
            for side, group in (("baseline", base_groups[key]), ("current", cur_groups[key]))
            for p in group
            if not p.valid
        ]
        if dropped:
            verb = (
                "counted though invalid"
                if count_unsteady and all(usable(p) for p in (*base_groups[key], *cur_groups[key]))
                else "skipped"
                if not base_valid or not cur_valid
                else "left out invalid"
            )
            skipped.append(f"{describe_key(key)}: {verb}: {', '.join(dropped)}")
        if base_valid and not cur_valid:
            reasons = "; ".join(dict.fromkeys(r for p in cur_groups[key] for r in p.invalid_reasons))
            lost.append(f"{describe_key(key)}: valid in the baseline, invalid now ({reasons or 'invalid'})")
        if not base_valid or not cur_valid:
            continue
        changes = [
            change
            for metric in METRICS
            if (change := _change(metric, base_valid, cur_valid, tolerance, metric in gate)) is not None
        ]
        changes += _missing_figures(base_valid, cur_valid, gate, {c.metric for c in changes})
        rows.append(Row(key=key, n_base=len(base_valid), n_cur=len(cur_valid), changes=changes))
    if not rows and not lost and not (base_keys - cur_keys and not shared_only):
        raise Incomparable(
            "no valid point in common (matched by variant, scenario, load model and load)"
            + (f"; {len(skipped)} shared point(s) were invalid" if skipped else "")
        )
    return Comparison(
        rows=rows,
        skipped=skipped,
        only_base=sorted(base_keys - cur_keys),
        only_cur=sorted(cur_keys - base_keys),
        scenario_note=note,
        lost=lost,
        capacity=_capacity_changes(baseline, current, tolerance, shared_only=shared_only),
        shared_only=shared_only,
        agreement=agreement(baseline, current),
    )


def agreement(baseline: RunResults, current: RunResults) -> list[Agreement]:
    """Every capacity and every point's p95 and throughput measured in both runs with an interval."""
    found = []
    cur_capacity = {(e.get("variant"), e.get("scenario")): e for e in current.capacity}
    for entry in baseline.capacity:
        other = cur_capacity.get((entry.get("variant"), entry.get("scenario")))
        if other is not None:
            found.append(Agreement(what="capacity", key=f"{entry['variant']} · {entry['scenario']}",
                                   base=_capacity_span(entry), current=_capacity_span(other)))  # fmt: skip
    base_groups, cur_groups = _groups(baseline), _groups(current)
    for key in sorted(set(base_groups) & set(cur_groups)):
        b = [p for p in base_groups[key] if p.valid]
        c = [p for p in cur_groups[key] if p.valid]
        if not b or not c:
            continue
        for what, get in (("p95", _p95_interval), ("throughput", _throughput_interval)):
            spans = [get(p) for p in b], [get(p) for p in c]
            if all(spans[0]) and all(spans[1]):
                found.append(Agreement(what=what, key=describe_key(key), base=_hull(spans[0]),
                                       current=_hull(spans[1])))  # fmt: skip
    return found


def _capacity_span(entry: dict[str, object]) -> tuple[float | None, float | None]:
    return tuple(None if v is None else float(v) for v in entry_interval(entry))  # type: ignore[return-value]


def _p95_interval(p: Point) -> tuple[float, float] | None:
    found = (p.latency_ci_ms or {}).get("p95")
    return None if found is None else (float(found[0]), float(found[1]))


def _throughput_interval(p: Point) -> tuple[float, float] | None:
    return None if not p.throughput_ci_rps else (float(p.throughput_ci_rps[0]), float(p.throughput_ci_rps[1]))


def _hull(spans: Sequence[tuple[float, float] | None]) -> tuple[float | None, float | None]:
    known = [s for s in spans if s is not None]
    return min(s[0] for s in known), max(s[1] for s in known)


def _measured(p: Point) -> bool:
    return not p.extra.get("measurement_failed") and p.completed > 0 and p.hung == 0


def _missing_figures(
    base_pts: Sequence[Point], cur_pts: Sequence[Point], gate: Sequence[str], present: set[str]
) -> list[Change]:
    """Gated figures the baseline has and the current run lost: regressions, never a silent pass."""
    out = []
    for metric in gate:
        get = METRICS[metric][0]
        if metric in present or not any(get(p) is not None for p in base_pts):
            continue
        base = [v for p in base_pts if (v := get(p)) is not None]
        out.append(
            Change(
                metric=metric, base=sum(base) / len(base), cur=math.nan, ratio=math.nan, low=None,
                high=None, worse=True, better=False, significant=None, gated=True, missing=True,
            )
        )  # fmt: skip
    return out


def _capacity_changes(
    baseline: RunResults, current: RunResults, tolerance: float, *, shared_only: bool
) -> list[CapacityChange]:
    cur = {(str(c.get("variant")), str(c.get("scenario"))): c for c in current.capacity}
    out = []
    for entry in baseline.capacity:
        key = (str(entry.get("variant")), str(entry.get("scenario")))
        if key not in cur and shared_only:
            continue
        found = cur.get(key)
        out.append(
            CapacityChange(
                variant=key[0],
                scenario=key[1],
                base_users=int(entry.get("users", 0)),
                cur_users=None if found is None else int(found.get("users", 0)),
                tolerance=tolerance,
            )
        )
    return out


def _change(
    metric: str, base_pts: Sequence[Point], cur_pts: Sequence[Point], tolerance: float, gated: bool
) -> Change | None:
    get, higher_better, _ = METRICS[metric]
    base = [v for p in base_pts if (v := get(p)) is not None]
    cur = [v for p in cur_pts if (v := get(p)) is not None]
    if not base or not cur:
        return None
    b_mean, c_mean = sum(base) / len(base), sum(cur) / len(cur)
    if len(base) >= RANK_TEST_REPEATS and len(cur) >= RANK_TEST_REPEATS:
        return _rank_change(metric, base, cur, tolerance, gated)
    if metric == "errors":
        rise = c_mean - b_mean
        return Change(
            metric=metric,
            base=b_mean,
            cur=c_mean,
            ratio=c_mean / b_mean if b_mean > 0 else (1.0 if c_mean == 0 else math.inf),
            low=None,
            high=None,
            worse=rise > ERROR_RATE_SLACK,
            better=rise < -ERROR_RATE_SLACK,
            significant=None,
            gated=gated,
        )
    if b_mean <= 0:
        return None
    ratio = c_mean / b_mean
    worse = ratio < 1 - tolerance if higher_better else ratio > 1 + tolerance
    better = ratio > 1 + tolerance if higher_better else ratio < 1 - tolerance
    low = high = None
    significant: bool | None = None
    if len(base) >= 2 and len(cur) >= 2:
        interval = ratio_interval(base, cur)
        low, high = interval.low, interval.high
        # The interval holds the point estimate, so excluding 1.0 means beyond the noise in its direction.
        significant = interval.excludes_one()
    return Change(
        metric=metric,
        base=b_mean,
        cur=c_mean,
        ratio=ratio,
        low=low,
        high=high,
        worse=worse,
        better=better,
        significant=significant,
        gated=gated,
    )


def _rank_change(
    metric: str, base: Sequence[float], cur: Sequence[float], tolerance: float, gated: bool
) -> Change | None:
    """With enough rounds: medians, an exact rank test in the bad direction, the tolerance as the
    minimum effect (an absolute one for the failed share)."""
    _, higher_better, _ = METRICS[metric]
    b_med, c_med = gate_stats.median(base), gate_stats.median(cur)
    p_worse = gate_stats.p_greater(cur, base) if higher_better else gate_stats.p_greater(base, cur)
    if metric == "errors":
        rise = c_med - b_med
        mean_rise = sum(cur) / len(cur) - sum(base) / len(base)
        worse = max(rise, mean_rise) > ERROR_RATE_SLACK
        better = min(rise, mean_rise) < -ERROR_RATE_SLACK
        ratio = c_med / b_med if b_med > 0 else (1.0 if c_med == 0 else math.inf)
    else:
        if b_med <= 0:
            return None
        ratio = c_med / b_med
        worse = ratio < 1 - tolerance if higher_better else ratio > 1 + tolerance
        better = ratio > 1 + tolerance if higher_better else ratio < 1 - tolerance
    return Change(
        metric=metric,
        base=b_med,
        cur=c_med,
        ratio=ratio,
        low=None,
        high=None,
        worse=worse,
        better=better,
        significant=p_worse <= gate_stats.ALPHA,
        gated=gated,
        p_value=round(p_worse, 5),
        centre="median",
    )


def _groups(run: RunResults) -> dict[Key, list[Point]]:
    groups: dict[Key, list[Point]] = defaultdict(list)
    for p in run.points:
        groups[p.key].append(p)
    return groups


def _scenarios(run: RunResults) -> set[str]:
    declared = run.metadata.get("scenarios")
    if isinstance(declared, list) and declared:
        return {str(s) for s in declared}
    return {p.scenario for p in run.points}


def _same(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def describe_key(key: Key) -> str:
    variant, scenario, model, load = key
    unit = "users" if model == "closed" else "rps offered"
    return f"{variant} · {scenario} · {load:g} {unit}"
