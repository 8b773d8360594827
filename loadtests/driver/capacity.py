"""``python -m loadtests capacity``: the most concurrent users each variant serves within an SLO, by search.

For each variant and scenario, closed-loop points are measured (each one like a sweep point: warm-up
detected from the data, exact percentiles, every validity rule) at user counts chosen by bracketing and
bisection, at most ``--max-points`` of them, up to ``--max-users``. A level passes when its point is valid
and meets the SLO: p95 latency <= ``--slo-p95`` x L (L as the mock injected it), failed share <=
``--slo-failed``, no hung request. The capacity is the highest passing level; what stopped it is said too,
read from the first failing level above it:

- ``concurrency``: the mock's in-flight gauge stopped following the users (a worker, thread or pool cap);
- ``server_cpu``: a server process was CPU-bound there;
- ``loadgen``: a load-generator process was (the point is invalid: the harness could not tell);
- ``machine``: the machine's CPUs were saturated, or other processes competed for them;
- ``mock``: the mock's own timing was off there (late by more than the validity rule allows): the upstream,
  not the server, could not keep L, so the harness could not tell;
- ``errors``: requests failed beyond the SLO with the gauge still following the users;
- ``invalid``: the point broke another validity rule (its reasons say which) with the gauge following;
- ``latency``: a valid point whose gauge reached every user's call at once, nothing failed and no CPU
  saturated, and whose p95 still passed the SLO (the server's own time per request grew with the load);
- ``max_users``: nothing failed up to ``--max-users``;
- ``max_points``: the points ran out before any level above the capacity failed (raise ``--max-points``);
- ``measurement``: a level's measurement broke (its point says why); the search stopped there.

A level invalid only for a transient reason (the mock late, other processes competing for the CPU) is
measured once more (``repeat`` 1) and judged by that second point; both are kept.

The registry's predicted ceiling may seed the first level tried (a first guess, clamped to 128 so a wrong
prediction of 1000 costs nothing); it never decides. A target without a prediction starts at 8.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loadtests.analysis.validity import (
    LOADGEN_CPU_LIMIT,
    MACHINE_SATURATED,
    MOCK_LATE,
    OTHER_CPU,
    only_transient,
    peak_tolerance,
)
from loadtests.argtypes import number
from loadtests.driver.metadata import collect_all, utc_now
from loadtests.driver.pointrun import MEASUREMENT_FAILED, PointSpec
from loadtests.driver.processes import ProcessStartError
from loadtests.driver.verify import ContractError
from loadtests.errors import OneLineParser, UserError
from loadtests.presets import PRESETS
from loadtests.results import RESULTS_FILE, Point, RunResults

DEFAULT_SCENARIOS = ("analyse",)
SEED_CAP = 128  # the first level tried is the predicted ceiling, but no more than this
DEFAULT_START = 8  # ... or this, when nothing is predicted


@dataclass(frozen=True, kw_only=True)
class Slo:
    p95_factor: float = 1.25  # p95 latency <= this x L
    failed_share: float = 0.001
    hung: int = 0

    def describe(self) -> str:
        return (
            f"p95 <= {self.p95_factor:g} x L, failed <= {self.failed_share:.1%}, hung requests <= {self.hung}"
        )


def build_parser() -> argparse.ArgumentParser:
    from loadtests.sweep import add_shared_arguments

    parser = OneLineParser(
        prog="python -m loadtests capacity",
        description="For each variant and scenario, find the most concurrent users that meet an SLO "
        "(bracketing and bisection on real processes) and say what bound it.",
    )
    add_shared_arguments(
        parser, defaults=replace(PRESETS["default"], scenarios=DEFAULT_SCENARIOS, users=(1,), rates=())
    )
    add = parser.add_argument
    add(
        "--max-users",
        type=number("--max-users", kind=int, minimum=1),
        default=1024,
        help="highest level tried (default: %(default)s)",
    )
    add(
        "--max-points",
        type=number("--max-points", kind=int, minimum=2),
        default=8,
        help="levels measured per variant, at most (default: %(default)s)",
    )
    add(
        "--start-users",
        type=number("--start-users", kind=int, minimum=1),
        help="first level (default: the seed rule above)",
    )
    add(
        "--slo-p95",
        type=number("--slo-p95", above=0, what="a positive number"),
        default=1.25,
        help="p95 latency limit, in units of L (default: %(default)s)",
    )
    add(
        "--slo-failed",
        type=number("--slo-failed", minimum=0, below=1, what="a fraction in [0, 1)"),
        default=0.001,
        help="failed share limit (default: %(default)s)",
    )
    add(
        "--slo-hung",
        type=number("--slo-hung", kind=int, minimum=0),
        default=0,
        help="hung requests allowed (default: %(default)s)",
    )
    return parser


# ----------------------------------------------------------------------------------------------------------
# The search (pure: tested with a fake measurement)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    passed: bool
    why: str  # why it failed ("" when it passed)


def judge(point: Point, slo: Slo, latency_s: float) -> Verdict:
    if point.latency_ms is None or point.completed == 0:
        return Verdict(passed=False, why="no request completed")
    total = point.completed + point.failed
    failed_share = point.failed / total if total else 0.0
    limit_ms = slo.p95_factor * latency_s * 1000.0
    if not point.valid:
        return Verdict(passed=False, why="invalid: " + "; ".join(point.invalid_reasons))
    if point.hung > slo.hung:
        return Verdict(passed=False, why=f"{point.hung} hung")
    if failed_share > slo.failed_share:
        return Verdict(passed=False, why=f"failed {failed_share:.2%}")
    if point.latency_ms.p95 > limit_ms:
        return Verdict(passed=False, why=f"p95 {point.latency_ms.p95:.0f} ms > {limit_ms:.0f} ms")
    return Verdict(passed=True, why="")


def next_level(passed: dict[int, bool], *, start: int, max_users: int) -> int | None:
    """The next user count to measure, or None when the capacity is found: the highest pass below the
    lowest fail, to within one user or 5 % (bracketing by x4, then bisection, geometric while wide)."""
    if not passed:
        return max(1, min(start, max_users))
    ok = [u for u, p in passed.items() if p]
    bad = [u for u, p in passed.items() if not p]
    lo = max(ok, default=0)
    hi = min((u for u in bad if u > lo), default=None)
    if hi is None:
        if lo >= max_users:
            return None
        return min(max_users, lo * 4)
    if lo == 0:  # nothing passed yet: step down by 4 until something does (capacity 0 if 1 user fails)
        return None if hi == 1 else max(1, hi // 4)
    if hi - lo <= max(1, math.floor(0.05 * lo)):
        return None
    mid = round(math.sqrt(lo * hi)) if hi > 4 * lo else (lo + hi) // 2
    mid = min(max(mid, lo + 1), hi - 1)
    return None if mid in passed else mid


def seed_level(predicted: int | None, start_users: int | None = None) -> int:
    """The first level tried: --start-users, else the prediction clamped to SEED_CAP, else DEFAULT_START."""
    return start_users or min(predicted or DEFAULT_START, SEED_CAP)


def guess_levels(predicted: int | None, *, max_users: int, max_points: int) -> list[int]:
    """For the ETA only: the levels the search would measure if the prediction held (it never decides)."""
    truth = predicted if predicted is not None else 4 * DEFAULT_START
    passed: dict[int, bool] = {}
    while len(passed) < max_points:
        users = next_level(passed, start=seed_level(predicted), max_users=max_users)
        if users is None:
            break
        passed[users] = users <= truth
    return list(passed)


def bound_of(point: Point | None) -> str:
    """What stopped the capacity, read from the lowest failing level above it (None: nothing failed)."""
    if point is None:
        return "max_users"
    loadgen = point.extra.get("loadgen_cpu_percent") or {}
    if any(v > LOADGEN_CPU_LIMIT for v in loadgen.values()):
        return "loadgen"
    if point.extra.get("server_cpu_bound"):
        return "server_cpu"
    busy = point.extra.get("machine_busy_percent")
    cpus = os.cpu_count() or 1
    if busy is not None and busy > MACHINE_SATURATED * 100.0 * cpus:
        return "machine"
    if any(r.startswith(OTHER_CPU) for r in point.invalid_reasons):
        return "machine"
    if any(r.startswith(MOCK_LATE) for r in point.invalid_reasons):
        return "mock"
    peak, users = point.upstream_peak_in_flight, point.users or 0
    if peak is not None and peak < users - peak_tolerance(users):
        return "concurrency"
    if point.failed:
        return "errors"
    if peak is not None and peak < users:  # within the tolerance, yet never every user's call at once
        return "concurrency"
    if not point.valid:
        return "invalid"
    return "latency"  # every call in flight, nothing failed, no CPU ran out: each request took longer


# ----------------------------------------------------------------------------------------------------------
# Running it


def main(argv: list[str]) -> int:
    from loadtests.sweep import (
        REPO,
        Group,
        VariantSession,
        _explicit,
        _relative,
        _set_variant,
        _strip_paths,
        _variant_info,
        default_run_dir,
        link_latest,
        make_dirs,
        mock_profile_for,
        record_measured_latency,
        search_in_session,
        supports,
        target_metadata,
        upstream_latency_s,
        validate,
        with_targets,
    )

    args = build_parser().parse_args(argv)
    explicit = {k: v for k, v in _explicit(args).items() if k not in ("users", "rates", "repeat")}
    base = PRESETS["default"]
    settings = replace(base, scenarios=DEFAULT_SCENARIOS, users=(1,), rates=()).with_overrides(explicit)
    settings = validate(with_targets(settings, explicit))
    if "overhead" in settings.scenarios:
        raise UserError(
            "--scenarios: overhead has no upstream wait (L = 0), so an SLO in units of L is empty"
        )
    slo = Slo(p95_factor=args.slo_p95, failed_share=args.slo_failed, hung=args.slo_hung)
    run_dir: Path = args.out if args.out is not None else default_run_dir()
    if (run_dir / RESULTS_FILE).exists():
        raise UserError(f"--out: {run_dir} already holds a run; choose another --out")
    for sub in ("raw", "logs"):
        make_dirs(run_dir / sub)
    if args.out is None:
        link_latest(run_dir)
    big_l = upstream_latency_s(settings.mock_profile, settings.time_scale)
    results = RunResults(
        metadata=collect_all(
            argv=["capacity", *argv],
            repo=REPO,
            preset="capacity",
            mock_profile=settings.mock_profile,
            time_scale=settings.time_scale,
            seed=settings.seed,
            upstream_latency_s=round(big_l, 6),
            scenarios=settings.scenarios,
            load_models=["closed"],
            started_at=utc_now(),
            extra={
                "sweep_settings": settings.to_dict(),
                "targets": target_metadata(settings),
                "capacity_settings": {
                    "slo": slo.describe(),
                    "slo_p95_factor": slo.p95_factor,
                    "slo_failed_share": slo.failed_share,
                    "slo_hung": slo.hung,
                    "max_users": args.max_users,
                    "max_points": args.max_points,
                },
            },
        )
    )

    def save() -> None:
        record_measured_latency(results)
        results.save(run_dir)

    save()
    started = time.monotonic()
    print(
        f"capacity: {len(settings.variants)} variant(s) x {len(settings.scenarios)} scenario(s), SLO "
        f"{slo.describe()} (L = {big_l:g} s), at most {args.max_points} levels each up to "
        f"{args.max_users} users; writing {run_dir / RESULTS_FILE}",
        flush=True,
    )
    failed_variants = 0
    try:
        for name in settings.variants:
            profile = mock_profile_for(settings.scenarios[0], settings)
            group = Group(variant=name, mock_profile=profile)
            try:
                with VariantSession(group, settings, run_dir) as session:
                    scenarios = [s for s in settings.scenarios if supports(name, s)]
                    session.verify(scenarios)
                    log_file = _relative(session.server_log, run_dir)
                    _set_variant(
                        results,
                        _variant_info(
                            name,
                            verified=True,
                            reason=None,
                            log_file=log_file,
                            scenarios=settings.scenarios,
                        ),
                    )
                    save()
                    for scenario in scenarios:
                        entry = search_in_session(
                            session,
                            scenario,
                            settings,
                            run_dir,
                            slo=slo,
                            nominal_latency_s=big_l,
                            start_users=args.start_users,
                            max_users=args.max_users,
                            max_points=args.max_points,
                            on_point=lambda point: (results.points.append(point), save()),
                        )
                        results.capacity.append(entry)
                        save()
                        print(
                            f"  {name} {scenario}: capacity {entry['users']} users "
                            f"({entry['throughput_rps']} rps), bound {entry['bound']}, "
                            f"{entry['points']} points, {entry['wall_time_s']:.0f} s",
                            flush=True,
                        )
            except (ProcessStartError, ContractError) as exc:
                failed_variants += 1
                log = run_dir / "logs" / f"{name}.server.log"
                reason = _strip_paths(str(exc), run_dir)
                print(f"error: variant {name}: {reason} (its log: {log})", flush=True)
                _set_variant(
                    results,
                    _variant_info(name, verified=False, reason=reason, log_file=_relative(log, run_dir)),
                )
                save()
    except KeyboardInterrupt:
        save()
        print(f"interrupted: every process stopped; what was measured is in {run_dir / RESULTS_FILE}")
        return 130
    wall = time.monotonic() - started
    results.metadata["finished_at"] = utc_now()
    results.metadata["wall_time_s"] = round(wall, 1)
    save()
    print_table(results.capacity)
    print(f"results: {run_dir / RESULTS_FILE}  (wall time {wall:.0f} s)")
    return 1 if failed_variants else 0


def search(
    variant: str,
    scenario: str,
    *,
    measure: Any,
    slo: Slo,
    nominal_latency_s: float,
    start: int,
    max_users: int,
    max_points: int,
    on_point: Any = None,
    prior: Sequence[Point] = (),
) -> dict[str, Any]:
    """Measure levels chosen by :func:`next_level` until the capacity is found or the points run out.
    ``prior``: levels of this search measured before (an interrupted run, resumed): judged, not measured."""
    began = time.monotonic()
    passed: dict[int, bool] = {}
    points: dict[int, Point] = {}
    why: dict[int, str] = {}
    broken: int | None = None
    for point in prior:
        if point.users is None:
            continue
        verdict = judge(point, slo, point.upstream_latency_s or nominal_latency_s)
        passed[point.users], points[point.users], why[point.users] = verdict.passed, point, verdict.why
    while len(passed) < max_points:
        users = next_level(passed, start=start, max_users=max_users)
        if users is None:
            break
        spec = PointSpec(
            variant=variant, scenario=scenario, load_model="closed", users=users, rate=None, repeat=0
        )
        point = _measure_level(spec, measure, on_point)
        if (
            not point.valid
            and not point.extra.get(MEASUREMENT_FAILED)
            and only_transient(point.invalid_reasons)
        ):
            again = f"the first measurement was invalid: {'; '.join(point.invalid_reasons)}"
            point = _measure_level(replace(spec, repeat=1), measure, on_point, measured_again=again)
        if point.extra.get(MEASUREMENT_FAILED):  # the harness broke, not the server: nothing was judged
            broken = users
            break
        verdict = judge(point, slo, point.upstream_latency_s or nominal_latency_s)
        passed[users] = verdict.passed
        points[users] = point
        why[users] = verdict.why
    ok = [u for u, p in passed.items() if p]
    capacity = max(ok, default=0)
    above = sorted(u for u, p in passed.items() if not p and u > capacity)
    first_fail = points[above[0]] if above else None
    bound = bound_of(first_fail) if first_fail is not None or capacity >= max_users else "max_points"
    if broken is not None:
        bound = "measurement"
    best = points.get(capacity)
    return {
        "variant": variant,
        "scenario": scenario,
        "users": capacity,
        "throughput_rps": round(best.throughput_rps, 3) if best is not None else 0.0,
        "bound": bound,
        "points": len(passed),
        "levels": [
            {
                "users": u,
                "passed": passed[u],
                "why": why[u],
                "peak_in_flight": points[u].upstream_peak_in_flight,
            }
            for u in sorted(passed)
        ],
        "first_failing_users": above[0] if above else None,
        "measurement_failed_users": broken,
        "in_flight_at_capacity": best.upstream_peak_in_flight if best is not None else None,
        "p95_ms_at_capacity": best.latency_ms.p95 if best is not None and best.latency_ms else None,
        "slo": slo.describe(),
        "wall_time_s": round(time.monotonic() - began, 1),
    }


def _measure_level(
    spec: PointSpec, measure: Any, on_point: Any, *, measured_again: str | None = None
) -> Point:
    point: Point = measure(spec)
    point.extra["capacity_search"] = True
    if measured_again is not None:
        point.extra["capacity_measured_again"] = measured_again
    if on_point is not None:
        on_point(point)
    return point


def print_table(entries: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="capacity under the SLO")
    for column in ("variant", "scenario", "users", "rps", "bound", "points", "levels (users: pass/fail)"):
        table.add_column(column)
    for e in entries:
        levels = ", ".join(f"{lv['users']}{'+' if lv['passed'] else '-'}" for lv in e["levels"])
        table.add_row(
            e["variant"], e["scenario"], str(e["users"]), f"{e['throughput_rps']:g}", e["bound"],
            str(e["points"]), levels,
        )  # fmt: skip
    Console(width=140).print(table)
