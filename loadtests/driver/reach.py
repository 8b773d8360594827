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
import gzip
import math
import re
import resource
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from loadtests.analysis.reach import ReachFacts, first_failure
from loadtests.argtypes import number
from loadtests.driver.interrupts import stop_signals_interrupt
from loadtests.driver.metadata import collect_all, utc_now
from loadtests.driver.pointrun import PointSpec, Timing, failed_point, run_point
from loadtests.driver.processes import ProcessStartError
from loadtests.driver.verify import ContractError
from loadtests.errors import OneLineParser, UserError
from loadtests.presets import PRESETS
from loadtests.results import RESULTS_FILE, Point, RunResults

ARTICLE_S = 2.0  # the article profile's call, before the time scale
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
STREAMS_PER_LOADGEN = 5_000  # Locust workers: one per this many users (sockets and CPU per process)
WARMUP_MARGIN_S = 5.0
START_OVERHEAD_S = 25.0  # a fresh mock and server, verification, Locust start and stop (for the plan)
OPEN_FILES = re.compile(rb"too many open files|EMFILE", re.IGNORECASE)
LARGE_LOG_BYTES = 1_000_000  # logs above this are gzipped after their level (see compress_large_logs)


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


def level_latency_s(streams: int, *, min_latency_s: float, max_rate: float) -> float:
    return round(max(min_latency_s, streams / max_rate), 1)


def level_window_s(latency_s: float, window_s: float | None) -> float:
    return window_s if window_s is not None else round(max(20.0, latency_s / 5))


def level_seconds(latency_s: float, window_s: float) -> float:
    """Expected wall time of one level: the start spread (one L), the margin, the window, the overhead."""
    return latency_s + WARMUP_MARGIN_S + window_s + START_OVERHEAD_S


