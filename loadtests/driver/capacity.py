"""Capacity under an SLO, the measuring part: a search of closed-loop levels on a started variant.

Levels are chosen by bracketing and bisection (``loadtests.analysis.capacity.next_level``); each is a sweep
point (warm-up detected from the data, exact percentiles, every validity rule), cut short once its latency
is past the SLO and rising. A level invalid only for a transient reason (the mock late, other processes
competing for the CPU) is measured once more and judged by that second point; both are kept. A level whose
p95 interval straddles the limit, or whose window was too short for a p95 interval at all, is undecided: it
is measured again with a longer window (at most MAX_EXTENSIONS times, each judged on its own) until it is
decided; one still undecided then stays so, and the capacity's interval shows it.

Once the interval is resolved, its edges (lo and hi) are measured again on a freshly started server: a
decision stands only when both processes agree, since one process's CPU per request differs from the next
one's by more than the search's resolution; an edge that moves is undecided and the search goes on (at most
CONFIRMATION_ROUNDS times), so the interval covers the spread between processes, not one process's knee.
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
from loadtests.analysis.intervals import MIN_BATCHES, needed_samples
from loadtests.analysis.validity import only_transient
from loadtests.driver.measure import measure_point
from loadtests.driver.options import known_variants
from loadtests.driver.pointbuild import MEASUREMENT_FAILED
from loadtests.driver.pointspec import LEVEL_MIN_COMPLETIONS, MIN_PERIODS, PointSpec
from loadtests.driver.session import VariantSession
from loadtests.presets import SweepSettings
from loadtests.results import Point

Measure = Callable[[PointSpec, float], Point]  # the level, and its window as a multiple of the usual
MAX_EXTENSIONS = 2
CONFIRMATION_ROUNDS = 2  # times the interval's edges are measured again with fresh processes, at most
STRADDLE_FACTOR = 4.0  # a window 4x longer halves the interval's width
MAX_FACTOR = 8.0  # x the first window's floor (MIN_PERIODS periods): 88 s at L = 1 s, at most


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
    repeat_base: int = 0,
    restart: Callable[[], None] | None = None,
    base_window_s: float = 0.0,
) -> dict[str, Any]:
    """Measure levels chosen by :func:`next_level` until the capacity is resolved or the points run out.
    ``prior``: levels measured before (an interrupted run, resumed; a sweep's fixed points): judged by the
    last measurement of each level, not measured again unless undecided. ``repeat_base``: the first repeat
    index of this search's points (repeated searches in one run keep their points apart). ``restart``:
    fresh server processes, for measuring the interval's edges again once it is resolved (at most
    CONFIRMATION_ROUNDS times; an edge whose two decisions differ is undecided and the search goes on).
    ``base_window_s``: the window ``measure``'s factor multiplies, so an extension grows from the window
    the level was measured in (0: from the factor alone)."""
    began = time.monotonic()
    state = SearchState(passed={}, points={}, why={}, measurements={})
    levels = _Levels(variant=variant, scenario=scenario, measure=measure, on_point=on_point, slo=slo,
                     nominal_latency_s=nominal_latency_s, base_window_s=base_window_s)  # fmt: skip
    broken = levels.judge_prior(state, prior)
    for _round in range(CONFIRMATION_ROUNDS + 1):
        while broken is None and len(state.passed) < max_points:
            users = next_level(state.passed, start=start, max_users=max_users)
            if users is None:
                break
            point, judgement, measurements = levels.decide(users, next_repeat=repeat_base)
            if point.extra.get(MEASUREMENT_FAILED):  # the harness broke, not the server: nothing was judged
                broken = users
                break
            state.record(users, point, judgement, measurements=measurements)
        if broken is not None or restart is None or _round == CONFIRMATION_ROUNDS or not state.edges():
            break
        broken = _confirm_edges(state, levels, restart)
    return capacity_entry(
        variant, scenario, state, slo=slo, max_users=max_users, broken=broken,
        wall_time_s=round(time.monotonic() - began, 1),
    )  # fmt: skip


def _confirm_edges(state: SearchState, levels: _Levels, restart: Callable[[], None]) -> int | None:
    """Measure lo and hi again, each on a freshly started server: one process's CPU per request differs
    from the next one's by up to 10 % here (5.5 and 6.1 ms at 200 users), which moves a CPU-bound knee by
    more than the search's resolution. Returns the level whose measurement broke, if one did."""
    for users in state.edges():
        restart()
        point, judgement, taken = levels.decide(
            users, next_repeat=state.points[users].repeat + 1, note="measured again with fresh processes"
        )
        if point.extra.get(MEASUREMENT_FAILED):
            return users
        state.confirm(users, point, judgement, measurements=taken)
    return None


