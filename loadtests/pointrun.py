"""Measure one point: start Locust, wait out the warm-up, measure a window, stop Locust, build the Point.

Timeline of a point (wall clock, shared by every process on the machine):
  Locust starts -> first user starts (t0, from the processes' start markers) -> users' first requests
  spread over one upstream period -> warm-up ends (window start: the mock is reset and CPU is sampled)
  -> window end (CPU and the mock's stats sampled) -> Locust is stopped; requests still running are
  written as unfinished.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadtests import cpu as cpu_sampling
from loadtests.interrupts import deferred_interrupts
from loadtests.processes import LOOPBACK, ManagedProcess, ProcessStartError, free_port
from loadtests.rawdata import Window, cut_window, read_records, write_records
from loadtests.results import CpuUsage, Point
from loadtests.stats import nearest_rank, percentiles
from loadtests.validity import SERVER_BUSY, Evidence, findings, invalid_reasons, littles_law

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
# Scenarios whose every request makes exactly one upstream call while it is in flight: the mock's peak
# must then be min(users, ceiling). Jobs run in the background (their concurrency is the job runner's).
ONE_CALL_PER_REQUEST = frozenset({"analyse", "stream", "chat"})
MIN_COMPLETIONS = 30  # the window grows (in whole upstream periods) until about this many are expected
START_TIMEOUT_S = 60.0

TOKEN_ENV = "BENCH_LOADGEN_TOKEN"  # read by loadgen.py, a locustfile that cannot be imported here


class PointError(RuntimeError):
    """The load generator failed; the message names its log file."""


@dataclass(frozen=True, kw_only=True)
class PointSpec:
    variant: str
    scenario: str
    load_model: str  # "closed" | "open"
    users: int | None
    rate: float | None
    repeat: int

    @property
    def load(self) -> float:
        value = self.users if self.load_model == "closed" else self.rate
        assert value is not None
        return float(value)

    @property
    def key(self) -> tuple[str, str, str, float, int]:
        return (self.variant, self.scenario, self.load_model, self.load, self.repeat)

    @property
    def point_id(self) -> str:
        level = f"u{self.users}" if self.load_model == "closed" else f"r{self.rate:g}"
        return f"{self.variant}--{self.scenario}--{self.load_model}-{level}--{self.repeat}"

    def label(self) -> str:
        level = f"{self.users} users" if self.load_model == "closed" else f"{self.rate:g} rps"
        return f"{self.variant} {self.scenario} {level} #{self.repeat + 1}"


@dataclass(frozen=True, kw_only=True)
class Target:
    """What a point runs against: a started variant and its mock."""

    url: str
    mock_url: str
    server_pid: int
    mock_pid: int
    ceiling: int
    latency_s: float  # nominal upstream latency L for this mock (0 for the instant profile)
    token: str


@dataclass(frozen=True, kw_only=True)
class Timing:
    warmup_s: float
    duration_s: float


def plan_timing(
    spec: PointSpec, *, latency_s: float, ceiling: int, duration_s: float, warmup_s: float | None
) -> Timing:
    """Warm-up long enough for the queue to fill; a window of whole upstream periods.

    Closed loop at saturation, each request waits users/ceiling upstream periods, so the first requests
    after start-up are faster than steady state until the queue has cycled once: warm-up = one period for
    the start spread + max(1, users/ceiling) periods + a margin. A window of a whole number of periods
    makes every user (or every busy slot) contribute a whole number of completions, so the throughput has
    no boundary quantisation error.
    """
    period = max(latency_s, 0.0)
    if warmup_s is None:
        cycles = max(1.0, (spec.users or 1) / max(ceiling, 1)) if spec.load_model == "closed" else 2.0
        warmup_s = period + cycles * period + max(0.5, 0.25 * period)
    if period > 0:
        in_flight = min(spec.users or 1, ceiling) if spec.load_model == "closed" else None
        if in_flight is not None:
            duration_s = max(duration_s, MIN_COMPLETIONS * period / in_flight)
        duration_s = math.ceil(duration_s / period - 1e-9) * period
    return Timing(warmup_s=round(warmup_s, 3), duration_s=round(duration_s, 3))


def _locust_argv(
    spec: PointSpec,
    target: Target,
    *,
    raw_prefix: Path,
    role: str,
    processes: int,
    run_time_s: float,
    seed: int,
    master_port: int,
    max_in_flight: int,
) -> list[str]:
    argv = [sys.executable, "-m", "locust", "-f", str(SCENARIO_DIR / f"{spec.scenario}.py")]
    if role == "worker":
        return [
            *argv,
            "--worker",
            "--master-host",
            LOOPBACK,
            "--master-port",
            str(master_port),
            "--loglevel",
            "WARNING",
        ]
    users = spec.users if spec.load_model == "closed" else processes  # open loop: one scheduler each
    assert users is not None
    argv += [
        "--headless",
        "--host",
        target.url,
        "-u",
        str(users),
        "-r",
        str(max(users * 20, 1)),
        "-t",
        f"{math.ceil(run_time_s)}s",
        "--stop-timeout",
        "0",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--bench-raw",
        str(raw_prefix),
        "--bench-model",
        spec.load_model,
        "--bench-spread",
        f"{target.latency_s:.4f}",
        "--bench-seed",
        str(seed),
        "--bench-poll-interval",
        f"{max(0.02, target.latency_s / 10):.4f}",
        "--bench-max-in-flight",
        str(max_in_flight),
    ]
    if spec.load_model == "open":
        argv += ["--bench-rate", f"{(spec.rate or 0) / processes:.6f}"]
    if role == "master":
        argv += [
            "--master",
            "--master-bind-host",
            LOOPBACK,
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(processes),
        ]
    return argv


def _http_json(url: str, *, method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def _sleep_until(deadline: float, processes: Sequence[ManagedProcess]) -> None:
    while True:
        left = deadline - time.time()
        if left <= 0:
            return
        for proc in processes:
            if not proc.running():
                raise PointError(f"load generator {proc.name} exited early; see {proc.log_path}")
        time.sleep(min(left, 0.2))


def _stop_all(processes: Sequence[ManagedProcess]) -> None:
    # SIGTERM every load process at once (each flushes its records), then reap them; a Ctrl-C waits.
    with deferred_interrupts():
        for proc in processes:
            if proc.running():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes:
            proc.stop(timeout=15.0)


def run_point(
    spec: PointSpec,
    target: Target,
    timing: Timing,
    *,
    run_dir: Path,
    loadgen_processes: int,
    seed: int,
    max_in_flight: int,
    env: dict[str, str],
) -> Point:
    point_id = spec.point_id
    env = {**env, TOKEN_ENV: target.token}  # the environment, not argv: ps shows every process's argv
    work = run_dir / "tmp" / point_id
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.iterdir():
        stale.unlink()
    raw_prefix = work / "raw"
    run_time = timing.warmup_s + timing.duration_s + 60.0  # a safety net; the sweep stops Locust itself
    distributed = loadgen_processes > 1
    master_port = free_port() if distributed else 0
    common = dict(
        spec=spec,
        target=target,
        raw_prefix=raw_prefix,
        processes=loadgen_processes,
        run_time_s=run_time,
        seed=seed,
        master_port=master_port,
        max_in_flight=max_in_flight,
    )
    logs = run_dir / "logs"
    processes: list[ManagedProcess] = []
    if distributed:
        processes.append(
            ManagedProcess(
                f"{point_id} locust master",
                _locust_argv(role="master", **common),  # type: ignore[arg-type]
                log_path=logs / f"{point_id}.locust-master.log",
                env=env,
            )
        )
        for index in range(loadgen_processes):
            worker_env = {
                **env,
                "BENCH_LOADGEN_INDEX": str(index),
                "BENCH_LOADGEN_PROCS": str(loadgen_processes),
            }
            processes.append(
                ManagedProcess(
                    f"{point_id} locust worker {index}",
                    _locust_argv(role="worker", **common),  # type: ignore[arg-type]
                    log_path=logs / f"{point_id}.locust-worker{index}.log",
                    env=worker_env,
                )
            )
    else:
        processes.append(
            ManagedProcess(
                f"{point_id} locust",
                _locust_argv(role="local", **common),  # type: ignore[arg-type]
                log_path=logs / f"{point_id}.locust.log",
                env=env,
            )
        )
    try:
        for proc in processes:
            proc.start()
        expected_markers = loadgen_processes
        deadline = time.monotonic() + START_TIMEOUT_S
        markers: list[Path] = []
        while time.monotonic() < deadline:
            markers = sorted(work.glob("raw.*.start"))
            if len(markers) >= expected_markers:
                break
            for proc in processes:
                if not proc.running():
                    raise PointError(
                        f"load generator {proc.name} exited before starting; see {proc.log_path}"
                    )
            time.sleep(0.05)
        else:
            raise PointError(f"load generator did not start within {START_TIMEOUT_S:.0f} s; see {logs}")
        t0 = max(float(path.read_text()) for path in markers)

        _sleep_until(t0 + timing.warmup_s, processes)
        groups = {
            "loadgen": [proc.pid for proc in processes],
            "server": [target.server_pid],
            "mock": [target.mock_pid],
        }
        _http_json(f"{target.mock_url}/mock/reset", method="POST")
        window_start = time.time()
        cpu_before = cpu_sampling.snapshot(groups, trees=("server", "mock"))
        machine_before = cpu_sampling.machine_busy_seconds()
        _sleep_until(window_start + timing.duration_s, processes)
        window_end = time.time()
        cpu_after = cpu_sampling.snapshot(groups, trees=("server", "mock"))
        machine_s = cpu_sampling.machine_busy_seconds() - machine_before
        mock_stats = _http_json(f"{target.mock_url}/mock/stats")
    finally:
        _stop_all(processes)

    raw_files = sorted(work.glob("raw.*.csv"))
    records = read_records(raw_files)
    raw_rel = Path("raw") / f"{point_id}.csv.gz"
    write_records(records, run_dir / raw_rel)
    gc_pauses: list[dict[str, float]] = []
    for path in work.glob("raw.*.gc.json"):
        gc_pauses.extend(json.loads(path.read_text()))
    for path in work.iterdir():
        path.unlink()
    work.rmdir()

    window = cut_window(records, window_start, window_end)
    seconds = window_end - window_start
    per_process = cpu_sampling.per_process_percent(cpu_before, cpu_after, seconds)
    loadgen_named = {
        proc.name.removeprefix(f"{point_id} "): per_process["loadgen"].get(proc.pid, 0.0)
        for proc in processes
    }
    server_s = cpu_sampling.group_seconds(cpu_before, cpu_after, "server")
    mock_s = cpu_sampling.group_seconds(cpu_before, cpu_after, "mock")
    loadgen_s = cpu_sampling.group_seconds(cpu_before, cpu_after, "loadgen")
    # The sweep itself sleeps through the window; whatever else was busy is a neighbour's load.
    other_percent = max(0.0, machine_s - server_s - mock_s - loadgen_s) / seconds * 100.0
    return build_point(
        spec,
        target,
        timing,
        window=window,
        loadgen_cpu=loadgen_named,
        server_cpu_s=server_s,
        mock_cpu_s=mock_s,
        mock_stats=mock_stats,
        gc_pauses=[p for p in gc_pauses if window_start <= p["start"] < window_end],
        raw_file=str(raw_rel),
        loadgen_processes=loadgen_processes,
        other_cpu_percent=other_percent,
        machine_busy_percent=machine_s / seconds * 100.0,
        server_max_process_percent=max(per_process["server"].values(), default=None),
    )


def build_point(
    spec: PointSpec,
    target: Target,
    timing: Timing,
    *,
    window: Window,
    loadgen_cpu: dict[str, float],
    server_cpu_s: float,
    mock_cpu_s: float,
    mock_stats: dict[str, Any] | None,
    gc_pauses: Sequence[dict[str, float]],
    raw_file: str | None,
    loadgen_processes: int,
    other_cpu_percent: float | None = None,
    machine_busy_percent: float | None = None,
    server_max_process_percent: float | None = None,
) -> Point:
    """Everything after the window: pure, so it is tested without processes."""
    seconds = window.seconds
    throughput = window.completed / seconds if seconds > 0 else 0.0
    latency = percentiles(window.latencies_ms)
    finished = percentiles(window.finished_latencies_ms)
    ttft = percentiles(window.ttfts_ms)
    finished_rate = (window.completed + window.failed - window.dropped) / seconds if seconds > 0 else 0.0
    law = littles_law(
        load_model=spec.load_model,
        users=spec.users,
        rate=spec.rate,
        throughput_rps=finished_rate,
        mean_latency_ms=finished.mean if finished else None,
    )
    peak = int(mock_stats["peak_in_flight"]) if mock_stats else None
    expected_peak = None
    if spec.scenario in ONE_CALL_PER_REQUEST and spec.load_model == "closed" and target.latency_s > 0:
        expected_peak = min(spec.users or 0, target.ceiling)
    lag_p99 = nearest_rank(sorted(window.lags_ms), 99) if window.lags_ms else None
    evidence = Evidence(
        load_model=spec.load_model,
        users=spec.users,
        rate=spec.rate,
        completed=window.completed,
        loadgen_cpu_percent=loadgen_cpu,
        littles_law=law,
        upstream_peak=peak,
        expected_peak=expected_peak,
        dropped=window.dropped,
        lag_p99_ms=lag_p99,
        other_cpu_percent=other_cpu_percent,
        machine_busy_percent=machine_busy_percent,
        cpu_count=os.cpu_count() or 1,
        server_max_process_percent=server_max_process_percent,
    )
    reasons = invalid_reasons(evidence)
    extra: dict[str, Any] = {
        "window_start": round(window.start, 3),
        "loadgen_processes": loadgen_processes,
        "loadgen_cpu_percent": {k: round(v, 1) for k, v in loadgen_cpu.items()},
        "other_cpu_percent": None if other_cpu_percent is None else round(other_cpu_percent, 1),
        "machine_busy_percent": None if machine_busy_percent is None else round(machine_busy_percent, 1),
        "gc_pauses": {
            "count": len(gc_pauses),
            "total_ms": round(sum(p["ms"] for p in gc_pauses), 3),
            "max_ms": round(max((p["ms"] for p in gc_pauses), default=0.0), 3),
        },
        "findings": findings(evidence),
        # Structured twin of the CPU finding: the report must not read a CPU limit as a concurrency ceiling.
        "server_max_process_percent": (
            None if server_max_process_percent is None else round(server_max_process_percent, 1)
        ),
        "server_cpu_bound": server_max_process_percent is not None
        and server_max_process_percent > SERVER_BUSY,
        "throughput_span_rps": span_throughput(window.completion_times),
        "expected_throughput_rps": (
            round(min(spec.users or 0, target.ceiling) / target.latency_s, 3)
            if spec.load_model == "closed" and target.latency_s > 0
            else None
        ),
    }
    if mock_stats:
        extra["mock_by_status"] = mock_stats.get("by_status", {})
    if window.counts:
        counts = sorted(window.counts)
        key = {"stream": "chunks", "chat": "frames", "jobs": "polls"}.get(spec.scenario, "response_bytes")
        extra[f"{key}_per_request"] = {
            "mean": round(sum(counts) / len(counts), 2),
            "p50": nearest_rank(counts, 50),
            "max": counts[-1],
        }
    if window.lags_ms:
        extra["send_lag_ms"] = asdict(percentiles(window.lags_ms))  # type: ignore[arg-type]
    if spec.scenario == "jobs" and ttft is not None:
        extra["submit_ms"] = asdict(ttft)  # time to the 202, not a first token
        ttft = None
    completed = window.completed
    return Point(
        variant=spec.variant,
        scenario=spec.scenario,
        load_model=spec.load_model,  # type: ignore[arg-type]
        users=spec.users,
        rate=spec.rate,
        repeat=spec.repeat,
        warmup_s=timing.warmup_s,
        duration_s=round(seconds, 3),
        completed=completed,
        failed=window.failed,
        unfinished=window.unfinished,
        failures_by_status=window.failures_by_status,
        throughput_rps=round(throughput, 4),
        latency_ms=latency,
        ttft_ms=ttft,
        upstream_peak_in_flight=peak,
        upstream_requests=int(mock_stats["requests"]) if mock_stats else None,
        predicted_ceiling=target.ceiling,
        littles_law=law,
        server_cpu_ms_per_request=round(server_cpu_s * 1000.0 / completed, 3) if completed else None,
        cpu=CpuUsage(
            loadgen_percent=round(sum(loadgen_cpu.values()), 1),
            server_percent=round(server_cpu_s / seconds * 100.0, 1) if seconds > 0 else 0.0,
            mock_percent=round(mock_cpu_s / seconds * 100.0, 1) if seconds > 0 else 0.0,
        ),
        valid=not reasons,
        invalid_reasons=reasons,
        extra=extra,
        raw_file=raw_file,
    )


def span_throughput(completion_times: Sequence[float]) -> float | None:
    """(n - 1) / (last - first completion): a cross-check free of the window's boundary effects."""
    if len(completion_times) < 3:
        return None
    ordered = sorted(completion_times)
    span = ordered[-1] - ordered[0]
    return round((len(ordered) - 1) / span, 4) if span > 0 else None


MEASUREMENT_FAILED = "measurement_failed"


def failed_point(spec: PointSpec, target: Target, timing: Timing, reason: str) -> Point:
    """A point whose measurement broke (the load generator died): kept, invalid, with the reason."""
    return Point(
        variant=spec.variant,
        scenario=spec.scenario,
        load_model=spec.load_model,  # type: ignore[arg-type]
        users=spec.users,
        rate=spec.rate,
        repeat=spec.repeat,
        warmup_s=timing.warmup_s,
        duration_s=timing.duration_s,
        completed=0,
        failed=0,
        unfinished=0,
        failures_by_status={},
        throughput_rps=0.0,
        latency_ms=None,
        ttft_ms=None,
        upstream_peak_in_flight=None,
        upstream_requests=None,
        predicted_ceiling=target.ceiling,
        littles_law=None,
        server_cpu_ms_per_request=None,
        cpu=None,
        valid=False,
        invalid_reasons=[reason],
        extra={MEASUREMENT_FAILED: True},  # --resume measures it again
    )


__all__ = ["PointError", "PointSpec", "ProcessStartError", "Target", "Timing", "plan_timing", "run_point"]
