"""One entry of results.json's ``cpu`` list: a profiled point, its budget by component, and what profiling
cost, from the point, the profile's budget (:mod:`loadtests.analysis.cpu_budget`) and an unprofiled point
of the same level (the baseline) when there is one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from loadtests.analysis.cpu_budget import (
    COMPONENTS,
    Budget,
    Stack,
    ThreadTime,
    top_unclassified,
    unseen_processes,
)
from loadtests.results import Point

BUSY_ON_CPU_SHARE = 0.8  # below this, the server waited for a core for more than a fifth of its R time
SAMPLING_TOLERANCE = 0.10  # py-spy's rounds in R against the kernel's R time, beyond which it warns


def summarise(
    point: Point,
    budget: Budget,
    stacks: Sequence[Stack],
    *,
    profile: Mapping[str, Any],
    threads: Sequence[ThreadTime],
    baseline: Point | None,
    files: Mapping[str, str],
    app_modules: Sequence[str] = (),
) -> dict[str, Any]:
    """``profile``: the profiler's figures (rate_hz, ticks, elapsed_s, profiler_cpu_s, processes,
    pyspy_errors, late_warnings, ended_early, nonblocking); ``files``: the flame graph and the raw
    profile, relative to the run directory."""
    processes = [dict(p, samples=budget.by_process.get(int(p["pid"]), 0)) for p in profile["processes"]]
    problems = [*budget.problems, *unseen_processes(processes, budget.by_process)]
    if profile.get("ended_early"):
        problems.append("the server's processes exited before py-spy's last round; the rounds are fewer")
    on_cpu = sum(t.on_cpu_s for t in threads)
    share = on_cpu / (on_cpu + sum(t.run_queue_s for t in threads)) if on_cpu else 1.0
    warnings = []
    if share < BUSY_ON_CPU_SHARE:
        warnings.append(
            f"the server's threads waited for a core {1 - share:.0%} of the time they were runnable (a busy "
            "machine): the split leans toward code right after I/O; measure on a quiet machine"
        )
    ratio = budget.sampling_ratio
    if ratio is not None and abs(ratio - 1.0) > SAMPLING_TOLERANCE:
        warnings.append(
            f"py-spy found the server's threads runnable in {ratio:.0%} of the rounds their runnable time "
            "implies: its rounds were not independent of the server's state (a busy machine), so the "
            "split is a biased sample"
        )
    if profile.get("late_warnings"):
        warnings.append(f"py-spy fell more than 1 s behind its rate {profile['late_warnings']} times")
    return {
        "variant": point.variant,
        "scenario": point.scenario,
        "users": point.users,
        "cpu_ms_per_request": point.server_cpu_ms_per_request,
        "samples": budget.samples,
        "classified_share": budget.classified_share,
        "components": budget.components_ms,
        "profiled_cpu_ms_per_request": round(sum(budget.components_ms.values()), 4),
        "native_thread_ms": budget.native_ms,
        "budget_error": budget.budget_error,
        "adds_up": not problems,
        "problems": problems,
        "warnings": warnings,
        "on_cpu_share": round(share, 4),
        "sampling_ratio": budget.sampling_ratio,
        "samples_by_component": budget.by_component,
        "unclassified_modules": top_unclassified(stacks, app_modules=app_modules),
        "processes": processes,
        **_overhead(point, baseline, profile),
        "profiler": {
            k: profile[k]
            for k in ("rate_hz", "nonblocking", "ticks", "elapsed_s", "pyspy_errors", "late_warnings")
        },
        "flamegraph": files["flamegraph"],
        "raw_profile": files["raw_profile"],
        "valid": point.valid,
        "invalid_reasons": list(point.invalid_reasons),
        "point": asdict(point),
    }


def _overhead(point: Point, baseline: Point | None, profile: Mapping[str, Any]) -> dict[str, Any]:
    """What profiling cost: the server's CPU per request with and without py-spy attached (psutil, each
    point's own window), and py-spy's own CPU per request (its process, the profiled interval)."""
    profiled = point.server_cpu_ms_per_request
    plain = baseline.server_cpu_ms_per_request if baseline is not None else None
    own = None
    elapsed = float(profile["elapsed_s"])
    if point.completed and elapsed > 0:
        own = float(profile["profiler_cpu_s"]) / elapsed * point.duration_s * 1000.0 / point.completed
    return {
        "cpu_ms_per_request_unprofiled": plain,
        "profiler_overhead": round(profiled / plain - 1.0, 4) if profiled and plain else None,
        "profiler_own_cpu_ms_per_request": None if own is None else round(own, 4),
        "baseline_valid": None if baseline is None else baseline.valid,
    }


def unmeasured(point: Point, baseline: Point | None) -> dict[str, Any]:
    """The entry of a profiled point whose window never ran (the variant died, the load never started):
    no budget, and why."""
    reason = "; ".join(point.invalid_reasons) or "no window was measured"
    return {
        "variant": point.variant,
        "scenario": point.scenario,
        "users": point.users,
        "cpu_ms_per_request": point.server_cpu_ms_per_request,
        "samples": 0,
        "classified_share": 0.0,
        "components": {c: 0.0 for c in COMPONENTS},
        "profiled_cpu_ms_per_request": 0.0,
        "budget_error": None,
        "adds_up": False,
        "problems": [f"nothing was profiled: {reason}"],
        "warnings": [],
        "cpu_ms_per_request_unprofiled": None if baseline is None else baseline.server_cpu_ms_per_request,
        "profiler_overhead": None,
        "valid": point.valid,
        "invalid_reasons": list(point.invalid_reasons),
        "point": asdict(point),
    }
