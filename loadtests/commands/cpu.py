"""``python -m loadtests cpu``: where each variant's CPU per request goes, from a sampling profile under load.

For each variant and scenario, one closed-loop level (``--users``, default 64) is measured twice on the same
started variant, each a full sweep point (warm-up detected from the data, every validity rule): first
plain, the baseline (it goes to the run's ``points``), then with py-spy attached to every process of the
server's tree for exactly the measured window (:mod:`loadtests.driver.profile`). The profiled point is
marked (``extra["profiled"]``) and kept only in its ``cpu`` entry: the profiler costs CPU too, so it is
never used for another figure. The two points' CPU per request (psutil, each window) give the profiler's
overhead.

Written into the run directory: ``cpu/<variant>-<scenario>.svg`` (a flame graph coloured by component),
``cpu/<variant>-<scenario>.raw.txt`` (py-spy's collapsed stacks, line numbers kept) and a ``cpu`` list in
results.json with the budget: CPU ms per request by component (server, framework, validation, sdk,
http_client, json, app, runtime, other; classified by module path, see
:mod:`loadtests.analysis.cpu_budget`), which must sum to the measured CPU per request within 10 % with at
least 90 % of the samples classified. Exit 1 when a budget does not add up or a variant did not start;
2 when py-spy is missing or cannot attach here (it needs ptrace), before anything starts.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from loadtests.analysis.cpu_budget import COMPONENTS, ThreadTime, budget, parse_collapsed
from loadtests.analysis.cpu_entry import summarise, unmeasured
from loadtests.argtypes import names, number
from loadtests.driver.measure import measure_point
from loadtests.driver.metadata import collect_all, utc_now
from loadtests.driver.options import (
    add_shared_arguments,
    explicit_settings,
    supports,
    target_metadata,
    validate,
    with_targets,
)
from loadtests.driver.pointspec import PointSpec, Target
from loadtests.driver.profile import ProfilerSettings, TreeProfiler, check_attach
from loadtests.driver.rundir import Run
from loadtests.driver.schedule import Group, mock_profile_for, upstream_latency_s
from loadtests.driver.session import VariantSession
from loadtests.errors import OneLineParser, run_main
from loadtests.presets import PRESETS, SweepSettings
from loadtests.reporting.flamegraph import flamegraph_svg
from loadtests.results import Point

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VARIANTS = ("fastapi-async", "flask-sync")
DEFAULT_SCENARIOS = ("analyse",)
DEFAULT_USERS = 64
DEFAULT_DURATION_S = 20.0  # at 100 Hz and a few ms per request, enough samples for a component of 5 %


def _defaults() -> SweepSettings:
    return replace(
        PRESETS["default"], variants=DEFAULT_VARIANTS, scenarios=DEFAULT_SCENARIOS, users=(DEFAULT_USERS,),
        rates=(), duration_s=DEFAULT_DURATION_S,
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m loadtests cpu",
        description="Profile each variant's server processes under load with py-spy: a flame graph and "
        "CPU ms per request by component (server, framework, validation, sdk, http_client, json, app, "
        "runtime, other).",
    )
    add_shared_arguments(parser, defaults=_defaults())
    add = parser.add_argument
    add("--users", type=number("--users", kind=int, minimum=1), default=DEFAULT_USERS,
        help="closed-loop users of the profiled level (default: %(default)s)")  # fmt: skip
    add("--profile-rate", type=number("--profile-rate", kind=int, minimum=1, below=1001), default=100,
        help="py-spy samples per second, at most 1000 (default: %(default)s)")  # fmt: skip
    add("--profile-blocking", action="store_true",
        help="let py-spy pause each process while it reads its stacks (consistent stacks, no read errors; "
        "adds latency) instead of reading them live")  # fmt: skip
    add("--app-modules", type=names, default=(),
        help="comma-separated top-level modules of your own app (a --target's code), counted as app, "
        "not other")  # fmt: skip
    add("--no-baseline", action="store_true",
        help="skip the unprofiled point (then the profiler's overhead is not measured)")  # fmt: skip
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    explicit = {k: v for k, v in explicit_settings(args).items() if k not in ("users", "rates", "repeat")}
    base = replace(_defaults(), users=(args.users,))
    settings = validate(with_targets(base.with_overrides(explicit), explicit))
    version = check_attach()  # one line, exit 2, before any process starts, when ptrace is not allowed
    profiler = ProfilerSettings(rate_hz=args.profile_rate, nonblocking=not args.profile_blocking)
    big_l = upstream_latency_s(settings.mock_profile, settings.time_scale)
    run = Run.create(args.out, _metadata(argv, settings, args, version, big_l), link=False)
    print(
        f"cpu: {len(settings.variants)} variant(s) x {len(settings.scenarios)} scenario(s) at {args.users} "
        f"users, L = {big_l:g} s, py-spy {version} at {profiler.rate_hz} Hz"
        + ("" if args.no_baseline else ", each level measured plain then profiled")
        + f"; writing {run.results_file}",
        flush=True,
    )
    try:
        with run.interruptible():
            plan = Plan(profiler=profiler, users=args.users, baseline=not args.no_baseline,
                        app_modules=tuple(args.app_modules))  # fmt: skip
            failed = _measure_all(run, settings, plan)
    except KeyboardInterrupt:
        return run.interrupted()
    finally:
        run.close()
    wall = run.finish()
    print_table(run.results.cpu)
    print(f"results: {run.results_file}  (wall time {wall:.0f} s)")
    short = [e for e in run.results.cpu if not e["adds_up"]]
    return 1 if failed or short else 0


def _metadata(
    argv: list[str], settings: SweepSettings, args: argparse.Namespace, version: str, big_l: float
) -> dict[str, Any]:
    return collect_all(
        argv=["cpu", *argv],
        repo=REPO,
        preset="cpu",
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
            "cpu_settings": {
                "users": args.users,
                "profiler": f"py-spy {version}",
                "rate_hz": args.profile_rate,
                "nonblocking": not args.profile_blocking,
                "baseline": not args.no_baseline,
                "app_modules": list(args.app_modules),
            },
        },
    )


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What each profiled level is: py-spy's settings, the users, a baseline or not, the app's modules."""

    profiler: ProfilerSettings
    users: int
    baseline: bool
    app_modules: tuple[str, ...] = ()


