"""``python -m loadtests reach``: how many concurrent streams each variant holds, and what fails first.

Each (variant, level) is one closed-loop ``stream`` point on a fresh mock and server, with an upstream
latency L long enough that the request rate N / L stays within this machine's CPU: L = max(--min-latency,
N / --max-rate) (the mock's article profile time-scaled). Users start spread over one L (as in every
sweep point), so all N streams are open from then on; the warm-up is fixed at that L plus a margin, and
the window that follows lasts --window seconds (default max(20 s, L / 5)): at N streams it still holds
thousands of completions, and a window of whole periods would make a 10,000-stream point last 2 L.

Before anything starts, the soft RLIMIT_NOFILE of this process is raised to its hard limit, so every child
(mock, server, Locust) inherits it; both limits go into the metadata. The servers' upstream deadline and
per-attempt timeout are raised with L (3 L and 2 L), or a 60 s stream would time out by design;
``--upstream-pool`` optionally sets the SDK's connection pool (BENCH_UPSTREAM_MAX_CONNECTIONS), recorded on
every row, since the default pool of 1,000 is itself a ceiling.

What failed first is read from the point's own evidence (:mod:`loadtests.analysis.reach`). Every load
loop is bounded: a level count, a fixed warm-up and window per point, a run-time ceiling for Locust, and
``--budget`` minutes for the whole run (a level that would not fit is skipped and said so).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from loadtests.argtypes import number
from loadtests.driver.metadata import collect_all, utc_now
from loadtests.driver.options import known_variants
from loadtests.driver.reach import (
    ARTICLE_S,
    STREAMS_PER_LOADGEN,
    ReachLevel,
    ReachOptions,
    plan_levels,
    raise_open_files,
    reclassify,
    run_level,
    skipped,
)
from loadtests.driver.rundir import Run, default_run_dir
from loadtests.errors import OneLineParser, UserError, run_main

REPO = Path(__file__).resolve().parents[2]

# The streaming-capable variants: every one whose design holds hundreds of streams at once (an event loop,
# gevent, granian's 512 threads) or sheds past its limit. The others cap at 4 to 128 by a process or
# thread count, which the sweep already measures; at 1,000 streams they would only measure a queue.
DEFAULT_VARIANTS = (
    "fastapi-async",
    "flask-gevent",
    "fastapi-workers",
    "fastapi-granian",
    "fastapi-gunicorn-asgi",
    "flask-granian",
    "fastapi-shedding",
)
DEFAULT_STREAMS = (1_000, 5_000, 10_000)
# Each streamed chunk costs the server CPU (measured here: 68 ms for a 112-chunk answer at L = 8 s, one
# core at about 15 streams/s); capped answers (about 15 chunks) keep a 10,000-stream level about holding
# streams rather than relaying tokens, within two cores. The cap is recorded on every row.
DEFAULT_MAX_TOKENS = 16


def _csv_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--streams takes whole numbers, not {text!r}") from None
    if not values or any(v < 1 or v > 50_000 for v in values):
        raise argparse.ArgumentTypeError(f"--streams: each level must be 1..50000, not {text}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m loadtests reach",
        description="Try each variant at 1,000, 5,000 and 10,000 concurrent streams (closed loop, an L "
        "long enough to keep the request rate within the CPU) and record what fails first.",
    )
    add = parser.add_argument
    add(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help="comma-separated variant names (default: %(default)s)",
    )
    add(
        "--streams",
        type=_csv_ints,
        default=DEFAULT_STREAMS,
        help="levels: concurrent streams (default: 1000,5000,10000)",
    )
    add(
        "--min-latency",
        type=number("--min-latency", above=0, what="a positive number"),
        default=60.0,
        help="L at the lowest level, s (default: %(default)s)",
    )
    add(
        "--max-rate",
        type=number("--max-rate", above=0, what="a positive number"),
        default=40.0,
        help="streams started per second at most: L = max(min-latency, N / this) (default: %(default)s)",
    )
    add(
        "--window",
        type=number("--window", above=0, what="a positive number"),
        help="measured seconds per level (default: max(20, L/5))",
    )
    add("--loadgen-processes", type=int, help=f"Locust workers (default: one per {STREAMS_PER_LOADGEN:,})")
    add("--upstream-pool", type=int, help="the servers' SDK connection pool (default: the SDK's own)")
    add(
        "--max-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        help="the servers' BENCH_MAX_TOKENS: answer length, so chunks per stream (0: the servers' own; "
        "default: %(default)s)",
    )
    add(
        "--budget",
        type=number("--budget", above=0, what="a positive number"),
        default=20.0,
        help="minutes for the whole run, at most (default: %(default)s)",
    )
    add("--seed", type=int, default=1, help="seed for the mock and payloads (default: %(default)s)")
    add("--out", type=Path, help="run directory (default: results/reach-<UTC date and time>/)")
    add("--dry-run", action="store_true", help="print the plan and its expected wall time, run nothing")
    add(
        "--reclassify",
        type=Path,
        metavar="DIR",
        help="re-read a finished reach run's rows from its points, logs and raw records (the current "
        "rules); nothing is measured",
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.reclassify is not None:
        for line in reclassify(args.reclassify):
            print(f"  {line}")
        return 0
    _check(args)
    variants = tuple(v.strip() for v in str(args.variants).split(",") if v.strip())
    plan = plan_levels(
        variants, args.streams, min_latency_s=args.min_latency, max_rate=args.max_rate, window_s=args.window,
        loadgen_processes=args.loadgen_processes,
    )  # fmt: skip
    expected = sum(level.expected_s for level in plan)
    _print_plan(plan, expected, args.budget)
    if args.dry_run:
        return 0
    nofile = raise_open_files()
    print(nofile["text"], flush=True)
    run = Run.create(
        args.out, _metadata(argv, args, plan, nofile, expected), link=False, measured_latency=False,
        default=lambda: default_run_dir("reach-"),
    )  # fmt: skip
    options = ReachOptions(
        seed=args.seed, upstream_pool=args.upstream_pool, max_tokens=args.max_tokens or None
    )
    try:
        with run.interruptible():  # a stop signal ends the level's processes; the rows so far stay
            _run_plan(run, plan, options, budget_s=args.budget * 60)
    except KeyboardInterrupt:
        return run.interrupted()
    finally:
        run.close()
    wall = run.finish()
    print(f"results: {run.results_file}  (wall time {wall / 60:.1f} min, expected {expected / 60:.1f})")
    return 0


def _check(args: argparse.Namespace) -> None:
    known = known_variants()
    variants = tuple(v.strip() for v in str(args.variants).split(",") if v.strip())
    unknown = [v for v in variants if v not in known]
    if not variants or unknown:
        raise UserError(f"--variants: unknown variant {unknown[0] if unknown else '(none)'!r}")
    if args.loadgen_processes is not None and not 1 <= args.loadgen_processes <= 16:
        raise UserError(f"--loadgen-processes must be 1..16, not {args.loadgen_processes}")
    if args.max_tokens < 0:
        raise UserError(f"--max-tokens must be 0 (the servers' default) or more, not {args.max_tokens}")
    if args.upstream_pool is not None and args.upstream_pool < 1:
        raise UserError(f"--upstream-pool must be at least 1, not {args.upstream_pool}")
    if args.out is not None and (args.out / "results.json").exists():
        raise UserError(f"--out: {args.out} already holds a run; choose another --out")


def _print_plan(plan: list[ReachLevel], expected: float, budget_min: float) -> None:
    print(
        f"reach plan ({len(plan)} levels, expected wall time {expected / 60:.1f} min, "
        f"budget {budget_min:g} min):"
    )
    for level in plan:
        print(
            f"  {level.variant:22} {level.streams:>6,} streams  L = {level.latency_s:g} s "
            f"({level.streams / level.latency_s:.0f} streams/s)  window {level.window_s:g} s  "
            f"{level.loadgen_processes} Locust process(es)  ~{level.expected_s:.0f} s"
        )


def _metadata(
    argv: list[str], args: argparse.Namespace, plan: list[ReachLevel], nofile: dict, expected: float
) -> dict:
    return collect_all(
        argv=["reach", *argv],
        repo=REPO,
        preset="reach",
        mock_profile="article",
        time_scale=round(plan[0].latency_s / ARTICLE_S, 4),
        seed=args.seed,
        upstream_latency_s=plan[0].latency_s,
        scenarios=["stream"],
        load_models=["closed"],
        started_at=utc_now(),
        extra={
            "reach_settings": {
                "streams": list(args.streams),
                "min_latency_s": args.min_latency,
                "max_rate": args.max_rate,
                "window_s": args.window,
                "upstream_pool": args.upstream_pool,
                "max_tokens": args.max_tokens or None,
                "budget_min": args.budget,
                "nofile": nofile["text"],
                "rlimit_nofile": {k: nofile[k] for k in ("soft_before", "soft", "hard")},
                "expected_wall_s": round(expected, 1),
                "verification": "health only: the contract is verified by the sweep and the tests",
            },
        },
    )


def _run_plan(run: Run, plan: list[ReachLevel], options: ReachOptions, *, budget_s: float) -> None:
    for level in plan:
        if time.monotonic() - run.started + level.expected_s > budget_s:
            print(
                f"  {level.variant} {level.streams:,}: skipped, "
                f"it would not fit in the {budget_s / 60:g} min budget"
            )
            run.results.reach.append(skipped(level, "would not fit in the budget"))
            run.save()
            continue
        run_level(run, level, options)


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
