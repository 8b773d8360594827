"""The point schedule: which points a run measures, grouped by the variant session that serves them, how
each is timed, and a first guess of how long it all takes (for the ETA only: a prediction never sizes a
measurement).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from loadtests.analysis.capacity import Slo, guess_levels
from loadtests.driver.options import known_variants, supports
from loadtests.driver.pointspec import (
    LEVEL_MIN_COMPLETIONS,
    MIN_PERIODS,
    PointSpec,
    Timing,
    guess_seconds,
    past_limit_timing,
    plan_timing,
)
from loadtests.presets import SweepSettings
from loadtests.results import Point, RunResults

POINT_OVERHEAD_S = 3.5  # Locust start and stop, merging raw files (for the ETA)
VARIANT_OVERHEAD_S = 6.0  # starting and verifying a variant and its mock (for the ETA)


def upstream_latency_s(profile_name: str, time_scale: float) -> float:
    """Nominal duration L of one upstream call: exact for fixed profiles; for rate-based ones the median
    TTFT plus a typical answer's generation time (the TTFT alone would be 3-8 times too short, and every
    warm-up, window and ceiling is sized from L)."""
    from mock_llm.profiles import get_profile

    return get_profile(profile_name).nominal_total_s() * time_scale


def mock_profile_for(scenario: str, settings: SweepSettings) -> str:
    return "instant" if scenario == "overhead" else settings.mock_profile


def plan_points(settings: SweepSettings) -> list[PointSpec]:
    specs: list[PointSpec] = []
    for variant in settings.variants:
        for scenario in settings.scenarios:
            if not supports(variant, scenario) or not settings.measures(variant, scenario):
                continue  # a target file without that scenario: recorded as unsupported, not as failed
            for users in settings.users_for(scenario):
                for repeat in range(settings.repeat):
                    specs.append(
                        PointSpec(
                            variant=variant,
                            scenario=scenario,
                            load_model="closed",
                            users=users,
                            rate=None,
                            repeat=repeat,
                        )
                    )
            for rate in settings.rates_for(scenario):
                for repeat in range(settings.repeat):
                    specs.append(
                        PointSpec(
                            variant=variant,
                            scenario=scenario,
                            load_model="open",
                            users=None,
                            rate=rate,
                            repeat=repeat,
                        )
                    )
    return specs


def point_key(point: Point) -> tuple[str, str, str, float, int]:
    """A finished point's identity in the plan: ``Point.key`` plus the repeat (as ``PointSpec.key``)."""
    return (*point.key, point.repeat)


@dataclass(kw_only=True)
class Group:
    """Points that share one started variant and mock."""

    variant: str
    mock_profile: str
    specs: list[PointSpec] = field(default_factory=list)
    mock_args: tuple[str, ...] = ()  # more mock options (the faults command's --error-rate, --errors)
    server_env: dict[str, str] = field(default_factory=dict)  # more server settings (BENCH_*)
    label: str = ""  # tells this group's logs from another's of the same variant
    capacity: list[str] = field(default_factory=list)  # scenarios whose capacity is searched, after specs


def capacity_todo(settings: SweepSettings, results: RunResults | None = None) -> list[tuple[str, str]]:
    """(variant, scenario) pairs whose capacity search is still to run (a finished one is in results)."""
    done = {(e.get("variant"), e.get("scenario")) for e in (results.capacity if results else [])}
    return [
        (variant, scenario)
        for variant in settings.variants
        for scenario in settings.capacity_scenarios
        if settings.measures(variant, scenario)
        and supports(variant, scenario)
        and (variant, scenario) not in done
    ]