def raise_open_files() -> dict[str, Any]:
    """Soft RLIMIT_NOFILE up to the hard limit, inherited by every child started after this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised = soft
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            raised = target
        except (ValueError, OSError):
            raised = soft
    text = f"open files: soft limit {soft:,} raised to {raised:,} (hard {hard:,}) for every child"
    if raised == soft:
        text = f"open files: soft limit {soft:,} = hard limit {hard:,} (nothing to raise) for every child"
    return {"soft_before": soft, "soft": raised, "hard": hard, "text": text}


def main(argv: list[str]) -> int:
    from loadtests.sweep import REPO, _known_variants

    args = build_parser().parse_args(argv)
    if args.reclassify is not None:
        return reclassify(args.reclassify)
    known = _known_variants()
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
    run_dir: Path = args.out or Path("results") / time.strftime("reach-%Y%m%dT%H%M%SZ", time.gmtime())
    if (run_dir / RESULTS_FILE).exists():
        raise UserError(f"--out: {run_dir} already holds a run; choose another --out")

    # Level by level, not variant by variant: when the budget runs out, what is left unmeasured is the
    # largest levels of the last variants, and every variant has its smaller levels.
    plan = []
    for streams in args.streams:
        for variant in variants:
            big_l = level_latency_s(streams, min_latency_s=args.min_latency, max_rate=args.max_rate)
            window = level_window_s(big_l, args.window)
            procs = args.loadgen_processes or max(1, math.ceil(streams / STREAMS_PER_LOADGEN))
            plan.append((variant, streams, big_l, window, procs))
    expected = sum(level_seconds(big_l, window) for _, _, big_l, window, _ in plan)
    print(
        f"reach plan ({len(plan)} levels, expected wall time {expected / 60:.1f} min, "
        f"budget {args.budget:g} min):"
    )
    for variant, streams, big_l, window, procs in plan:
        print(
            f"  {variant:22} {streams:>6,} streams  L = {big_l:g} s ({streams / big_l:.0f} streams/s)  "
            f"window {window:g} s  {procs} Locust process(es)  ~{level_seconds(big_l, window):.0f} s"
        )
    if args.dry_run:
        return 0

    nofile = raise_open_files()
    print(nofile["text"], flush=True)
    for sub in ("raw", "logs"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    results = RunResults(
        metadata=collect_all(
            argv=["reach", *argv],
            repo=REPO,
            preset="reach",
            mock_profile="article",
            time_scale=round(plan[0][2] / ARTICLE_S, 4),
            seed=args.seed,
            upstream_latency_s=plan[0][2],
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
    )
    results.save(run_dir)
    began = time.monotonic()
    try:
        with stop_signals_interrupt():  # a stop signal ends the level's processes; the rows so far stay
            for variant, streams, big_l, window, procs in plan:
                spent = time.monotonic() - began
                if spent + level_seconds(big_l, window) > args.budget * 60:
                    print(
                        f"  {variant} {streams:,}: skipped, "
                        f"it would not fit in the {args.budget:g} min budget"
                    )
                    results.reach.append(_skipped(variant, streams, big_l, "would not fit in the budget"))
                    results.save(run_dir)
                    continue
                _run_level(args, results, run_dir, variant=variant, streams=streams, big_l=big_l,
                           window=window, procs=procs)  # fmt: skip
    except KeyboardInterrupt:
        results.save(run_dir)
        print(f"interrupted: every process stopped; what was measured is in {run_dir / RESULTS_FILE}")
        return 130
    finally:
        # Working files (the variants' job databases); every process is stopped.
        shutil.rmtree(run_dir / "tmp", ignore_errors=True)
    wall = time.monotonic() - began
    results.metadata["finished_at"] = utc_now()
    results.metadata["wall_time_s"] = round(wall, 1)
    results.save(run_dir)
    print(f"results: {run_dir / RESULTS_FILE}  (wall time {wall / 60:.1f} min, expected {expected / 60:.1f})")
    return 0


def _run_level(
    args: argparse.Namespace,
    results: RunResults,
    run_dir: Path,
    *,
    variant: str,
    streams: int,
    big_l: float,
    window: float,
    procs: int,
) -> None:
    """One (variant, level): a fresh mock and server, one closed-loop stream point, its row saved."""
    from loadtests.sweep import (
        Group,
        VariantSession,
        _known_variants,
        _relative,
        _set_variant,
        _strip_paths,
        _variant_info,
    )

    known = _known_variants()
    base = PRESETS["default"]
    settings = replace(
        base,
        variants=(variant,),
        scenarios=("stream",),
        users=(streams,),
        rates=(),
        time_scale=big_l / ARTICLE_S,
        loadgen_processes=procs,
        seed=args.seed,
    )
    server_env = {
        "BENCH_UPSTREAM_DEADLINE_S": f"{3 * big_l:g}",
        "BENCH_UPSTREAM_TIMEOUT_S": f"{2 * big_l:g}",
    }
    if args.upstream_pool is not None:
        server_env["BENCH_UPSTREAM_MAX_CONNECTIONS"] = str(args.upstream_pool)
    if args.max_tokens:
        server_env["BENCH_MAX_TOKENS"] = str(args.max_tokens)
    group = Group(variant=variant, mock_profile="article", server_env=server_env, label=f"{streams}")
    spec = PointSpec(
        variant=variant, scenario="stream", load_model="closed", users=streams, rate=None, repeat=0
    )
    timing = Timing(
        warmup_s=big_l + WARMUP_MARGIN_S,
        duration_s=window,
        max_warmup_s=big_l + WARMUP_MARGIN_S,
        latency_s=window,  # the window's unit: one window, not whole periods of L (see above)
    )
    low_memory: list[float] = []
    try:
        with VariantSession(group, settings, run_dir) as session:
            # Health only: the contract check waits whole upstream calls (minutes at this L); the
            # sweep and the tests verify the same code, and every completed stream here is checked.
            _set_variant(
                results,
                _variant_info(
                    variant,
                    verified=True,
                    reason=None,
                    log_file=_relative(session.server_log, run_dir),
                ),
            )
            target = session.target(
                ceiling=known[variant].predicted_ceiling, latency_s=big_l, scenario="stream"
            )
            watcher = _MemoryWatch(low_memory)
            watcher.start()
            try:
                point = run_point(
                    spec,
                    target,
                    timing,
                    run_dir=run_dir,
                    loadgen_processes=procs,
                    seed=args.seed,
                    max_in_flight=settings.max_in_flight,
                    env=_env(),
                )
            except (OSError, RuntimeError) as exc:
                point = failed_point(spec, target, timing, _strip_paths(str(exc), run_dir))
            finally:
                watcher.stop()
    except (ProcessStartError, ContractError) as exc:
        reason = _strip_paths(str(exc), run_dir)
        print(f"  {variant} {streams:,}: did not start: {reason}", flush=True)
        point = None
        results.reach.append(_skipped(variant, streams, big_l, f"did not start: {reason}"))
    if point is not None:
        point.extra["reach_latency_s"] = big_l
        results.points.append(point)
        facts = ReachFacts(
            streams=streams,
            latency_s=big_l,
            open_file_errors=_open_file_errors(run_dir / "logs", variant, streams, spec.point_id),
            available_memory_min_mb=min(low_memory) if low_memory else None,
            memory_total_mb=results.metadata.get("memory_total_mb"),
            cpu_count=results.metadata.get("cpu_count"),
        )
        _compress_logs(results, run_dir)  # after the level's open-file count read them
        row = _row(point, facts, procs, args.upstream_pool)
        row["max_tokens"] = args.max_tokens or None
        results.reach.append(row)
        print(
            f"  {variant} {streams:,}: held {row['held']:,}, {row['completed']:,} completed, "
            f"{row['failed']:,} failed, first failure: {row['first_failure']} ({row['detail']})",
            flush=True,
        )
    results.save(run_dir)


def reclassify(run_dir: Path) -> int:
    """Rows again from the stored points (what failed first is a pure reading of the evidence)."""
    from loadtests.results import load_results

    run = load_results(run_dir)
    if not run.reach:
        raise UserError(f"--reclassify: {run_dir} has no reach rows")
    points = {(p.variant, p.users): p for p in run.points}
    pool = (run.metadata.get("reach_settings") or {}).get("upstream_pool")
    for i, old in enumerate(run.reach):
        point = points.get((old["variant"], old["streams"]))
        if point is None:
            continue
        facts = ReachFacts(
            streams=int(old["streams"]),
            latency_s=float(old["latency_s"]),
            open_file_errors=_open_file_errors(
                run_dir / "logs", point.variant, int(old["streams"]), _point_id(point)
            ),
            available_memory_min_mb=old.get("available_memory_min_mb"),
            memory_total_mb=run.metadata.get("memory_total_mb"),
            cpu_count=run.metadata.get("cpu_count"),
        )
        row = _row(point, facts, int(old.get("loadgen_processes") or 1), pool)
        row["max_tokens"] = old.get("max_tokens")
        if (row["first_failure"], row["detail"]) != (old.get("first_failure"), old.get("detail")):
            print(
                f"  {row['variant']} {row['streams']:,}: {old.get('first_failure')} -> {row['first_failure']}"
            )
        run.reach[i] = row
    _compress_logs(run, run_dir)  # runs made before logs were compressed
    run.save(run_dir if run_dir.is_dir() else run_dir.parent)
    return 0


def _point_id(point: Point) -> str:
    return PointSpec(
        variant=point.variant,
        scenario=point.scenario,
        load_model="closed",
        users=point.users,
        rate=None,
        repeat=0,
    ).point_id


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


class _MemoryWatch:
    """The machine's available memory, every second while a level runs (bounded by stop())."""

    def __init__(self, out: list[float]) -> None:
        import threading

        self.out = out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.out.append(psutil.virtual_memory().available / (1024 * 1024))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def _open_file_errors(logs: Path, variant: str, streams: int, point_id: str) -> int:
    """Lines naming EMFILE in this level's logs and in its raw records' error column.

    This level's logs only, by exact name: its session's (``<variant>-<streams>.server.log``, the mock's
    beside it) and its point's (``<point id>.locust*.log``), not the other variants' at the same level
    nor the 10,000-stream level's when reading the 1,000 one.
    """
    own = (f"{variant}-{streams}.", f"{point_id}.")
    count = 0
    raw = logs.parent / "raw" / f"{point_id}.csv.gz"
    if raw.exists():
        with gzip.open(raw, "rb") as handle:
            count += len(OPEN_FILES.findall(handle.read()))
    for path in [*logs.glob("*.log"), *logs.glob("*.log.gz")]:
        if not path.name.startswith(own):
            continue
        try:
            text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        count += len(OPEN_FILES.findall(text))
    return count


