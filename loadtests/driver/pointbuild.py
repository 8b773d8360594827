"""A point from what its window measured: every figure, every validity rule, pure (tested without processes).

:func:`build_point` takes the raw measurement of one window (:class:`WindowMeasurement`: the requests cut
to the window, every party's CPU, the mock's stats and per-call records, memory) and derives the
``Point``: throughput, exact percentiles, Little's law, the upstream breakdown, and the validity verdict
(``loadtests.analysis.validity``) with the evidence it read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from loadtests.analysis.breakdown import join
from loadtests.analysis.capacity import Slo
from loadtests.analysis.intervals import (
    batch_seconds,
    limit_interval,
    percentile_intervals,
    throughput_interval,
)
from loadtests.analysis.rawdata import Window
from loadtests.analysis.stats import nearest_rank, percentiles
from loadtests.analysis.validity import SERVER_BUSY, Evidence, findings, invalid_reasons, littles_law
from loadtests.driver.memory import MemoryWindow
from loadtests.driver.pointspec import PointSpec, Target, Timing
from loadtests.results import CpuUsage, LittlesLaw, Percentiles, Point

# Scenarios whose every request makes exactly one upstream call while it is in flight: the mock's peak
# must then be min(users, ceiling). Jobs run in the background (their concurrency is the job runner's).
ONE_CALL_PER_REQUEST = frozenset({"analyse", "stream", "chat"})


@dataclass(frozen=True, kw_only=True)
class WindowMeasurement:
    """What one point's window measured, before any figure is derived from it."""

    window: Window  # the requests, cut to the window
    loadgen_cpu: dict[str, float]  # percent of a core, per load process
    server_cpu_s: float
    mock_cpu_s: float
    mock_stats: dict[str, Any] | None
    gc_pauses: Sequence[dict[str, float]]  # the load processes' collector pauses inside the window
    raw_file: str | None
    loadgen_processes: int
    other_cpu_percent: float | None = None  # what neighbours took of the machine
    machine_busy_percent: float | None = None
    server_max_process_percent: float | None = None  # the busiest server process
    steady_state: dict[str, Any] | None = None
    calls: Sequence[Sequence[Any]] | None = None  # the mock's per-call records (joinable scenarios)
    memory: MemoryWindow | None = None
    in_flight_mean: float | None = None  # the mock's gauge averaged over the window
    machine: dict[str, float | None] | None = None  # steal and one core's speed (loadtests.driver.machine)


@dataclass(frozen=True, kw_only=True)
class _Rates:
    throughput: float  # successful completions per second
    finished: float  # every finished request per second
    arrivals: float


def _rates(spec: PointSpec, window: Window) -> _Rates:
    """Closed loop: successes from the interpolated counting curve (saturated workers finish in phase-locked
    clusters that quantise a count; see rawdata.smooth_count). Open loop: the plain count, the unbiased
    estimate for completions that follow Poisson arrivals (a slope through a few dozen of them scatters
    more: 2.75 against a count of 2.65 at 2 rps was seen). Both are kept in extra."""
    seconds = window.seconds
    if seconds <= 0:
        return _Rates(throughput=0.0, finished=0.0, arrivals=0.0)
    completed = window.completed_smooth if spec.load_model == "closed" else float(window.completed)
    throughput = completed / seconds
    return _Rates(
        throughput=throughput,
        finished=throughput + (window.failed - window.dropped) / seconds,
        arrivals=window.arrivals / seconds,
    )


def _expected_peak(spec: PointSpec, target: Target) -> int | None:
    """The mock's peak a one-call-per-request closed-loop point must reach: min(users, ceiling)."""
    if (
        spec.scenario in ONE_CALL_PER_REQUEST
        and spec.load_model == "closed"
        and target.latency_s > 0
        and target.ceiling > 0
    ):
        return min(spec.users or 0, target.ceiling)
    return None


