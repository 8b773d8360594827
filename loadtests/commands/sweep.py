"""``python -m loadtests sweep``: measure server variants under load and write ``results/<run>/``.

For each variant (and each mock profile its scenarios need) the mock and the variant run as real processes
on free loopback ports, are verified against the server contract, and every point is measured
(``loadtests.driver.sweeping``); ``results.json`` is rewritten atomically after every point. Ctrl-C stops
every process, keeps the finished points and prints how to resume.

Load generation on more than one machine: ``--remote-workers N`` with ``--master-bind`` and
``--server-host`` (see loadtests/README.md); the run directory must be on a shared filesystem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from loadtests.argtypes import levels, names_or_none, number
from loadtests.driver.metadata import collect_all, utc_now
from loadtests.driver.options import (
    add_shared_arguments,
    check_target_hashes,
    default_text,
    explicit_settings,
    resume_settings,
    target_metadata,
    validate,
    with_targets,
)
from loadtests.driver.pointbuild import MEASUREMENT_FAILED
from loadtests.driver.rundir import Run
from loadtests.driver.schedule import (
    capacity_todo,
    estimate_seconds,
    group_points,
    plan_points,
    point_key,
    upstream_latency_s,
)
from loadtests.driver.sweeping import Sweep, SweepPlan, plan_sweep, remote_workers, unsupported_notes
from loadtests.errors import OneLineParser, UserError, run_main
from loadtests.presets import PRESETS, SweepSettings
from loadtests.results import RunResults

REPO = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m loadtests sweep",
        description="Run load tests against server variants (real processes on loopback) and write "
        "results/<run>/results.json, raw per-request records and logs.",
        epilog="Presets: "
        + "; ".join(
            f"{name}: {', '.join(p.variants)} x {', '.join(p.scenarios)}, users {','.join(map(str, p.users))}"
            + (f", rates {','.join(f'{r:g}' for r in p.rates)}" if p.rates else "")
            + f", time scale {p.time_scale:g}"
            for name, p in PRESETS.items()
        )
        + ". Explicit options win over the preset.",
    )
    add = parser.add_argument
    add("--preset", choices=sorted(PRESETS), default=None, help="what to measure (default: default)")
    # The old name of --preset; kept so scripts keep working (main prints a note).
    add("--profile", dest="legacy_profile", choices=sorted(PRESETS), default=None, help=argparse.SUPPRESS)
    add(
        "--users",
        type=levels(int, "--users"),
        help=f"closed-loop levels, e.g. 1,4,16,64, or none {default_text('users')}",
    )
    add(
        "--rate",
        dest="rates",
        type=levels(float, "--rate"),
        help=f"open-loop levels in requests/s, e.g. 1,2,4, or none {default_text('rates')}",
    )
    add(
        "--capacity",
        dest="capacity_scenarios",
        type=names_or_none,
        metavar="SCENARIOS",
        help="closed-loop scenarios whose capacity under the SLO is searched (loadtests capacity's rules), "
        f"or none {default_text('capacity_scenarios')}",
    )
    add(
        "--repeat",
        type=number("--repeat", kind=int, above=0, what="positive"),
        help=f"measure each point N times {default_text('repeat')}",
    )
    add(
        "--max-in-flight",
        type=number("--max-in-flight", kind=int, above=0, what="positive"),
        help=f"open-loop in-flight cap per process {default_text('max_in_flight')}",
    )
    add_shared_arguments(parser)
    add(
        "--remote-workers",
        type=number("--remote-workers", kind=int, above=0, what="positive"),
        help="Locust workers expected from other hosts, besides --loadgen-processes (default: 0); "
        "see loadtests/README.md, 'Load generation on more than one machine'",
    )
    add("--master-bind", metavar="HOST", help="address the Locust master listens on (default: 127.0.0.1)")
    add(
        "--master-port",
        type=number("--master-port", kind=int, above=0, what="positive"),
        help="its port (default: 5557)",
    )
    add(
        "--server-host",
        metavar="HOST",
        help="address the server under test listens on and is load-tested at (default: 127.0.0.1)",
    )
    add("--resume", type=Path, metavar="DIR", help="finish an interrupted run in DIR (same settings)")
    add("--dry-run", action="store_true", help="print the plan (points, variant runs, time) and exit")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.legacy_profile is not None:
        if args.preset not in (None, args.legacy_profile):
            raise UserError("--profile is the old name of --preset; give one of them")
        print("note: --profile is now --preset (the old name still works)", file=sys.stderr)
        args.preset = args.legacy_profile
    explicit = explicit_settings(args)
    if args.dry_run:
        return dry_run(args, explicit)
    run, settings = _open_run(args, explicit, argv)
    try:
        return _sweep(run, settings, resumed=args.resume is not None)
    finally:
        run.close()


def _open_run(
    args: argparse.Namespace, explicit: dict[str, Any], argv: list[str]
) -> tuple[Run, SweepSettings]:
    """A new run in --out (or results/<timestamp>, linked as results/latest), or the run to --resume."""
    if args.resume is not None:
        if args.preset is not None or args.out is not None:
            raise UserError("--resume takes the run's own settings and directory; drop --preset and --out")
        results, settings = resume_settings(args.resume, explicit)
        check_target_hashes(results)
        return Run.reopen(args.resume, results), settings
    preset = args.preset or "default"
    settings = validate(with_targets(PRESETS[preset].with_overrides(explicit), explicit))
    load_models = [m for m, levels in (("closed", settings.users), ("open", settings.rates)) if levels]
    metadata = collect_all(
        argv=argv,
        repo=REPO,
        preset=preset,
        mock_profile=settings.mock_profile,
        time_scale=settings.time_scale,
        seed=settings.seed,
        upstream_latency_s=round(upstream_latency_s(settings.mock_profile, settings.time_scale), 6),
        scenarios=settings.scenarios,
        load_models=load_models,
        started_at=utc_now(),
        extra={"sweep_settings": settings.to_dict(), "targets": target_metadata(settings)},
    )
    held = f"use --resume {args.out} or another --out" if args.out is not None else "choose another --out"
    return Run.create(args.out, metadata, held_hint=held), settings


def _sweep(run: Run, settings: SweepSettings, *, resumed: bool) -> int:
    console = _console()
    plan = plan_sweep(settings, run)
    _announce(plan, settings, run, console, resumed=resumed)
    try:
        with run.interruptible():
            Sweep(settings=settings, run=run, console=console).measure(plan)
    except KeyboardInterrupt:
        return run.interrupted(f"resume with: python -m loadtests sweep --resume {run.run_dir}")
    wall = run.finish()
    print_summary(run.results, console)
    console.print(f"results: {run.results_file}  (wall time {wall:.0f} s)")
    # A variant that could not be measured fails the run (CI must notice), after everything else ran;
    # so does a run with no valid point: there is nothing to believe in it.
    if not any(p.valid for p in run.results.points):
        why = "every point broke a validity rule" if run.results.points else "nothing was measured"
        console.print(f"[red]no valid point[/]: {why}; see the table above")
        return 1
    return 1 if any(not v.verified for v in run.results.variants) else 0


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # a log file or CI: room for the whole summary table
        console = Console(width=170)
    return console


def _announce(plan: SweepPlan, settings: SweepSettings, run: Run, console: Any, *, resumed: bool) -> None:
    if resumed:
        console.print(f"resuming {run.run_dir}: {plan.done} points done, {plan.total_points} to go")
    searched = f" (with {len(plan.searches)} capacity searches)" if plan.searches else ""
    console.print(
        f"sweep: about {plan.total_points} points{searched} over {len(plan.groups)} variant runs, about "
        f"{plan.estimate_s / 60:.1f} min; writing {run.results_file}"
    )
    if settings.remote_workers:
        remote = remote_workers(settings)
        total = settings.loadgen_processes + remote.count
        console.print(
            f"remote workers: {remote.count} expected at every point, with {run.run_dir.resolve()} at "
            f"the same path on their hosts (a shared filesystem); on each, run again after every point:\n"
            f"  {remote.worker_command(total)}",
            soft_wrap=True,
        )
    for note in unsupported_notes(settings):
        console.print(note)


def dry_run(args: argparse.Namespace, explicit: dict[str, Any]) -> int:
    """--dry-run: what the sweep would measure and about how long, without starting anything."""
    results: RunResults | None = None
    if args.resume is not None:
        results, settings = resume_settings(args.resume, explicit)
        done = {point_key(p) for p in results.points if not p.extra.get(MEASUREMENT_FAILED)}
    else:
        settings = validate(
            with_targets(PRESETS[args.preset or "default"].with_overrides(explicit), explicit)
        )
        done = set()
    todo = [s for s in plan_points(settings) if s.key not in done]
    searches = capacity_todo(settings, results)
    groups = group_points(todo, settings, searches)
    for group in groups:
        loads = [
            f"{s.scenario} {s.users} u" if s.load_model == "closed" else f"{s.scenario} {s.rate:g} rps"
            for s in group.specs
        ]
        loads += [f"{c} capacity search (<= {settings.capacity_max_points} levels)" for c in group.capacity]
        print(f"  {group.variant} (mock {group.mock_profile}): {', '.join(loads)}")
    estimate = estimate_seconds(groups, settings)
    searched = f" and {len(searches)} capacity searches" if searches else ""
    print(
        f"plan: {len(todo)} points{searched} over {len(groups)} variant runs, about {estimate / 60:.1f} min "
        "(nothing run)"
    )
    return 0


def print_summary(results: RunResults, console: Any) -> None:
    from rich.table import Table

    table = Table(title="sweep summary", show_lines=False)
    for column in (
        "variant",
        "scenario",
        "load",
        "rps",
        "expected",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "peak",
        "ceiling",
        "loadgen cpu",
        "srv ms/req",
        "valid",
    ):
        table.add_column(column, justify="left" if column in ("variant", "scenario", "valid") else "right")
    for p in results.points:
        lat = p.latency_ms
        expected = p.extra.get("expected_throughput_rps")
        load = f"{p.users} u" if p.load_model == "closed" else f"{p.rate:g} rps"
        table.add_row(
            p.variant,
            p.scenario,
            load,
            f"{p.throughput_rps:.2f}",
            "" if expected is None else f"{expected:.2f}",
            "" if lat is None else f"{lat.p50:.0f}",
            "" if lat is None else f"{lat.p95:.0f}",
            "" if lat is None else f"{lat.p99:.0f}",
            "" if p.upstream_peak_in_flight is None else str(p.upstream_peak_in_flight),
            str(p.predicted_ceiling),
            ""
            if p.cpu is None
            else f"{max(p.extra.get('loadgen_cpu_percent', {}).values(), default=0):.0f}%",
            "" if p.server_cpu_ms_per_request is None else f"{p.server_cpu_ms_per_request:.1f}",
            "yes" if p.valid else "NO: " + "; ".join(p.invalid_reasons)[:60],
        )
    console.print(table)
    unverified = [v for v in results.variants if not v.verified]
    for v in unverified:
        console.print(f"[red]not measured[/]: {v.name}: {v.reason} (log: {v.log_file})")


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
