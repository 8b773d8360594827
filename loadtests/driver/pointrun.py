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
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.analysis import steady
from loadtests.analysis.breakdown import JOINABLE
from loadtests.analysis.rawdata import Record, cut_window, read_records, write_records
from loadtests.driver import cpu as cpu_sampling
from loadtests.driver import mockapi
from loadtests.driver.loadgen import RemoteWorkers, load_processes, start_load, stop_all
from loadtests.driver.machine import MachineMark, machine_record
from loadtests.driver.memory import MemorySampler, MemoryWindow
from loadtests.driver.pointbuild import WindowMeasurement, build_point
from loadtests.driver.pointspec import PointSpec, Target, Timing, settled_window_timing, window_seconds
from loadtests.driver.processes import ManagedProcess
from loadtests.driver.warmup import WarmupOutcome, Watcher, warm_up
from loadtests.results import Point

CALLS_LOOKBACK_S = 30.0

# Wraps the measured window (from before the mock's reset to after the mock's stats are read at its end),
# told the target and the window's length, while the load still runs: the cpu command attaches its profiler
# there. None (every other command): nothing runs around the window.
WindowProbe = Callable[[Target, float], contextlib.AbstractContextManager[object]]


@dataclass(frozen=True, kw_only=True)
class WindowSample:
    """The window as the processes saw it: its wall-clock bounds and what was sampled at each end."""

    start: float
    end: float
    cpu_before: cpu_sampling.CpuSnapshot
    cpu_after: cpu_sampling.CpuSnapshot
    machine_s: float  # busy CPU seconds of the whole machine over the window
    machine: dict[str, float | None]  # steal and one core's speed (loadtests.driver.machine)
    memory: MemoryWindow | None
    mock_stats: dict[str, Any]
    calls: list[list[Any]]


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
    window_probe: WindowProbe | None = None,
) -> Point:
    remote = remote or RemoteWorkers()
    work = run_dir / "tmp" / spec.point_id
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.iterdir():
        stale.unlink()
    logs = run_dir / "logs"
    processes = load_processes(
        spec, target, timing, work=work, logs=logs, local=loadgen_processes, remote=remote, seed=seed,
        max_in_flight=max_in_flight, env=env,
    )  # fmt: skip
    total = loadgen_processes + remote.count
    try:
        t0 = start_load(
            processes, work=work, logs=logs, expected_markers=min(total, spec.users) if spec.users else total
        )
        series = steady.Series(t0=t0, bin_s=timing.bin_s, open_loop=spec.load_model == "open")
        watcher = Watcher(work, target.mock_url, series)
        warm = warm_up(watcher, spec, timing, processes, slo_latency_ms=slo_latency_ms)
        duration = (
            timing.latency_s
            if warm.abandoned
            else window_seconds(_window_timing(spec, timing, warm, slo_latency_ms), warm.rate_rps)
        )
        sample = _sample_window(spec, target, watcher, processes, duration=duration, probe=window_probe)
    finally:
        stop_all(processes)
    watcher.read_new()  # the rest of the window's completions, for the window's own trend test
    records, raw_rel, gc_pauses = _collect_records(work, run_dir, spec.point_id)
    measured = _measurement(
        spec, processes, sample, records=records, raw_file=str(raw_rel), gc_pauses=gc_pauses,
        loadgen_processes=loadgen_processes,
        steady_state=steady_record(
            timing, warm, series, window_start=sample.start, window_end=sample.end,
            gauge_errors=watcher.gauge_errors,
        ),
        in_flight_mean=mean_in_flight(watcher.gauge_samples, sample.start, sample.end),
    )  # fmt: skip
    # A closed-loop level judged against an SLO (a capacity search's) gets its decision at that limit.
    limit_ms = slo_latency_ms if spec.load_model == "closed" else None
    return build_point(spec, target, timing, measured, limit_ms=limit_ms)


def _window_timing(
    spec: PointSpec, timing: Timing, warm: WarmupOutcome, slo_latency_ms: float | None
) -> Timing:
    """The window's timing from what the warm-up measured (pointspec.settled_window_timing)."""
    latency = warm.trends.get("latency_ms")
    if spec.load_model != "closed" or not spec.users or latency is None or not warm.settled:
        return timing
    return settled_window_timing(
        timing, users=spec.users, latency_mean_ms=latency.mean, slo_latency_ms=slo_latency_ms
    )