def _evidence(
    spec: PointSpec,
    target: Target,
    m: WindowMeasurement,
    *,
    law: LittlesLaw | None,
    finished: Percentiles | None,
    measured_l: float | None,
) -> Evidence:
    window = m.window
    return Evidence(
        load_model=spec.load_model,
        users=spec.users,
        rate=spec.rate,
        completed=window.completed,
        loadgen_cpu_percent=m.loadgen_cpu,
        littles_law=law,
        upstream_peak=int(m.mock_stats["peak_in_flight"]) if m.mock_stats else None,
        expected_peak=_expected_peak(spec, target),
        dropped=window.dropped,
        lag_p99_ms=nearest_rank(sorted(window.lags_ms), 99) if window.lags_ms else None,
        other_cpu_percent=m.other_cpu_percent,
        machine_busy_percent=m.machine_busy_percent,
        cpu_count=os.cpu_count() or 1,
        server_max_process_percent=m.server_max_process_percent,
        arrivals=window.arrivals,
        backlog_growth=window.backlog_end - window.backlog_start,
        mean_latency_s=finished.mean / 1000.0 if finished else None,
        window_s=window.seconds,
        hung=window.hung,
        mock_late_p99_ms=_mock_late_p99_ms(m.mock_stats),
        upstream_latency_s=measured_l if measured_l is not None else target.latency_s,
        steady_state=m.steady_state,
        steal_percent=(m.machine or {}).get("steal_percent"),
        calibration_change=(m.machine or {}).get("calibration_change"),
    )


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _extra(
    spec: PointSpec, target: Target, m: WindowMeasurement, evidence: Evidence, measured_l: float | None
) -> dict[str, Any]:
    window, seconds = m.window, m.window.seconds
    big_l = measured_l or target.latency_s
    extra: dict[str, Any] = {
        "window_start": round(window.start, 3),
        "loadgen_processes": m.loadgen_processes,
        "loadgen_cpu_percent": {k: round(v, 1) for k, v in m.loadgen_cpu.items()},
        "other_cpu_percent": _round(m.other_cpu_percent),
        "machine_busy_percent": _round(m.machine_busy_percent),
        "gc_pauses": {
            "count": len(m.gc_pauses),
            "total_ms": round(sum(p["ms"] for p in m.gc_pauses), 3),
            "max_ms": round(max((p["ms"] for p in m.gc_pauses), default=0.0), 3),
        },
        "findings": findings(evidence),
        # Structured twin of the CPU finding: the report must not read a CPU limit as a concurrency ceiling.
        "server_max_process_percent": _round(m.server_max_process_percent),
        "server_cpu_bound": m.server_max_process_percent is not None
        and m.server_max_process_percent > SERVER_BUSY,
        "throughput_span_rps": span_throughput(window.completion_times),
        "throughput_count_rps": round(window.completed / seconds, 4) if seconds > 0 else 0.0,
        "throughput_smooth_rps": round(window.completed_smooth / seconds, 4) if seconds > 0 else 0.0,
        "expected_throughput_rps": (
            round(min(spec.users or 0, target.ceiling) / big_l, 3)
            if spec.load_model == "closed" and big_l > 0 and target.ceiling > 0
            else None
        ),
        "arrival_rate_rps": round(window.arrivals / seconds, 4) if seconds > 0 else 0.0,
        "backlog": {"start": window.backlog_start, "end": window.backlog_end},
        "oldest_open_s": round(window.oldest_open_s, 3),
    }
    extra.update(_optional_extra(spec, m))
    # The nominal L: a slowdown counts against goodput.
    extra.update(_provider_extra(m, target.latency_s, _rates(spec, m.window).throughput))
    return extra


LIMIT_KEYS = ("rpm", "input_tpm", "output_tpm", "max_in_flight", "slowdown_above")


def _provider_extra(m: WindowMeasurement, latency_s: float, throughput_rps: float) -> dict[str, Any]:
    """Under a provider's limits: what the mock turned away (429 by bucket, 529) and retries it saw, and
    the goodput: the point's throughput times the share of its successes within the default SLO's latency
    (1.25 x L), so that it never exceeds the throughput a closed loop's smoothed count gives."""
    stats = m.mock_stats or {}
    limits = stats.get("limits") or {}
    if not any(limits.get(key) for key in LIMIT_KEYS):
        return {}
    within_ms = Slo().p95_factor * latency_s * 1000.0
    latencies = m.window.latencies_ms
    good_share = sum(1 for ms in latencies if ms <= within_ms) / len(latencies) if latencies else 0.0
    return {
        "provider": {
            "limits": {key: limits.get(key) for key in LIMIT_KEYS if limits.get(key)},
            "minute_s": limits.get("minute_s"),
            "rate_limited": limits.get("rate_limited") or {},
            "overloaded": int(limits.get("overloaded") or 0),
            "retries_seen": int(stats.get("retries_seen") or 0),
            "goodput_rps": round(throughput_rps * good_share, 4),
            "goodput_within_ms": round(within_ms, 1),
        }
    }


def _optional_extra(spec: PointSpec, m: WindowMeasurement) -> dict[str, Any]:
    """What only some points have: the mock's timing and statuses, memory, per-request counts, send lag."""
    window, extra = m.window, {}
    if m.mock_stats and "delay_error_ms" in m.mock_stats:
        extra["mock_delay_error_ms"] = m.mock_stats["delay_error_ms"]
    if m.mock_stats:
        extra["mock_by_status"] = m.mock_stats.get("by_status", {})
    replay = (m.mock_stats or {}).get("replay")
    if replay:  # how close the window's calls came to the file (the file's path is the run's, not kept twice)
        extra["replay"] = {k: replay.get(k) for k in ("records", "replayed", "ks")}
    if m.memory is not None:
        extra["memory"] = m.memory.to_extra()
    if m.machine is not None:
        extra["machine"] = m.machine
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
    return extra


