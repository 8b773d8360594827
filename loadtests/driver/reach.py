"""Reach, the measuring part: one (variant, level) at a time on a fresh mock and server, each a closed-loop
``stream`` point with an upstream latency L long enough that the request rate N / L stays within this
machine's CPU, and the row that says what it held and what failed first.

Users start spread over one L (as in every sweep point), so all N streams are open from then on; the
warm-up is fixed at that L plus a margin, and the window that follows lasts ``window_s`` seconds: at N
streams it still holds thousands of completions, and a window of whole periods would make a 10,000-stream
point last 2 L. The servers' upstream deadline and per-attempt timeout are raised with L (3 L and 2 L), or
a 60 s stream would time out by design.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import resource
import shutil
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from loadtests.analysis.reach import ReachFacts, reach_row
from loadtests.driver.options import known_variants
from loadtests.driver.pointbuild import failed_point
from loadtests.driver.pointrun import run_point
from loadtests.driver.pointspec import PointSpec, Timing
from loadtests.driver.rundir import Run
from loadtests.driver.schedule import Group
from loadtests.driver.session import VariantSession
from loadtests.errors import UserError
from loadtests.presets import PRESETS, SweepSettings
from loadtests.results import Point, RunResults, load_results

ARTICLE_S = 2.0  # the article profile's call, before the time scale
STREAMS_PER_LOADGEN = 5_000  # Locust workers: one per this many users (sockets and CPU per process)
WARMUP_MARGIN_S = 5.0
START_OVERHEAD_S = 25.0  # a fresh mock and server, verification, Locust start and stop (for the plan)
OPEN_FILES = re.compile(rb"too many open files|EMFILE", re.IGNORECASE)
LARGE_LOG_BYTES = 1_000_000  # logs above this are gzipped after their level (see compress_large_logs)


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


@dataclass(frozen=True, kw_only=True)
class ReachLevel:
    """One (variant, level) of the plan."""

    variant: str
    streams: int
    latency_s: float  # L
    window_s: float
    loadgen_processes: int

    @property
    def expected_s(self) -> float:
        return level_seconds(self.latency_s, self.window_s)


@dataclass(frozen=True, kw_only=True)
class ReachOptions:
    """What every level of a reach run shares."""

    seed: int
    upstream_pool: int | None  # the servers' SDK connection pool (None: the SDK's own)
    max_tokens: int | None  # the servers' BENCH_MAX_TOKENS (None: the servers' own)


def plan_levels(
    variants: tuple[str, ...],
    streams: tuple[int, ...],
    *,
    min_latency_s: float,
    max_rate: float,
    window_s: float | None,
    loadgen_processes: int | None,
) -> list[ReachLevel]:
    """Level by level, not variant by variant: when the budget runs out, what is left unmeasured is the
    largest levels of the last variants, and every variant has its smaller levels."""
    plan = []
    for n in streams:
        for variant in variants:
            big_l = level_latency_s(n, min_latency_s=min_latency_s, max_rate=max_rate)
            plan.append(
                ReachLevel(
                    variant=variant,
                    streams=n,
                    latency_s=big_l,
                    window_s=level_window_s(big_l, window_s),
                    loadgen_processes=loadgen_processes or max(1, math.ceil(n / STREAMS_PER_LOADGEN)),
                )
            )
    return plan


def _level_settings(level: ReachLevel, options: ReachOptions) -> tuple[SweepSettings, Group]:
    settings = replace(
        PRESETS["default"],
        variants=(level.variant,),
        scenarios=("stream",),
        users=(level.streams,),
        rates=(),
        time_scale=level.latency_s / ARTICLE_S,
        loadgen_processes=level.loadgen_processes,
        seed=options.seed,
    )
    server_env = {
        "BENCH_UPSTREAM_DEADLINE_S": f"{3 * level.latency_s:g}",
        "BENCH_UPSTREAM_TIMEOUT_S": f"{2 * level.latency_s:g}",
    }
    if options.upstream_pool is not None:
        server_env["BENCH_UPSTREAM_MAX_CONNECTIONS"] = str(options.upstream_pool)
    if options.max_tokens:
        server_env["BENCH_MAX_TOKENS"] = str(options.max_tokens)
    group = Group(
        variant=level.variant, mock_profile="article", server_env=server_env, label=f"{level.streams}"
    )
    return settings, group


def run_level(run: Run, level: ReachLevel, options: ReachOptions) -> dict[str, Any]:
    """One level: a fresh mock and server, one closed-loop stream point, its row saved (and returned)."""
    settings, group = _level_settings(level, options)
    measured: list[Point] = []
    low_memory: list[float] = []

    def measure(group: Group, session: VariantSession) -> None:
        # Health only: the contract check waits whole upstream calls (minutes at this L); the sweep and
        # the tests verify the same code, and every completed stream here is checked.
        watcher = MemoryWatch(low_memory)
        watcher.start()
        try:
            measured.append(_stream_point(run, session, level, settings))
        finally:
            watcher.stop()

    def failed(group: Group, exc: Exception) -> None:
        reason = run.strip_paths(str(exc))
        print(f"  {level.variant} {level.streams:,}: did not start: {reason}", flush=True)
        run.results.reach.append(skipped(level, f"did not start: {reason}"))

    run.each_session([group], settings, measure, verify=lambda _: None, on_failed=failed)
    if measured:
        _record_level(run, level, options, measured[0], low_memory)
    run.save()
    return run.results.reach[-1]


def _stream_point(run: Run, session: VariantSession, level: ReachLevel, settings: SweepSettings) -> Point:
    spec = PointSpec(
        variant=level.variant,
        scenario="stream",
        load_model="closed",
        users=level.streams,
        rate=None,
        repeat=0,
    )
    timing = Timing(
        warmup_s=level.latency_s + WARMUP_MARGIN_S,
        duration_s=level.window_s,
        max_warmup_s=level.latency_s + WARMUP_MARGIN_S,
        latency_s=level.window_s,  # the window's unit: one window, not whole periods of L (see above)
    )
    target = session.target(
        ceiling=known_variants()[level.variant].predicted_ceiling,
        latency_s=level.latency_s,
        scenario="stream",
    )
    try:
        return run_point(
            spec, target, timing, run_dir=run.run_dir, loadgen_processes=level.loadgen_processes,
            seed=settings.seed, max_in_flight=settings.max_in_flight, env=dict(os.environ),
        )  # fmt: skip
    except (OSError, RuntimeError) as exc:
        return failed_point(spec, target, timing, run.strip_paths(str(exc)))


def _record_level(
    run: Run, level: ReachLevel, options: ReachOptions, point: Point, low_memory: list[float]
) -> None:
    point.extra["reach_latency_s"] = level.latency_s
    run.results.points.append(point)
    facts = ReachFacts(
        streams=level.streams,
        latency_s=level.latency_s,
        open_file_errors=open_file_errors(
            run.run_dir / "logs", level.variant, level.streams, point_id(point)
        ),
        available_memory_min_mb=min(low_memory) if low_memory else None,
        memory_total_mb=run.results.metadata.get("memory_total_mb"),
        cpu_count=run.results.metadata.get("cpu_count"),
    )
    compress_logs(run.results, run.run_dir)  # after the level's open-file count read them
    row = reach_row(point, facts, level.loadgen_processes, options.upstream_pool)
    row["max_tokens"] = options.max_tokens
    run.results.reach.append(row)
    print(
        f"  {level.variant} {level.streams:,}: held {row['held']:,}, {row['completed']:,} completed, "
        f"{row['failed']:,} failed, first failure: {row['first_failure']} ({row['detail']})",
        flush=True,
    )


def reclassify(run_dir: Path) -> list[str]:
    """Rows again from the stored points (what failed first is a pure reading of the evidence), saved;
    returns a line per row whose first failure changed."""
    changed = []
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
            open_file_errors=open_file_errors(
                run_dir / "logs", point.variant, int(old["streams"]), point_id(point)
            ),
            available_memory_min_mb=old.get("available_memory_min_mb"),
            memory_total_mb=run.metadata.get("memory_total_mb"),
            cpu_count=run.metadata.get("cpu_count"),
        )
        row = reach_row(point, facts, int(old.get("loadgen_processes") or 1), pool)
        row["max_tokens"] = old.get("max_tokens")
        if (row["first_failure"], row["detail"]) != (old.get("first_failure"), old.get("detail")):
            changed.append(
                f"{row['variant']} {row['streams']:,}: {old.get('first_failure')} -> {row['first_failure']}"
            )
        run.reach[i] = row
    compress_logs(run, run_dir)  # runs made before logs were compressed
    run.save(run_dir if run_dir.is_dir() else run_dir.parent)
    return changed


def point_id(point: Point) -> str:
    return PointSpec(
        variant=point.variant,
        scenario=point.scenario,
        load_model="closed",
        users=point.users,
        rate=None,
        repeat=0,
    ).point_id


class MemoryWatch:
    """The machine's available memory, every second while a level runs (bounded by stop())."""

    def __init__(self, out: list[float]) -> None:
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


def open_file_errors(logs: Path, variant: str, streams: int, point_id: str) -> int:
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


def compress_logs(results: RunResults, run_dir: Path) -> None:
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


def skipped(level: ReachLevel, why: str) -> dict[str, Any]:
    """The row of a level that was not measured, and why."""
    return {
        "variant": level.variant,
        "streams": level.streams,
        "latency_s": level.latency_s,
        "held": 0,
        "completed": 0,
        "failed": 0,
        "first_failure": "not run",
        "detail": why,
        "ok": False,
    }