def _sample_window(
    spec: PointSpec,
    target: Target,
    watcher: Watcher,
    processes: Sequence[ManagedProcess],
    *,
    duration: float,
    probe: WindowProbe | None = None,
) -> WindowSample:
    """Reset the mock, then measure ``duration`` seconds: every party's CPU at both ends, the server's
    memory throughout, and at the end the mock's stats and its per-call records."""
    groups = {
        "loadgen": [proc.pid for proc in processes],
        "server": [target.server_pid],
        "mock": [target.mock_pid],
    }
    mark = MachineMark.now()  # outside the window: its CPU is the driver's, before the mock's reset
    with probe(target, duration) if probe is not None else contextlib.nullcontext():
        mockapi.reset(target.mock_url)
        start, start_mono = time.time(), time.monotonic()
        cpu_before = cpu_sampling.snapshot(groups, trees=("server", "mock"))
        machine_before = cpu_sampling.machine_busy_seconds()
        sampler = MemorySampler(root_pid=target.server_pid).start()
        try:
            watcher.wait(start + duration, processes)
        finally:
            memory = sampler.stop()
        end = time.time()
        cpu_after = cpu_sampling.snapshot(groups, trees=("server", "mock"))
        machine_s = cpu_sampling.machine_busy_seconds() - machine_before
        machine = machine_record(mark, MachineMark.now(), seconds=end - start, cpus=os.cpu_count() or 1)
        mock_stats = mockapi.stats(target.mock_url)
        calls: list[list[Any]] = []
        if spec.scenario in JOINABLE:
            # Calls that ended up to CALLS_LOOKBACK_S before the window: a request that completes just
            # inside it made its call earlier.
            calls = mockapi.calls_since(target.mock_url, start_mono - CALLS_LOOKBACK_S)
    return WindowSample(
        start=start, end=end, cpu_before=cpu_before, cpu_after=cpu_after, machine_s=machine_s,
        machine=machine, memory=memory, mock_stats=mock_stats, calls=calls,
    )  # fmt: skip


def _collect_records(
    work: Path, run_dir: Path, point_id: str
) -> tuple[list[Record], Path, list[dict[str, float]]]:
    """The load processes' records, merged and written to ``raw/`` (compressed), their collector pauses,
    and the point's working files removed."""
    records = read_records(sorted(work.glob("raw.*.csv")))
    raw_rel = Path("raw") / f"{point_id}.csv.gz"
    write_records(records, run_dir / raw_rel)
    gc_pauses: list[dict[str, float]] = []
    for path in work.glob("raw.*.gc.json"):
        gc_pauses.extend(json.loads(path.read_text()))
    for path in work.iterdir():
        path.unlink()
    work.rmdir()
    return records, raw_rel, gc_pauses


def _measurement(
    spec: PointSpec,
    processes: Sequence[ManagedProcess],
    sample: WindowSample,
    *,
    records: list[Record],
    raw_file: str,
    gc_pauses: list[dict[str, float]],
    loadgen_processes: int,
    steady_state: dict[str, Any],
    in_flight_mean: float | None,
) -> WindowMeasurement:
    """The window's requests and every party's CPU share, ready for :func:`build_point`."""
    seconds = sample.end - sample.start
    before, after = sample.cpu_before, sample.cpu_after
    per_process = cpu_sampling.per_process_percent(before, after, seconds)
    server_s = cpu_sampling.group_seconds(before, after, "server")
    mock_s = cpu_sampling.group_seconds(before, after, "mock")
    loadgen_s = cpu_sampling.group_seconds(before, after, "loadgen")
    # The driver itself sleeps through the window (but for its memory sampler, whose CPU is measured);
    # whatever else was busy is a neighbour's load.
    own_s = sample.memory.sampler_cpu_s if sample.memory is not None else 0.0
    other_percent = max(0.0, sample.machine_s - server_s - mock_s - loadgen_s - own_s) / seconds * 100.0
    return WindowMeasurement(
        window=cut_window(records, sample.start, sample.end),
        loadgen_cpu={
            proc.name.removeprefix(f"{spec.point_id} "): per_process["loadgen"].get(proc.pid, 0.0)
            for proc in processes
        },
        server_cpu_s=server_s,
        mock_cpu_s=mock_s,
        mock_stats=sample.mock_stats,
        gc_pauses=[p for p in gc_pauses if sample.start <= p["start"] < sample.end],
        raw_file=raw_file,
        loadgen_processes=loadgen_processes,
        other_cpu_percent=other_percent,
        machine_busy_percent=sample.machine_s / seconds * 100.0,
        server_max_process_percent=max(per_process["server"].values(), default=None),
        steady_state=steady_state,
        calls=sample.calls if spec.scenario in JOINABLE else None,
        memory=sample.memory,
        in_flight_mean=in_flight_mean,
        machine=sample.machine,
    )


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


def mean_in_flight(samples: Sequence[tuple[float, float]], start: float, end: float) -> float | None:
    """The mock's gauge averaged over the polls inside the window (polled every GAUGE_INTERVAL_S)."""
    inside = [value for t, value in samples if start <= t <= end]
    return round(sum(inside) / len(inside), 2) if inside else None