def _compress_logs(results: RunResults, run_dir: Path) -> None:
    """Compress the run's large logs and point its variants' log links at the compressed files."""
    for name in compress_large_logs(run_dir / "logs"):
        results.variants = [
            replace(v, log_file=f"logs/{name}") if v.log_file == f"logs/{name.removesuffix('.gz')}" else v
            for v in results.variants
        ]


def compress_large_logs(logs: Path, *, over_bytes: int = LARGE_LOG_BYTES) -> list[str]:
    """Gzip each log above the size in place (name.log -> name.log.gz), lossless: a shedding server
    logs one identical warning per refusal, 1.4 million lines (53 MB) at 10,000 streams."""
    done = []
    for path in sorted(logs.glob("*.log")):
        if path.stat().st_size > over_bytes:
            target = path.with_name(path.name + ".gz")
            with path.open("rb") as source, gzip.open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            path.unlink()
            done.append(target.name)
    return done


def _row(point: Point, facts: ReachFacts, procs: int, pool: int | None) -> dict[str, Any]:
    failure, detail, ok = first_failure(point, facts)
    loadgen = point.extra.get("loadgen_cpu_percent") or {}
    return {
        "variant": point.variant,
        "streams": facts.streams,
        "latency_s": facts.latency_s,
        "rate_rps": round(facts.streams / facts.latency_s, 2),
        "held": point.upstream_peak_in_flight or 0,
        "in_flight_mean": point.in_flight_mean,
        "completed": point.completed,
        "failed": point.failed,
        "failures_by_status": point.failures_by_status,
        "throughput_rps": point.throughput_rps,
        "ttft_p95_ms": point.ttft_ms.p95 if point.ttft_ms else None,
        "latency_p95_ms": point.latency_ms.p95 if point.latency_ms else None,
        "server_uss_mb": point.server_uss_mb,
        "server_rss_mb": point.server_rss_mb,
        "server_cpu_percent": point.cpu.server_percent if point.cpu else None,
        "mock_cpu_percent": point.cpu.mock_percent if point.cpu else None,
        "loadgen_max_percent": max(loadgen.values(), default=None),
        "machine_busy_percent": point.extra.get("machine_busy_percent"),
        "loadgen_processes": procs,
        "upstream_pool": pool,
        "valid": point.valid,
        "invalid_reasons": point.invalid_reasons,
        "first_failure": failure,
        "detail": detail,
        "ok": ok,
        "available_memory_min_mb": facts.available_memory_min_mb,
        "open_file_errors": facts.open_file_errors,
    }


def _skipped(variant: str, streams: int, big_l: float, why: str) -> dict[str, Any]:
    return {
        "variant": variant,
        "streams": streams,
        "latency_s": big_l,
        "held": 0,
        "completed": 0,
        "failed": 0,
        "first_failure": "not run",
        "detail": why,
        "ok": False,
    }