def _measure_all(run: Run, settings: SweepSettings, plan: Plan) -> int:
    """Each variant in its own session per mock profile (overhead runs on the instant mock); each of its
    scenarios plain, then profiled. Returns how many sessions would not start."""
    scenarios_of: dict[tuple[str, str], list[str]] = {}
    for variant in settings.variants:
        for scenario in (s for s in settings.scenarios if supports(variant, s)):
            scenarios_of.setdefault((variant, mock_profile_for(scenario, settings)), []).append(scenario)
    groups = [Group(variant=v, mock_profile=p) for v, p in scenarios_of]

    def measure(group: Group, session: VariantSession) -> None:
        for scenario in scenarios_of[(group.variant, group.mock_profile)]:
            _profile_scenario(run, session, settings, plan, group.variant, scenario)

    def failed(group: Group, exc: Exception) -> None:
        reason = run.strip_paths(str(exc))
        suffix = "" if group.mock_profile == settings.mock_profile else f"-{group.mock_profile}"
        log = run.run_dir / "logs" / f"{group.variant}{suffix}.server.log"  # as VariantSession names it
        print(f"error: variant {group.variant}: {reason} (its log: {log})", flush=True)
        run.variant_not_measured(group.variant, reason=reason, log=log)

    return run.each_session(
        groups,
        settings,
        measure,
        on_failed=failed,
        verify=lambda g: scenarios_of[(g.variant, g.mock_profile)],
    )


