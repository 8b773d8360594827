"""Capacity under an SLO, the measuring part: a search of closed-loop levels on a started variant.

Levels are chosen by bracketing and bisection (``loadtests.analysis.capacity.next_level``); each is a sweep
point (warm-up detected from the data, exact percentiles, every validity rule), cut short once its latency
is past the SLO and rising. A level invalid only for a transient reason (the mock late, other processes
competing for the CPU) is measured once more (``repeat`` 1) and judged by that second point; both are kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from loadtests.analysis.capacity import SearchState, Slo, capacity_entry, judge, next_level, seed_level
from loadtests.analysis.validity import only_transient
from loadtests.driver.measure import measure_point
from loadtests.driver.options import known_variants
from loadtests.driver.pointbuild import MEASUREMENT_FAILED
from loadtests.driver.pointspec import PointSpec
from loadtests.driver.session import VariantSession
from loadtests.presets import SweepSettings
from loadtests.results import Point

Measure = Callable[[PointSpec], Point]


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
    """Measure levels chosen by :func:`next_level` until the capacity is found or the points run out.
    ``prior``: levels of this search measured before (an interrupted run, resumed): judged, not measured."""
    began = time.monotonic()
    state = SearchState(passed={}, points={}, why={})
    broken: int | None = None
    for point in prior:
        if point.users is not None:
            state.record(point.users, point, judge(point, slo, point.upstream_latency_s or nominal_latency_s))
    while len(state.passed) < max_points:
        users = next_level(state.passed, start=start, max_users=max_users)
        if users is None:
            break
        point = _measure_level(variant, scenario, users, measure, on_point)
        if point.extra.get(MEASUREMENT_FAILED):  # the harness broke, not the server: nothing was judged
            broken = users
            break
        state.record(users, point, judge(point, slo, point.upstream_latency_s or nominal_latency_s))
    return capacity_entry(
        variant, scenario, state, slo=slo, max_users=max_users, broken=broken,
        wall_time_s=round(time.monotonic() - began, 1),
    )  # fmt: skip


def _measure_level(
    variant: str, scenario: str, users: int, measure: Measure, on_point: Callable[[Point], Any] | None
) -> Point:
    """One level, measured once more when its first point was invalid only for a transient reason."""
    spec = PointSpec(
        variant=variant, scenario=scenario, load_model="closed", users=users, rate=None, repeat=0
    )
    point = _measured(spec, measure, on_point)
    if not point.valid and not point.extra.get(MEASUREMENT_FAILED) and only_transient(point.invalid_reasons):
        again = f"the first measurement was invalid: {'; '.join(point.invalid_reasons)}"
        point = _measured(replace(spec, repeat=1), measure, on_point, measured_again=again)
    return point


def _measured(
    spec: PointSpec,
    measure: Measure,
    on_point: Callable[[Point], Any] | None,
    *,
    measured_again: str | None = None,
) -> Point:
    point = measure(spec)
    point.extra["capacity_search"] = True
    if measured_again is not None:
        point.extra["capacity_measured_again"] = measured_again
    if on_point is not None:
        on_point(point)
    return point


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
        measure=lambda spec: measure_point(session, spec, settings, run_dir, slo_latency_ms=slo_latency_ms),
        slo=slo,
        nominal_latency_s=nominal_latency_s,
        start=seed_level(known_variants()[variant].predicted_ceiling, start_users),
        max_users=max_users,
        max_points=max_points,
        on_point=on_point,
        prior=prior,
    )