def group_points(
    specs: Sequence[PointSpec], settings: SweepSettings, capacity: Sequence[tuple[str, str]] = ()
) -> list[Group]:
    groups: dict[tuple[str, str], Group] = {}
    for spec in specs:
        profile = mock_profile_for(spec.scenario, settings)
        groups.setdefault((spec.variant, profile), Group(variant=spec.variant, mock_profile=profile))
        groups[(spec.variant, profile)].specs.append(spec)
    for variant, scenario in capacity:
        profile = mock_profile_for(scenario, settings)
        groups.setdefault((variant, profile), Group(variant=variant, mock_profile=profile))
        groups[(variant, profile)].capacity.append(scenario)
    order = {name: index for index, name in enumerate(settings.variants)}
    # sorted() is stable: a variant's groups keep their order (the upstream mock first, then instant)
    return sorted(groups.values(), key=lambda g: order.get(g.variant, len(order)))


def timing_for(
    spec: PointSpec,
    settings: SweepSettings,
    *,
    min_completions: int | None = None,
    min_periods: int | None = None,
) -> Timing:
    """``min_periods`` None: MIN_PERIODS for a closed-loop point of a scenario the run searches for capacity
    (its search reuses the point as a level, decided without measuring it again), else none."""
    latency = upstream_latency_s(mock_profile_for(spec.scenario, settings), settings.time_scale)
    if min_periods is None:
        searched = spec.load_model == "closed" and spec.scenario in settings.capacity_scenarios
        min_periods = MIN_PERIODS if searched else 0
    return plan_timing(
        latency_s=latency,
        duration_s=settings.duration_s,
        warmup_s=settings.warmup_s,
        max_warmup_s=settings.max_warmup_s,
        **({} if min_completions is None else {"min_completions": min_completions}),
        min_periods=min_periods,
    )


def point_guess_s(spec: PointSpec, settings: SweepSettings) -> float:
    """For the ETA only: the predicted ceiling seeds a guess of how long the warm-up will take."""
    ceiling = known_variants()[spec.variant].ceiling_for(spec.scenario)
    return guess_seconds(spec, timing_for(spec, settings), ceiling=ceiling) + POINT_OVERHEAD_S


def level_guess_s(spec: PointSpec, settings: SweepSettings) -> float:
    """For the ETA only: a capacity level's window (LEVEL_MIN_COMPLETIONS and MIN_PERIODS, or the short
    one of a level past its limit, guessed from the predicted ceiling)."""
    ceiling = known_variants()[spec.variant].ceiling_for(spec.scenario)
    timing = timing_for(spec, settings, min_completions=LEVEL_MIN_COMPLETIONS, min_periods=MIN_PERIODS)
    if spec.users and spec.users > Slo().p95_factor * max(ceiling, 1):
        turnover_s = spec.users / max(ceiling, 1) * timing.latency_s
        timing = past_limit_timing(timing, users=spec.users, turnover_s=turnover_s)
    return guess_seconds(spec, timing, ceiling=ceiling) + POINT_OVERHEAD_S


def capacity_guess(variant: str, scenario: str, settings: SweepSettings) -> list[PointSpec]:
    """For the ETA only: the levels a capacity search would measure if the predicted ceiling held (a
    fixed closed-loop level of the same scenario is measured once, by the sweep, and reused)."""
    levels = guess_levels(
        known_variants()[variant].predicted_ceiling,
        max_users=settings.capacity_max_users,
        max_points=settings.capacity_max_points,
    )
    fixed = set(settings.users_for(scenario))
    measured = [u for u in levels if u not in fixed]
    # The interval's two edges, measured again on a fresh server once it is resolved.
    edges = sorted(levels)[-2:] if len(levels) >= 2 else levels
    return [
        PointSpec(variant=variant, scenario=scenario, load_model="closed", users=u, rate=None, repeat=0)
        for u in [*measured, *edges]
    ]


def group_guess_s(group: Group, settings: SweepSettings) -> float:
    searched = [spec for c in group.capacity for spec in capacity_guess(group.variant, c, settings)]
    return sum(point_guess_s(s, settings) for s in group.specs) + sum(
        level_guess_s(s, settings) for s in searched
    )


def estimate_seconds(groups: Sequence[Group], settings: SweepSettings) -> float:
    return sum(VARIANT_OVERHEAD_S + group_guess_s(g, settings) for g in groups)
