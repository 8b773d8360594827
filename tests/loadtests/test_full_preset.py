"""The full preset: per-scenario levels, capacity search inside the sweep, and a plan that fits 45 minutes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from loadtests.driver.capacity import Slo, search
from loadtests.driver.pointrun import PointSpec
from loadtests.presets import ALL_SCENARIOS, PRESETS, SweepSettings
from loadtests.results import Percentiles, Point
from loadtests.sweep import (
    UserError,
    capacity_todo,
    estimate_seconds,
    group_points,
    plan_points,
    validate,
)
from servers.variants import VARIANTS

FULL = PRESETS["full"]


def test_the_full_preset_covers_every_variant_scenario_and_load_model_within_45_minutes() -> None:
    settings = validate(FULL)
    assert set(settings.variants) == {v.name for v in VARIANTS}  # a new variant must join the reference
    specs = plan_points(settings)
    assert {s.scenario for s in specs} == set(ALL_SCENARIOS)
    assert {s.load_model for s in specs} == {"closed", "open"}
    searches = capacity_todo(settings)
    assert {v for v, _ in searches} == set(settings.variants)
    # The plan's own ETA (the wall time of the committed reference run is the real check; see the README).
    assert estimate_seconds(group_points(specs, settings, searches), settings) <= 45 * 60


def test_explicit_levels_replace_the_presets_per_scenario_levels_and_search() -> None:
    users = FULL.with_overrides({"users": (2,)})
    assert users.users_for("analyse") == (2,) and users.users_for("overhead") == (2,)
    assert users.capacity_scenarios == () and users.rates_for("analyse") == FULL.rates_for("analyse")
    rates = FULL.with_overrides({"rates": (1.0,)})
    assert rates.rates_for("analyse") == (1.0,) and rates.users_for("analyse") == FULL.users_for("analyse")
    assert rates.capacity_scenarios == ("analyse",)
    both = FULL.with_overrides({"users": (2,), "capacity_scenarios": ("analyse",)})
    assert both.capacity_scenarios == ("analyse",)


def test_settings_survive_the_results_file() -> None:
    """--resume reads them back from results.json: the per-scenario maps must come back as they were."""
    again = SweepSettings.from_dict(json.loads(json.dumps(FULL.to_dict())))
    assert again == FULL
    assert plan_points(validate(again)) == plan_points(validate(FULL))


def test_a_variant_with_only_a_search_still_gets_its_session_in_variant_order() -> None:
    settings = validate(
        FULL.with_overrides(
            {"variants": ("flask-sync", "fastapi-async"), "scenarios": ("analyse", "overhead")}
        )
    )
    specs = [s for s in plan_points(settings) if not (s.variant == "flask-sync" and s.scenario == "analyse")]
    groups = group_points(specs, settings, capacity_todo(settings))
    assert [(g.variant, g.mock_profile, g.capacity) for g in groups] == [
        ("flask-sync", "instant", []),
        ("flask-sync", "article", ["analyse"]),
        ("fastapi-async", "article", ["analyse"]),
        ("fastapi-async", "instant", []),
    ]


@pytest.mark.parametrize(
    ("capacity", "needle"),
    [(("overhead",), "overhead has no upstream wait"), (("bogus",), "unknown scenario 'bogus'")],
)
def test_a_bad_capacity_scenario_is_refused(capacity: tuple[str, ...], needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        validate(FULL.with_overrides({"capacity_scenarios": capacity}))


def _point(users: int, *, p95_ms: float) -> Point:
    latency = Percentiles(
        count=50, min=p95_ms, mean=p95_ms, p50=p95_ms, p90=p95_ms, p95=p95_ms, p99=p95_ms, max=p95_ms
    )
    return Point(
        variant="flask-sync", scenario="analyse", load_model="closed", users=users, rate=None, repeat=0,
        duration_s=5.0, completed=50, failed=0, unfinished=0, throughput_rps=min(users, 4) / 1.0,
        latency_ms=latency, ttft_ms=None, upstream_peak_in_flight=min(users, 4), upstream_requests=50,
        littles_law=None, cpu={}, valid=True, invalid_reasons=[], upstream_latency_s=1.0, warmup_s=2.0,
        failures_by_status={}, predicted_ceiling=4, server_cpu_ms_per_request=1.0,
    )  # fmt: skip


def test_a_resumed_search_judges_its_finished_levels_instead_of_measuring_them_again() -> None:
    measured: list[int] = []

    def measure(spec: PointSpec) -> Point:
        assert spec.users is not None
        measured.append(spec.users)
        return _point(spec.users, p95_ms=1000.0 if spec.users <= 4 else 2000.0)  # 4 workers

    prior = [_point(4, p95_ms=1000.0), _point(16, p95_ms=4000.0)]
    entry = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=8, prior=prior,
    )  # fmt: skip
    assert measured == [10, 7, 5]  # 4 and 16 were already known
    assert entry["users"] == 4 and entry["points"] == 5


def test_a_broken_measurement_stops_the_search_without_judging_the_server() -> None:
    from loadtests.driver.pointrun import MEASUREMENT_FAILED

    def measure(spec: PointSpec) -> Point:
        assert spec.users is not None
        point = _point(spec.users, p95_ms=1000.0)
        if spec.users > 4:
            point = dataclasses.replace(point, valid=False, completed=0, latency_ms=None)
            point.extra[MEASUREMENT_FAILED] = "load generator did not start within 60 s"
        return point

    entry = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=8,
    )  # fmt: skip
    assert (entry["users"], entry["bound"], entry["points"]) == (4, "measurement", 1)
    assert entry["measurement_failed_users"] == 16


LATE = (
    "the mock was late by 32.0 ms at p99 (limit 2% of L, at least 10 ms: 10 ms): the upstream's own timing "
    "was off"
)


def test_a_level_spoilt_by_the_mocks_timing_is_measured_again_and_judged_by_the_second_point() -> None:
    measured: list[tuple[int, int]] = []
    seen: list[Point] = []

    def measure(spec: PointSpec) -> Point:
        assert spec.users is not None
        measured.append((spec.users, spec.repeat))
        point = _point(spec.users, p95_ms=1000.0 if spec.users <= 4 else 2000.0)
        if spec.users == 4 and spec.repeat == 0:  # one stall of the mock's clock, the first time only
            point = dataclasses.replace(point, valid=False, invalid_reasons=[LATE])
        return point

    entry = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=8, on_point=seen.append,
    )  # fmt: skip
    assert measured[:3] == [(4, 0), (4, 1), (16, 0)]
    assert entry["users"] == 4 and entry["bound"] == "concurrency"  # not 0 users because of one stall
    assert [p.valid for p in seen[:2]] == [False, True]  # both kept
    assert "mock was late" in seen[1].extra["capacity_measured_again"]


def test_a_level_the_mock_is_late_for_twice_is_bound_by_the_mock_and_other_reasons_are_not_retried() -> None:
    measured: list[tuple[int, int]] = []
    little = "Little's law off by 30%: throughput x mean latency = 11.2 in flight, but 16 users"

    def measure(spec: PointSpec) -> Point:
        assert spec.users is not None
        measured.append((spec.users, spec.repeat))
        point = _point(spec.users, p95_ms=1000.0)
        if spec.users == 16:
            point = dataclasses.replace(point, valid=False, invalid_reasons=[LATE])
        if spec.users == 10:
            point = dataclasses.replace(point, valid=False, invalid_reasons=[little])
        return point

    entry = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=3,
    )  # fmt: skip
    assert measured == [(4, 0), (16, 0), (16, 1), (10, 0)]  # 16 twice, 10 (Little's law) once
    assert entry["users"] == 4 and entry["first_failing_users"] == 10
    late_only = search(
        "flask-sync", "analyse", measure=measure, slo=Slo(), nominal_latency_s=1.0, start=4,
        max_users=1024, max_points=2,
    )  # fmt: skip
    assert (late_only["users"], late_only["bound"]) == (4, "mock")  # the harness could not tell


def test_what_stopped_a_search_is_read_from_its_first_failing_level() -> None:
    from loadtests.driver.capacity import bound_of

    slow = dataclasses.replace(_point(128, p95_ms=1320.0), upstream_peak_in_flight=128, throughput_rps=118.6)
    assert bound_of(slow) == "latency"  # every call in flight, none failed, no CPU ran out: just slower
    assert bound_of(_point(128, p95_ms=32_000.0)) == "concurrency"  # the gauge stopped at 4
    assert bound_of(dataclasses.replace(slow, failed=3)) == "errors"
    unsteady = dataclasses.replace(slow, valid=False, invalid_reasons=["the window itself was not steady"])
    assert bound_of(unsteady) == "invalid"
    late = dataclasses.replace(slow, valid=False, invalid_reasons=[LATE])
    assert bound_of(late) == "mock"
