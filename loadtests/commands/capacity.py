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
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from loadtests.analysis.capacity import Slo, interval_text, level_marks, repeat_summary
from loadtests.argtypes import number
from loadtests.driver.capacity import search_in_session
from loadtests.driver.metadata import collect_all, utc_now
from loadtests.driver.options import (
    add_shared_arguments,
    explicit_settings,
    supports,
    target_metadata,
    validate,
    with_targets,
)
from loadtests.driver.rundir import Run
from loadtests.driver.schedule import Group, mock_profile_for, upstream_latency_s
from loadtests.driver.session import VariantSession
from loadtests.errors import OneLineParser, UserError, run_main
from loadtests.presets import PRESETS, SweepSettings

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIOS = ("analyse",)
REPEAT_STRIDE = 10  # repeated searches number their points from 0, 10, 20, ... (a level takes at most 4)


def build_parser() -> argparse.ArgumentParser:

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
    add(
        "--slo-overhead-p95",
        type=number("--slo-overhead-p95", above=0, what="a positive number of milliseconds"),
        metavar="MS",
        help="judge the p95 of what the server adds (latency minus its own upstream call) against MS, "
        "instead of the p95 latency against L: the same meaning under any upstream latency distribution "
        "(default: the p95 latency rule)",
    )
    add(
        "--repeat",
        type=number("--repeat", kind=int, minimum=1),
        default=1,
        help="independent searches per variant, each with fresh processes; their intervals and union are "
        "reported (default: %(default)s)",
    )
    return parser


def print_table(entries: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="capacity under the SLO")
    for column in (
        "variant",
        "scenario",
        "capacity",
        "rps",
        "bound",
        "levels",
        "users: + pass, - fail, ? undecided",
    ):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e["variant"], e["scenario"], interval_text(e), f"{e['throughput_rps']:g}", e["bound"],
            str(e["points"]), level_marks(e["levels"]),
        )  # fmt: skip
    Console(width=140).print(table)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    explicit = {k: v for k, v in explicit_settings(args).items() if k not in ("users", "rates", "repeat")}
    base = replace(PRESETS["default"], scenarios=DEFAULT_SCENARIOS, users=(1,), rates=())
    settings = validate(with_targets(base.with_overrides(explicit), explicit))
    if "overhead" in settings.scenarios:
        raise UserError(
            "--scenarios: overhead has no upstream wait (L = 0), so an SLO in units of L is empty"
        )
    slo = Slo(
        p95_factor=args.slo_p95, failed_share=args.slo_failed, hung=args.slo_hung,
        overhead_p95_ms=args.slo_overhead_p95,
    )  # fmt: skip
    if slo.overhead_p95_ms is not None and any(s not in ("analyse", "stream") for s in settings.scenarios):
        raise UserError(
            "--slo-overhead-p95: only analyse and stream join each request with its upstream call"
        )
    big_l = upstream_latency_s(settings.mock_profile, settings.time_scale)
    run = Run.create(args.out, _metadata(argv, settings, slo, args, big_l))
    print(
        f"capacity: {len(settings.variants)} variant(s) x {len(settings.scenarios)} scenario(s), SLO "
        f"{slo.describe()} (L = {big_l:g} s), at most {args.max_points} levels each up to "
        f"{args.max_users} users"
        + (f", {args.repeat} searches each" if args.repeat > 1 else "")
        + f"; writing {run.results_file}",
        flush=True,
    )
    try:
        with run.interruptible():
            failed = _search_all(run, settings, slo, args, big_l)
    except KeyboardInterrupt:
        return run.interrupted()
    finally:
        run.close()
    if args.repeat > 1:
        run.results.metadata["capacity_repeats"] = repeat_summary(run.results.capacity)
    wall = run.finish()
    print_table(run.results.capacity)
    if args.repeat > 1:
        print_repeats(run.results.metadata["capacity_repeats"])
    print(f"results: {run.results_file}  (wall time {wall:.0f} s)")
    return 1 if failed else 0


def _metadata(
    argv: list[str], settings: SweepSettings, slo: Slo, args: argparse.Namespace, big_l: float
) -> dict[str, Any]:
    return collect_all(
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
                "slo_overhead_p95_ms": slo.overhead_p95_ms,
                "max_users": args.max_users,
                "max_points": args.max_points,
            },
        },
    )


def _search_all(run: Run, settings: SweepSettings, slo: Slo, args: argparse.Namespace, big_l: float) -> int:
    """Each variant in its own session, a search per scenario it serves; how many would not start."""

    current = {"search": 0}

    def searches(group: Group, session: VariantSession) -> None:
        for scenario in _served(group.variant, settings):
            entry = search_in_session(
                session, scenario, settings, run.run_dir, slo=slo, nominal_latency_s=big_l,
                start_users=args.start_users, max_users=args.max_users, max_points=args.max_points,
                on_point=lambda point: (run.results.points.append(point), run.save()),
                repeat_base=REPEAT_STRIDE * current["search"],
            )  # fmt: skip
            if args.repeat > 1:
                entry.update(search=current["search"] + 1, searches=args.repeat)
            run.results.capacity.append(entry)
            run.save()
            print(
                f"  {group.variant} {scenario}: capacity {interval_text(entry)} "
                f"({entry['throughput_rps']} rps at {entry['users']}), bound {entry['bound']}, "
                f"{entry['points']} levels, {entry['measurements']} points, {entry['wall_time_s']:.0f} s",
                flush=True,
            )

    def failed(group: Group, exc: Exception) -> None:
        log = run.run_dir / "logs" / f"{group.variant}.server.log"
        reason = run.strip_paths(str(exc))
        print(f"error: variant {group.variant}: {reason} (its log: {log})", flush=True)
        run.variant_not_measured(group.variant, reason=reason, log=log)

    profile = mock_profile_for(settings.scenarios[0], settings)
    failures = 0
    # Search by search, not variant by variant: a drift of the machine's speed then spreads over every
    # variant's searches instead of landing on one variant's.
    for index in range(args.repeat):
        label = f"search{index + 1}" if args.repeat > 1 else ""
        groups = [Group(variant=name, mock_profile=profile, label=label) for name in settings.variants]
        current["search"] = index
        failures += run.each_session(
            groups, settings, searches, verify=lambda g: _served(g.variant, settings), on_failed=failed
        )
    return failures


def print_repeats(summary: Sequence[dict[str, Any]]) -> None:
    for row in summary:
        intervals = ", ".join(interval_text({"interval": i}, unit="") for i in row["intervals"])
        agree = "all overlap" if row["overlap"] else "do NOT all overlap"
        print(
            f"  {row['variant']} {row['scenario']}: {len(row['intervals'])} searches: {intervals}; "
            f"union {interval_text({'interval': row['union']})}; {agree}"
        )


def _served(variant: str, settings: SweepSettings) -> list[str]:
    return [s for s in settings.scenarios if supports(variant, s)]


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