def _profile_scenario(
    run: Run,
    session: VariantSession,
    settings: SweepSettings,
    plan: Plan,
    variant: str,
    scenario: str,
) -> None:
    def spec(repeat: int) -> PointSpec:
        return PointSpec(variant=variant, scenario=scenario, load_model="closed", users=plan.users,
                         rate=None, repeat=repeat)  # fmt: skip

    plain: Point | None = None
    if plan.baseline:
        plain = measure_point(session, spec(0), settings, run.run_dir)
        run.results.points.append(plain)
        run.save()
    stem = f"{variant}-{scenario}"
    cpu_dir, logs = run.run_dir / "cpu", run.run_dir / "logs"
    tree = TreeProfiler(
        plan.profiler, raw_file=cpu_dir / f"{stem}.raw.txt", log_file=logs / f"{stem}.py-spy.log"
    )

    def probe(target: Target, window_s: float) -> Any:
        return tree.attached(target.server_pid, window_s)

    point = measure_point(session, spec(1), settings, run.run_dir, window_probe=probe)
    point.extra["profiled"] = True  # py-spy was attached for the window: this point is for the budget only
    entry = (
        _entry(run, point, plain, tree, stem, plan.app_modules)
        if tree.record is not None
        else unmeasured(point, plain)
    )
    run.results.cpu.append(entry)
    run.save()
    print(_line(entry), flush=True)


def _entry(
    run: Run, point: Point, plain: Point | None, tree: TreeProfiler, stem: str, app_modules: tuple[str, ...]
) -> dict[str, Any]:
    record = tree.record
    assert record is not None
    stacks = parse_collapsed(record.raw_file.read_text(errors="replace"))
    threads = [ThreadTime(**t) for t in record.threads]
    result = budget(
        stacks, ticks=record.ticks, elapsed_s=record.elapsed_s, interval_cpu_s=record.server_cpu_s,
        cpu_ms_per_request=point.server_cpu_ms_per_request, threads=threads, app_modules=app_modules,
    )  # fmt: skip
    names = {int(p["pid"]): str(p["name"]) for p in record.processes}
    svg = run.run_dir / "cpu" / f"{stem}.svg"
    svg.write_text(
        flamegraph_svg(
            stacks,
            title=f"{point.variant}, {point.scenario} at {point.users} users: "
            f"{point.server_cpu_ms_per_request} ms of server CPU per request",
            subtitle=f"py-spy {record.rate_hz} Hz over {record.elapsed_s:.1f} s, {result.samples} samples of "
            "threads in state R in every server process; width = samples",
            process_names=names,
        )
    )
    profile = {k: v for k, v in asdict(record).items() if k not in ("raw_file", "threads")}
    files = {"flamegraph": run.relative(svg), "raw_profile": run.relative(record.raw_file)}
    return summarise(
        point, result, stacks, profile=profile, threads=threads, baseline=plain, files=files,
        app_modules=app_modules,
    )  # fmt: skip


def _line(e: dict[str, Any]) -> str:
    parts = ", ".join(f"{k} {v:.2f}" for k, v in e["components"].items() if v >= 0.005)
    overhead = e.get("profiler_overhead")
    return (
        f"  {e['variant']} {e['scenario']}: {e['cpu_ms_per_request']} ms CPU per request; profile "
        f"{e['profiled_cpu_ms_per_request']:.2f} ms ({parts}); {e['classified_share']:.0%} classified, "
        f"{e['samples']} samples"
        + ("" if overhead is None else f"; with the profiler {overhead:+.0%} CPU per request")
        + ("" if e["adds_up"] else f"; DOES NOT ADD UP: {'; '.join(e['problems'])}")
        + "".join(f"; warning: {w}" for w in e.get("warnings", []))
    )


def print_table(entries: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="server CPU per request by component (ms)")
    for column in ("variant", "scenario", "measured", *COMPONENTS, "classified", "adds up"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e["variant"], e["scenario"], f"{e['cpu_ms_per_request']}",
            *(f"{e['components'][c]:.2f}" for c in COMPONENTS), f"{e['classified_share']:.0%}",
            "yes" if e["adds_up"] else "no",
        )  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
