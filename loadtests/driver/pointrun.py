"""Measure one point: start Locust, wait out the warm-up, measure a window, stop Locust, build the Point.

Timeline of a point (wall clock, shared by every process on the machine):
  Locust starts -> first user starts (t0, from the processes' start markers) -> users' first requests spread
  over one upstream period -> warm-up ends when the data say the load has settled
  (``loadtests.analysis.steady``: completions per second, their latency and the mock's in-flight gauge,
  watched while the load runs), or at its bound -> window start (the mock is reset and CPU is sampled) ->
  window end, sized from the completion rate measured at the end of the warm-up (CPU, the mock's stats and
  its per-call records sampled) -> Locust is stopped; requests still running are written as unfinished.
No predicted ceiling sizes or judges anything here: the registry's prediction only travels with the point
so charts can draw it beside the measurement.
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

from loadtests.analysis import steady
from loadtests.analysis.breakdown import JOINABLE, join
from loadtests.analysis.rawdata import Window, cut_window, read_records, write_records
from loadtests.analysis.stats import nearest_rank, percentiles
from loadtests.analysis.validity import SERVER_BUSY, Evidence, findings, invalid_reasons, littles_law
from loadtests.driver import cpu as cpu_sampling
from loadtests.driver.interrupts import deferred_interrupts
from loadtests.driver.memory import MemorySampler, MemoryWindow
from loadtests.driver.processes import LOOPBACK, ManagedProcess, ProcessStartError, free_port
from loadtests.results import CpuUsage, Point

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
# Scenarios whose every request makes exactly one upstream call while it is in flight: the mock's peak
# must then be min(users, ceiling). Jobs run in the background (their concurrency is the job runner's).
ONE_CALL_PER_REQUEST = frozenset({"analyse", "stream", "chat"})
MIN_COMPLETIONS = 30  # the window grows (in whole upstream periods) until about this many are expected
MAX_WINDOW_S = 120.0  # ... but no longer than this (or the requested duration, if longer)
START_TIMEOUT_S = 60.0
GAUGE_INTERVAL_S = 0.2  # the mock's in-flight gauge is polled this often during warm-up and window
CALLS_LOOKBACK_S = 30.0
FLUSH_LAG_S = 0.6  # the load processes write their records every 0.25 s: newer bins may be incomplete

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
    ceiling: int  # predicted; 0 when nothing is (your own app's target without a ceiling)
    latency_s: float  # nominal upstream latency L for this mock (0 for the instant profile)
    token: str
    request: dict[str, Any] | None = None  # your own app's rendered request (loadtests/scenarios/target.py)


@dataclass(frozen=True, kw_only=True)
class Timing:
    """How a point is timed. ``warmup_s`` None: detected from the data, within ``max_warmup_s``."""

    warmup_s: float | None
    duration_s: float  # the window, at least (it grows to MIN_COMPLETIONS at the measured rate)
    max_warmup_s: float
    latency_s: float  # the mock's nominal L: the unit of the start spread and of whole-period windows

    @property
    def bin_s(self) -> float:
        """Half an upstream period: short enough to see a change within a few periods, long enough
        that a bin at low load still holds a completion or so."""
        return max(0.25, self.latency_s / 2)

    @property
    def min_warmup_s(self) -> float:
        """The start spread (one period), then a full trend window of bins."""
        return self.latency_s + steady.MIN_BINS * self.bin_s + FLUSH_LAG_S


def default_max_warmup_s(latency_s: float) -> float:
    # Long enough for a queue of 128 upstream periods to cycle once (fastapi-blocking at 128 users).
    return max(60.0, 150.0 * latency_s)


def plan_timing(
    *, latency_s: float, duration_s: float, warmup_s: float | None, max_warmup_s: float | None = None
) -> Timing:
    return Timing(
        warmup_s=warmup_s,
        duration_s=duration_s,
        max_warmup_s=max_warmup_s if max_warmup_s is not None else default_max_warmup_s(latency_s),
        latency_s=max(latency_s, 0.0),
    )


def window_seconds(timing: Timing, rate_rps: float | None) -> float:
    """At least the requested duration and MIN_COMPLETIONS at the measured completion rate (capped), in
    whole upstream periods: every user (or busy slot) then contributes a whole number of completions, so
    the throughput has no boundary quantisation error."""
    duration = timing.duration_s
    if rate_rps is not None and rate_rps > 0:
        duration = max(duration, min(MIN_COMPLETIONS / rate_rps, max(MAX_WINDOW_S, timing.duration_s)))
    period = timing.latency_s
    if period > 0:
        duration = math.ceil(duration / period - 1e-9) * period
    return round(duration, 3)


def guess_seconds(spec: PointSpec, timing: Timing, *, ceiling: int) -> float:
    """A first guess of warm-up plus window, for the ETA only (a prediction may seed a guess, never decide):
    at saturation each request waits users/ceiling periods before the queue has cycled once."""
    period = timing.latency_s
    if timing.warmup_s is not None:
        warmup = timing.warmup_s
    else:
        cycles = max(1.0, (spec.users or 1) / max(ceiling, 1)) if spec.load_model == "closed" else 1.0
        warmup = min(timing.max_warmup_s, timing.min_warmup_s + cycles * period)
    in_flight = min(spec.users or 1, ceiling) if spec.load_model == "closed" else None
    rate = in_flight / period if in_flight and period > 0 else spec.rate
    return warmup + window_seconds(timing, rate)


@dataclass(frozen=True, kw_only=True)
class RemoteWorkers:
    """Locust workers on other hosts that join each point's master (``count`` 0: none). They must see
    the run directory at the same path (a shared filesystem): their records are written there."""

    count: int = 0
    bind: str = LOOPBACK  # the master's listening address
    port: int = 5557

    def worker_command(self, total: int) -> str:
        """What to run on each other host, again after every point (a worker leaves with its master)."""
        return (
            f"BENCH_LOADGEN_TOKEN=<the first of BENCH_API_TOKENS> BENCH_LOADGEN_PROCS={total} "
            f"locust -f - --worker --master-host {self.bind} --master-port {self.port}"
        )


def _locust_argv(
    spec: PointSpec,
    target: Target,
    *,
    raw_prefix: Path,
    role: str,
    processes: int,
    run_time_s: float,
    seed: int,
    master_host: str,
    master_port: int,
    max_in_flight: int,
) -> list[str]:
    locustfile = "target.py" if target.request is not None else f"{spec.scenario}.py"
    argv = [sys.executable, "-m", "locust", "-f", str(SCENARIO_DIR / locustfile)]
    if role == "worker":
        return [
            *argv,
            "--worker",
            "--master-host",
            master_host,
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
            master_host,
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(processes),
        ]
    return argv


def _http_json(url: str, *, method: str = "GET", timeout: float = 10.0) -> dict[str, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return dict(json.loads(response.read()))


def _check_running(processes: Sequence[ManagedProcess]) -> None:
    for proc in processes:
        if not proc.running():
            raise PointError(f"load generator {proc.name} exited early; see {proc.log_path}")


def _stop_all(processes: Sequence[ManagedProcess]) -> None:
    # SIGTERM every load process at once (each flushes its records), then reap them; a Ctrl-C waits.
    with deferred_interrupts():
        for proc in processes:
            if proc.running():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes:
            proc.stop(timeout=15.0)


class Watcher:
    """Follows a running point: the mock's gauge (polled) and the completions the load processes have
    written so far (their raw files, read incrementally), binned into a :class:`steady.Series`."""

    def __init__(self, work: Path, mock_url: str, series: steady.Series) -> None:
        self.work = work
        self.mock_url = mock_url
        self.series = series
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, bytes] = {}
        self.gauge_errors = 0
        self.gauge_samples: list[tuple[float, float]] = []  # (wall time, in flight), for the window's mean

    def poll_gauge(self) -> None:
        try:
            gauge = _http_json(f"{self.mock_url}/mock/gauge", timeout=2.0)
        except (OSError, ValueError):
            self.gauge_errors += 1
            return
        now = time.time()
        self.series.add_gauge(now, float(gauge["in_flight"]))
        self.gauge_samples.append((now, float(gauge["in_flight"])))

    def read_new(self) -> None:
        for path in self.work.glob("raw.*.csv"):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
            self._offsets[path] = offset + len(data)
            data = self._partial.pop(path, b"") + data
            lines = data.split(b"\n")
            if lines[-1]:
                self._partial[path] = lines[-1]
            for line in lines[:-1]:
                fields = line.split(b",", 3)
                if len(fields) < 3 or not fields[1] or fields[0] == b"start":
                    continue
                start, latency_ms = float(fields[0]), float(fields[1])
                self.series.add_completion(start + latency_ms / 1000.0, latency_ms)

    def wait(self, until: float, processes: Sequence[ManagedProcess]) -> None:
        """Poll the gauge until the wall clock reaches ``until``, checking the load processes."""
        while True:
            now = time.time()
            if now >= until:
                return
            _check_running(processes)
            self.poll_gauge()
            time.sleep(max(0.0, min(GAUGE_INTERVAL_S, until - time.time())))


@dataclass(kw_only=True)
class WarmupOutcome:
    warmup_s: float
    settled: bool
    trends: dict[str, steady.Trend | None]
    rate_rps: float | None  # completions/s over the last trend window
    abandoned: str | None = None  # why the point was cut short (the SLO already broken while rising)


def _trend_window(series: steady.Series, now: float) -> tuple[int, int]:
    hi = series.bin_of(now - FLUSH_LAG_S)  # bins before this one are complete
    return max(0, hi - steady.MIN_BINS), hi


RATE_DEFICIT_SD = 4.0  # completions this many Poisson SDs below the arrivals: the rate is not sustained


def _rate_not_sustained(series: steady.Series, hi: int, *, first: int, offered: float | None) -> str | None:
    """Why an open-loop point cannot be sustained, or None: completions since the first upstream period
    fell more than RATE_DEFICIT_SD Poisson SDs below the arrivals offered over the same time."""
    if offered is None or hi - first < 2 * steady.MIN_BINS:
        return None
    seconds = (hi - first) * series.bin_s
    seen = sum(series.completions[first:hi])
    expected = offered * seconds
    if seen >= expected - RATE_DEFICIT_SD * math.sqrt(expected):
        return None
    return (
        f"the offered rate was not sustained: {seen / seconds:.2f} completions/s over {seconds:.1f} s "
        f"against {offered:g} arrivals/s offered (more than {RATE_DEFICIT_SD:g} SDs short)"
    )


def detect_warmup(
    watcher: Watcher,
    timing: Timing,
    processes: Sequence[ManagedProcess],
    *,
    slo_latency_ms: float | None,
    offered_rps: float | None = None,
    users: int | None = None,
) -> WarmupOutcome:
    """Wait until completions, latency and the gauge have settled (or the bound): analysis.steady.

    Open loop (``offered_rps``): a variant that completes fewer requests than the arrivals allow is cut
    short, since it cannot reach a steady state: a queue inside the server (fastapi-blocking's blocked
    loop) leaves the mock's gauge and even the latency trend flat for a while.
    """
    series = watcher.series
    t0 = series.t0
    next_bin = t0 + timing.bin_s
    while True:
        watcher.wait(min(next_bin, t0 + timing.max_warmup_s), processes)
        now = time.time()
        next_bin = max(next_bin + timing.bin_s, now)
        if now - t0 < timing.min_warmup_s and now - t0 < timing.max_warmup_s:
            continue
        watcher.read_new()
        lo, hi = _trend_window(series, now)
        first = series.bin_of(t0 + timing.latency_s)
        if users:
            # Closed loop: until as many requests have completed as there are users, the completions seen
            # are the first requests of the users who waited least (fastapi-blocking at 16 users looked
            # flat at 13 s, its first cycle taking 16), so no trend window may start before that.
            cycled = series.bin_reaching(users)
            first = max(first, cycled if cycled is not None else hi + 1)
        settled, trends = series.settled_trends(hi, first=first)
        rates = [r for r in series.rates(lo, hi) if r is not None]
        rate = sum(rates) / len(rates) if rates else None
        short = _rate_not_sustained(
            series, hi, first=series.bin_of(t0 + timing.latency_s), offered=offered_rps
        )
        if short is not None:
            return WarmupOutcome(
                warmup_s=now - t0, settled=False, trends=trends, rate_rps=rate, abandoned=short
            )
        if settled:
            return WarmupOutcome(warmup_s=now - t0, settled=True, trends=trends, rate_rps=rate)
        latency = trends["latency_ms"]
        if (
            slo_latency_ms is not None
            and latency is not None
            and latency.mean > slo_latency_ms
            and latency.drift >= 0
        ):
            # Latency only climbs while a queue fills: already above the SLO and rising, it cannot pass.
            return WarmupOutcome(
                warmup_s=now - t0,
                settled=False,
                trends=trends,
                rate_rps=rate,
                abandoned=(
                    f"latency past its limit before steady state: mean {latency.mean:.0f} ms over the last "
                    f"{latency.bins} bins, above {slo_latency_ms:.0f} ms and still rising"
                ),
            )
        if now - t0 >= timing.max_warmup_s:
            return WarmupOutcome(warmup_s=now - t0, settled=False, trends=trends, rate_rps=rate)


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
    slo_latency_ms: float | None = None,
    remote: RemoteWorkers | None = None,
) -> Point:
    point_id = spec.point_id
    remote = remote or RemoteWorkers()
    env = {**env, TOKEN_ENV: target.token}  # the environment, not argv: ps shows every process's argv
    if target.request is not None:
        env["BENCH_TARGET_REQUEST"] = json.dumps(target.request)
        env["BENCH_TARGET_SCENARIO"] = spec.scenario
    work = run_dir / "tmp" / point_id
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.iterdir():
        stale.unlink()
    raw_prefix = work / "raw"
    longest_window = max(MAX_WINDOW_S, timing.duration_s) + timing.latency_s
    warmup_bound = timing.warmup_s if timing.warmup_s is not None else timing.max_warmup_s
    run_time = warmup_bound + longest_window + 60.0  # a safety net; the sweep stops Locust itself
    # Remote workers count as load processes everywhere (the users and the open-loop rate are split
    # over all of them), but only the local ones are started, sampled for CPU and stopped here.
    total_processes = loadgen_processes + remote.count
    distributed = total_processes > 1
    if remote.count:
        master_host, master_port = remote.bind, remote.port
    else:
        master_host, master_port = LOOPBACK, (free_port() if distributed else 0)
    common = dict(
        spec=spec,
        target=target,
        raw_prefix=raw_prefix,
        processes=total_processes,
        run_time_s=run_time,
        seed=seed,
        master_host=master_host,
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
            # Each worker's index is Locust's own worker_index (loadgen.proc_index), given by the master.
            worker_env = {**env, "BENCH_LOADGEN_PROCS": str(total_processes)}
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
    calls: list[list[Any]] = []
    try:
        for proc in processes:
            proc.start()
        # Remote workers write theirs to the shared run directory; a process given no user (1 user on 2
        # processes) never starts a recorder, so it writes none.
        expected_markers = min(total_processes, spec.users) if spec.users else total_processes
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

        series = steady.Series(t0=t0, bin_s=timing.bin_s, open_loop=spec.load_model == "open")
        watcher = Watcher(work, target.mock_url, series)
        if timing.warmup_s is not None:  # fixed by the user: the test still runs, on the window
            watcher.wait(t0 + timing.warmup_s, processes)
            watcher.read_new()
            lo, hi = _trend_window(series, time.time())
            rates = series.rates(lo, hi)
            warm = WarmupOutcome(
                warmup_s=timing.warmup_s,
                settled=steady.all_settled(series.trends(lo, hi)),
                trends=series.trends(lo, hi),
                rate_rps=sum(r or 0.0 for r in rates) / len(rates) if rates else None,
            )
        else:
            warm = detect_warmup(
                watcher,
                timing,
                processes,
                slo_latency_ms=slo_latency_ms,
                offered_rps=spec.rate if spec.load_model == "open" else None,
                users=spec.users if spec.load_model == "closed" else None,
            )
        duration = timing.latency_s if warm.abandoned else window_seconds(timing, warm.rate_rps)
        groups = {
            "loadgen": [proc.pid for proc in processes],
            "server": [target.server_pid],
            "mock": [target.mock_pid],
        }
        _http_json(f"{target.mock_url}/mock/reset", method="POST")
        window_start = time.time()
        window_start_mono = time.monotonic()
        cpu_before = cpu_sampling.snapshot(groups, trees=("server", "mock"))
        machine_before = cpu_sampling.machine_busy_seconds()
        sampler = MemorySampler(root_pid=target.server_pid).start()
        try:
            watcher.wait(window_start + duration, processes)
        finally:
            memory = sampler.stop()
        window_end = time.time()
        cpu_after = cpu_sampling.snapshot(groups, trees=("server", "mock"))
        machine_s = cpu_sampling.machine_busy_seconds() - machine_before
        mock_stats = _http_json(f"{target.mock_url}/mock/stats")
        if spec.scenario in JOINABLE:
            # Calls that ended up to CALLS_LOOKBACK_S before the window: a request that completes just
            # inside it made its call earlier.
            since = window_start_mono - CALLS_LOOKBACK_S
            answer = _http_json(f"{target.mock_url}/mock/calls?since={since:.6f}", timeout=30.0)
            calls = list(answer.get("calls", []))
    finally:
        _stop_all(processes)
    watcher.read_new()  # the rest of the window's completions, for the window's own trend test

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
    # The sweep itself sleeps through the window (but for its memory sampler, whose CPU is measured);
    # whatever else was busy is a neighbour's load.
    own_s = memory.sampler_cpu_s if memory is not None else 0.0
    other_percent = max(0.0, machine_s - server_s - mock_s - loadgen_s - own_s) / seconds * 100.0
    steady_state = steady_record(
        timing,
        warm,
        series,
        window_start=window_start,
        window_end=window_end,
        gauge_errors=watcher.gauge_errors,
    )
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
        steady_state=steady_state,
        calls=calls if spec.scenario in JOINABLE else None,
        memory=memory,
        in_flight_mean=mean_in_flight(watcher.gauge_samples, window_start, window_end),
    )


def mean_in_flight(samples: Sequence[tuple[float, float]], start: float, end: float) -> float | None:
    """The mock's gauge averaged over the polls inside the window (polled every GAUGE_INTERVAL_S)."""
    inside = [value for t, value in samples if start <= t <= end]
    return round(sum(inside) / len(inside), 2) if inside else None