@dataclass(frozen=True, kw_only=True)
class _Levels:
    """How a search measures and judges one level: once (again when only a transient reason spoilt it),
    then longer while it is undecided, at most MAX_EXTENSIONS times."""

    variant: str
    scenario: str
    measure: Measure
    on_point: Callable[[Point], Any] | None
    slo: Slo
    nominal_latency_s: float
    base_window_s: float = 0.0

    def judge(self, point: Point) -> LevelJudgement:
        return judge(point, self.slo, point.upstream_latency_s or self.nominal_latency_s)

    def judge_prior(self, state: SearchState, prior: Sequence[Point]) -> int | None:
        """Record the levels measured before; one left undecided is measured again longer. Returns the
        level whose measurement broke, if one did."""
        by_level: dict[int, list[Point]] = {}
        for point in prior:
            if point.users is not None:
                by_level.setdefault(point.users, []).append(point)
        for users, points in sorted(by_level.items()):
            last = max(points, key=lambda p: p.repeat)
            judgement, measured = self.judge(last), len(points)
            if judgement.passed is None:
                last, judgement, more = self.extend(users, last, judgement, next_repeat=last.repeat + 1)
                measured += more
                if last.extra.get(MEASUREMENT_FAILED):
                    return users
            state.record(users, last, judgement, measurements=measured)
        return None

    def decide(
        self, users: int, *, next_repeat: int, note: str | None = None
    ) -> tuple[Point, LevelJudgement, int]:
        """(the deciding point, its judgement, how many points the level took); ``note``: why the level
        is measured again, when it is."""
        point = self._once(users, next_repeat, 1.0, measured_again=note)
        taken = 1
        if (
            not point.valid
            and not point.extra.get(MEASUREMENT_FAILED)
            and only_transient(point.invalid_reasons)
        ):
            again = f"the first measurement was invalid: {'; '.join(point.invalid_reasons)}"
            point = self._once(users, next_repeat + 1, 1.0, measured_again=again)
            taken = 2
        point, judgement, more = self.extend(users, point, self.judge(point), next_repeat=next_repeat + taken)
        return point, judgement, taken + more

    def extend(
        self, users: int, point: Point, judgement: LevelJudgement, *, next_repeat: int
    ) -> tuple[Point, LevelJudgement, int]:
        """Measure an undecided level again with longer windows until decided or out of extensions;
        returns the last point, its judgement and how many more points it took."""
        factor = float(point.extra.get("capacity_window_factor", 1.0))
        more = 0
        while more < MAX_EXTENSIONS and judgement.passed is None and not point.extra.get(MEASUREMENT_FAILED):
            if self.base_window_s > 0:  # from the window measured (its own turnovers, or 100 completions)
                factor = max(factor, point.duration_s / self.base_window_s)
            factor = min(MAX_FACTOR, factor * extension_factor(point))
            again = f"undecided ({judgement.why}); measured again with a {factor:g}x window"
            point = self._once(users, next_repeat + more, factor, measured_again=again)
            judgement = self.judge(point)
            more += 1
        return point, judgement, more

    def _once(self, users: int, repeat: int, factor: float, *, measured_again: str | None = None) -> Point:
        spec = PointSpec(
            variant=self.variant, scenario=self.scenario, load_model="closed", users=users, rate=None,
            repeat=repeat,
        )  # fmt: skip
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
    sample was too small for one (at least twice as long; first enough batches to estimate their
    correlation, when the window held fewer than MIN_BATCHES), else STRADDLE_FACTOR, which halves the
    interval's width. By the interval the level is decided by (capacity.decision_interval)."""
    at = point.extra.get("p95_at_limit")
    if isinstance(at, dict):
        interval, effective = at.get("interval"), at.get("effective_n")
    else:
        intervals = point.latency_ci_ms or {}
        interval, effective = intervals.get("p95"), (intervals.get("effective_n") or {}).get("p95")
    if interval is None and effective:
        if effective < MIN_BATCHES:  # one sample per turnover: MIN_BATCHES of them, and one to spare
            return float(max(2, math.ceil((MIN_BATCHES + 1) / effective)))
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
    repeat_base: int = 0,
) -> dict[str, Any]:
    """One capacity search on a started variant, for both the capacity command and ``sweep --capacity``:
    each level is a sweep point cut short once its latency is past the SLO and rising, and the first
    level is seeded from the variant's prediction (no prediction: start at 8)."""
    variant = session.group.variant
    slo_latency_ms = slo.cutoff_ms(nominal_latency_s)
    return search(
        variant,
        scenario,
        measure=lambda spec, factor: measure_point(
            session,
            spec,
            _longer(settings, factor, latency_s=nominal_latency_s),
            run_dir,
            slo_latency_ms=slo_latency_ms,
            min_completions=LEVEL_MIN_COMPLETIONS,
            min_periods=MIN_PERIODS,
        ),
        slo=slo,
        nominal_latency_s=nominal_latency_s,
        start=seed_level(known_variants()[variant].predicted_ceiling, start_users),
        max_users=max_users,
        max_points=max_points,
        on_point=on_point,
        prior=prior,
        repeat_base=repeat_base,
        restart=session.restart_server,
        base_window_s=_base_window_s(settings, nominal_latency_s),
    )


def _base_window_s(settings: SweepSettings, latency_s: float) -> float:
    """The window a factor multiplies: a level's first window is at least MIN_PERIODS periods, so the
    factor multiplies those, not the shorter requested duration (which the floor made the same window)."""
    return max(settings.duration_s, MIN_PERIODS * latency_s)


def _longer(settings: SweepSettings, factor: float, *, latency_s: float) -> SweepSettings:
    """The settings with a window ``factor`` times the base (an undecided level, measured again)."""
    if factor == 1.0:
        return settings
    return replace(settings, duration_s=_base_window_s(settings, latency_s) * factor)