def build_point(
    spec: PointSpec, target: Target, timing: Timing, m: WindowMeasurement, *, limit_ms: float | None = None
) -> Point:
    """Everything after the window: pure, so it is tested without processes. ``limit_ms``: a latency
    limit the point will be judged against (a capacity level's SLO): its p95 interval at that limit goes
    into ``extra["p95_at_limit"]`` (loadtests.analysis.intervals.limit_interval)."""
    window, seconds = m.window, m.window.seconds
    rates = _rates(spec, window)
    finished = percentiles(window.finished_latencies_ms)
    law = littles_law(
        load_model=spec.load_model,
        users=spec.users,
        rate=rates.arrivals,  # open loop: the arrivals that happened, not the nominal rate
        throughput_rps=rates.finished,
        mean_latency_ms=finished.mean if finished else None,
    )
    measured_l = _measured_latency_s(m.mock_stats)
    breakdown, overhead = join(window.joined, m.calls) if m.calls is not None else (None, None)
    evidence = _evidence(spec, target, m, law=law, finished=finished, measured_l=measured_l)
    reasons = invalid_reasons(evidence)
    extra = _extra(spec, target, m, evidence, measured_l)
    if limit_ms is not None and window.latencies_ms:
        batch_s = batch_seconds(timing.latency_s, finished.mean / 1000.0 if finished else None)
        extra["p95_at_limit"] = limit_interval(
            _samples(window), limit_ms=limit_ms, batch_s=batch_s, window_s=seconds
        )
    ttft = percentiles(window.ttfts_ms)
    if spec.scenario == "jobs" and ttft is not None:
        extra["submit_ms"] = asdict(ttft)  # time to the 202, not a first token
        ttft = None
    return Point(
        variant=spec.variant,
        scenario=spec.scenario,
        load_model=spec.load_model,  # type: ignore[arg-type]
        users=spec.users,
        rate=spec.rate,
        repeat=spec.repeat,
        warmup_s=float(m.steady_state["warmup_s"]) if m.steady_state else float(timing.warmup_s or 0.0),
        duration_s=round(seconds, 3),
        completed=window.completed,
        failed=window.failed,
        unfinished=window.unfinished,
        failures_by_status=window.failures_by_status,
        throughput_rps=round(rates.throughput, 4),
        latency_ms=percentiles(window.latencies_ms),
        ttft_ms=ttft,
        upstream_peak_in_flight=evidence.upstream_peak,
        upstream_requests=int(m.mock_stats["requests"]) if m.mock_stats else None,
        predicted_ceiling=target.ceiling,
        littles_law=law,
        server_cpu_ms_per_request=(
            round(m.server_cpu_s * 1000.0 / window.completed, 3) if window.completed else None
        ),
        cpu=CpuUsage(
            loadgen_percent=round(sum(m.loadgen_cpu.values()), 1),
            server_percent=round(m.server_cpu_s / seconds * 100.0, 1) if seconds > 0 else 0.0,
            mock_percent=round(m.mock_cpu_s / seconds * 100.0, 1) if seconds > 0 else 0.0,
        ),
        valid=not reasons,
        invalid_reasons=reasons,
        extra=extra,
        raw_file=m.raw_file,
        steady_state=m.steady_state,
        upstream_latency_s=None if measured_l is None else round(measured_l, 6),
        hung=window.hung,
        breakdown_ms=breakdown,
        overhead_ms=overhead,
        server_rss_mb=None if m.memory is None else round(m.memory.rss_peak_mb, 2),
        server_uss_mb=None if m.memory is None else round(m.memory.uss_peak_mb, 2),
        in_flight_mean=m.in_flight_mean,
        **_intervals(window, rates.throughput, timing),
    )


def _samples(window: Window) -> list[tuple[float, float]]:
    return list(zip(window.completion_times, window.latencies_ms, strict=True))


def _intervals(window: Window, throughput: float, timing: Timing) -> dict[str, Any]:
    """The 95 % intervals of the percentiles and the throughput (loadtests.analysis.intervals)."""
    # Within the window (batches of sqrt(n) completions): what one start of the load shows, not the spread
    # between starts, which a capacity level's decision meets with turnover batches and fresh processes.
    latency = percentile_intervals(_samples(window))
    rate = throughput_interval(
        window.completion_times,
        start=window.start,
        end=window.end,
        period_s=timing.latency_s,
        throughput=throughput,
    )
    return {
        "latency_ci_ms": None if latency is None else asdict(latency),
        "throughput_ci_rps": None if rate is None else list(rate),
    }


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