def steady_record(
    timing: Timing,
    warm: WarmupOutcome,
    series: steady.Series,
    *,
    window_start: float,
    window_end: float,
    gauge_errors: int,
) -> dict[str, Any]:
    """What ended the warm-up, with the test's figures, and the same test over the window itself."""
    lo = series.bin_of(window_start) + 1  # whole bins inside the window
    hi = series.bin_of(window_end)
    window_trends = series.trends(lo, hi) if hi - lo >= 4 else {}
    # The window's own check: its latency must not trend (a queue still filling or draining). Open loop
    # has its own rule for that (the backlog, in loadtests.analysis.validity); completions and the gauge are
    # noisier and only recorded.
    latency_trend = window_trends.get("latency_ms")
    window_ok = None if latency_trend is None or series.open_loop else latency_trend.settled
    rates = [r or 0.0 for r in series.rates(0, hi)]
    truncation = steady.mser5(rates)
    return {
        "test": "rolling-window trend (OLS drift within 10% of the mean + 2 SE), per bin",
        "detected": timing.warmup_s is None,
        "warmup_s": round(warm.warmup_s, 3),
        "bound_s": timing.max_warmup_s if timing.warmup_s is None else None,
        "settled": warm.settled,
        "abandoned": warm.abandoned,
        "bin_s": timing.bin_s,
        "warmup_figures": steady.figures(warm.trends),
        "window_settled": window_ok,
        "window_figures": steady.figures(window_trends) if window_trends else None,
        "mser5_truncation_s": None if truncation is None else round(truncation * timing.bin_s, 3),
        "gauge_poll_errors": gauge_errors,
    }


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
    steady_state: dict[str, Any] | None = None,
    calls: Sequence[Sequence[Any]] | None = None,
    memory: MemoryWindow | None = None,
    in_flight_mean: float | None = None,
) -> Point:
    """Everything after the window: pure, so it is tested without processes."""
    seconds = window.seconds
    # Successful completions per second. Closed loop: from the interpolated counting curve (saturated
    # workers finish in phase-locked clusters that quantise a count; see rawdata.smooth_count). Open
    # loop: the plain count, the unbiased estimate for completions that follow Poisson arrivals (a slope
    # through a few dozen of them scatters more: 2.75 against a count of 2.65 at 2 rps was seen).
    # Both are kept in extra.
    completed = window.completed_smooth if spec.load_model == "closed" else float(window.completed)
    throughput = completed / seconds if seconds > 0 else 0.0
    latency = percentiles(window.latencies_ms)
    finished = percentiles(window.finished_latencies_ms)
    ttft = percentiles(window.ttfts_ms)
    finished_rate = throughput + (window.failed - window.dropped) / seconds if seconds > 0 else 0.0
    arrival_rate = window.arrivals / seconds if seconds > 0 else 0.0
    law = littles_law(
        load_model=spec.load_model,
        users=spec.users,
        rate=arrival_rate,  # open loop: the arrivals that happened, not the nominal rate
        throughput_rps=finished_rate,
        mean_latency_ms=finished.mean if finished else None,
    )
    measured_l = _measured_latency_s(mock_stats)
    breakdown, overhead = (None, None)
    if calls is not None:
        breakdown, overhead = join(window.joined, calls)
    peak = int(mock_stats["peak_in_flight"]) if mock_stats else None
    expected_peak = None
    predicted = target.ceiling > 0
    if (
        spec.scenario in ONE_CALL_PER_REQUEST
        and spec.load_model == "closed"
        and target.latency_s > 0
        and predicted
    ):
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
        arrivals=window.arrivals,
        backlog_growth=window.backlog_end - window.backlog_start,
        mean_latency_s=finished.mean / 1000.0 if finished else None,
        window_s=seconds,
        hung=window.hung,
        mock_late_p99_ms=_mock_late_p99_ms(mock_stats),
        upstream_latency_s=measured_l if measured_l is not None else target.latency_s,
        steady_state=steady_state,
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
        "throughput_count_rps": round(window.completed / seconds, 4) if seconds > 0 else 0.0,
        "throughput_smooth_rps": round(window.completed_smooth / seconds, 4) if seconds > 0 else 0.0,
        "expected_throughput_rps": (
            round(min(spec.users or 0, target.ceiling) / (measured_l or target.latency_s), 3)
            if spec.load_model == "closed" and (measured_l or target.latency_s) > 0 and predicted
            else None
        ),
        "arrival_rate_rps": round(arrival_rate, 4),
        "backlog": {"start": window.backlog_start, "end": window.backlog_end},
        "oldest_open_s": round(window.oldest_open_s, 3),
    }
    if mock_stats and "delay_error_ms" in mock_stats:
        extra["mock_delay_error_ms"] = mock_stats["delay_error_ms"]
    if mock_stats:
        extra["mock_by_status"] = mock_stats.get("by_status", {})
    if memory is not None:
        extra["memory"] = memory.to_extra()
    if window.counts:
        counts = sorted(window.counts)
        key = {"chat": "frames", "jobs": "polls"}.get(spec.scenario, "response_bytes")
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
        warmup_s=float(steady_state["warmup_s"]) if steady_state else float(timing.warmup_s or 0.0),
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
        steady_state=steady_state,
        upstream_latency_s=None if measured_l is None else round(measured_l, 6),
        hung=window.hung,
        breakdown_ms=breakdown,
        overhead_ms=overhead,
        server_rss_mb=None if memory is None else round(memory.rss_peak_mb, 2),
        server_uss_mb=None if memory is None else round(memory.uss_peak_mb, 2),
        in_flight_mean=in_flight_mean,
    )


def _measured_latency_s(mock_stats: dict[str, Any] | None) -> float | None:
    """L in this window: the mean delay the mock injected (for rate-based profiles it follows the answer
    length actually produced, not a typical one)."""
    injected = (mock_stats or {}).get("injected_delay_ms") or {}
    if not injected.get("count"):
        return None
    return float(injected["mean"]) / 1000.0


def _mock_late_p99_ms(mock_stats: dict[str, Any] | None) -> float | None:
    late = (mock_stats or {}).get("delay_error_ms") or {}
    return float(late["p99"]) if late.get("count") else None


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
        warmup_s=float(timing.warmup_s or 0.0),
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
