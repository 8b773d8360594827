"""Capacity under an SLO, the measuring part: a search of closed-loop levels on a started variant.

Levels are chosen by bracketing and bisection (``loadtests.analysis.capacity.next_level``); each is a sweep
point (warm-up detected from the data, exact percentiles, every validity rule), cut short once its latency
is past the SLO and rising. A level invalid only for a transient reason (the mock late, other processes
competing for the CPU) is measured once more and judged by that second point; both are kept. A level whose
p95 interval straddles the limit, or whose window was too short for a p95 interval at all, is undecided: it
is measured again with a longer window (at most MAX_EXTENSIONS times, each judged on its own) until it is
decided; one still undecided then stays so, and the capacity's interval shows it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loadtests.analysis.capacity import (
    LevelJudgement,
    SearchState,
    Slo,
    capacity_entry,
    judge,
    next_level,
    seed_level,
)
from loadtests.analysis.intervals import needed_samples
from loadtests.analysis.validity import only_transient
from loadtests.driver.measure import measure_point
from loadtests.driver.options import known_variants
from loadtests.driver.pointbuild import MEASUREMENT_FAILED
from loadtests.driver.pointspec import PointSpec
from loadtests.driver.session import VariantSession
from loadtests.presets import SweepSettings
from loadtests.results import Point

Measure = Callable[[PointSpec, float], Point]  # the level, and its window as a multiple of the usual
MAX_EXTENSIONS = 2
STRADDLE_FACTOR = 4.0  # a window 4x longer halves the interval's width
MAX_FACTOR = 16.0


def search(
    variant: str,
    scenario: str,
    *,
    measure: Measure,
    slo: Slo,
    nominal_latency_s: float,
    start: int,
    max_users: int,
    max_points: int,
    on_point: Callable[[Point], Any] | None = None,
    prior: Sequence[Point] = (),
) -> dict[str, Any]:
    """Measure levels chosen by :func:`next_level` until the capacity is resolved or the points run out.
    ``prior``: levels of this search measured before (an interrupted run, resumed): judged by the last
    measurement of each level, not measured again."""
    began = time.monotonic()
    state = SearchState(passed={}, points={}, why={}, measurements={})
    broken: int | None = None
    by_level: dict[int, list[Point]] = {}
    for point in prior:
        if point.users is not None:
            by_level.setdefault(point.users, []).append(point)
    for users, points in by_level.items():
        last = max(points, key=lambda p: p.repeat)
        latency = last.upstream_latency_s or nominal_latency_s
        state.record(users, last, judge(last, slo, latency), measurements=len(points))
    while len(state.passed) < max_points:
        users = next_level(state.passed, start=start, max_users=max_users)
        if users is None:
            break
        level = _Level(variant=variant, scenario=scenario, users=users, measure=measure, on_point=on_point)
        point, judgement = level.decide(slo, nominal_latency_s)
        if point.extra.get(MEASUREMENT_FAILED):  # the harness broke, not the server: nothing was judged
            broken = users
            break
        state.record(users, point, judgement, measurements=level.measurements)
    return capacity_entry(
        variant, scenario, state, slo=slo, max_users=max_users, broken=broken,
        wall_time_s=round(time.monotonic() - began, 1),
    )  # fmt: skip


@dataclass(kw_only=True)
class _Level:
    """One level of a search, measured until decided or out of extensions."""

    variant: str
    scenario: str
    users: int
    measure: Measure
    on_point: Callable[[Point], Any] | None
    measurements: int = 0

    def decide(self, slo: Slo, nominal_latency_s: float) -> tuple[Point, LevelJudgement]:
        point = self._once(1.0)
        if (
            not point.valid
            and not point.extra.get(MEASUREMENT_FAILED)
            and only_transient(point.invalid_reasons)
        ):
            again = f"the first measurement was invalid: {'; '.join(point.invalid_reasons)}"
            point = self._once(1.0, measured_again=again)
        judgement = judge(point, slo, point.upstream_latency_s or nominal_latency_s)
        factor = 1.0
        for _ in range(MAX_EXTENSIONS):
            if judgement.passed is not None or point.extra.get(MEASUREMENT_FAILED):
                break
            factor = min(MAX_FACTOR, factor * extension_factor(point))
            again = f"undecided ({judgement.why}); measured again with a {factor:g}x window"
            point = self._once(factor, measured_again=again)
            judgement = judge(point, slo, point.upstream_latency_s or nominal_latency_s)
        return point, judgement

    def _once(self, factor: float, *, measured_again: str | None = None) -> Point:
        spec = PointSpec(
            variant=self.variant, scenario=self.scenario, load_model="closed", users=self.users, rate=None,
            repeat=self.measurements,
        )  # fmt: skip
        self.measurements += 1
        point = self.measure(spec, factor)
        point.extra["capacity_search"] = True
        if measured_again is not None:
            point.extra["capacity_measured_again"] = measured_again
        if factor != 1.0:
            point.extra["capacity_window_factor"] = factor
        if self.on_point is not None:
            self.on_point(point)
        return point


def extension_factor(point: Point) -> float:
    """How much longer the next window of an undecided level is: enough for a p95 interval when its
    sample was too small for one (at least twice as long), else STRADDLE_FACTOR, which halves the
    interval's width."""
    intervals = point.latency_ci_ms or {}
    effective = (intervals.get("effective_n") or {}).get("p95")
    if intervals.get("p95") is None and effective:
        return float(max(2, math.ceil(1.3 * needed_samples(0.95) / effective)))
    return STRADDLE_FACTOR


def search_in_session(
    session: VariantSession,
    scenario: str,
    settings: SweepSettings,
    run_dir: Path,
    *,
    slo: Slo,
    nominal_latency_s: float,
    max_users: int,
    max_points: int,
    start_users: int | None = None,
    on_point: Any = None,
    prior: Sequence[Point] = (),
) -> dict[str, Any]:
    """One capacity search on a started variant, for both the capacity command and ``sweep --capacity``:
    each level is a sweep point cut short once its latency is past the SLO and rising, and the first
    level is seeded from the variant's prediction (no prediction: start at 8)."""
    variant = session.group.variant
    slo_latency_ms = slo.p95_factor * nominal_latency_s * 1000.0
    return search(
        variant,
        scenario,
        measure=lambda spec, factor: measure_point(
            session, spec, _longer(settings, factor), run_dir, slo_latency_ms=slo_latency_ms
        ),
        slo=slo,
        nominal_latency_s=nominal_latency_s,
        start=seed_level(known_variants()[variant].predicted_ceiling, start_users),
        max_users=max_users,
        max_points=max_points,
        on_point=on_point,
        prior=prior,
    )


def _longer(settings: SweepSettings, factor: float) -> SweepSettings:
    """The settings with a window ``factor`` times as long (an undecided level, measured again)."""
    return settings if factor == 1.0 else replace(settings, duration_s=settings.duration_s * factor)
