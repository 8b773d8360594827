"""The capacity plan: what holding N calls in flight at latency L costs each variant on this machine.

Pure: a run in, rows out. Every figure comes from measured slopes and points, never from a predicted
ceiling:

* **CPU**: the variant's median server CPU per request over its valid points that were not CPU-bound,
  times the request rate N / L (closed loop, every call takes L), in cores.
* **Memory and processes**, by what the run measured:
  - a variant whose calls in flight stopped following the users (a *measured* ceiling C with its
    configured worker count W, e.g. flask-sync's 4) scales by adding processes: each holds C / W calls,
    so N calls need ceil(N / (C / W)) processes and cost the tree measured at the ceiling plus one
    worker's USS for every process added (a forked worker shares its parent's pages; USS is what it adds);
  - a variant that followed the users scales within its processes: memory = intercept + slope x N from
    :mod:`loadtests.analysis.memory`.
* **Check**: the plan evaluated at the measured point whose calls in flight are nearest to N (within a
  factor of CHECK_FACTOR), against that point's measured memory and CPU. Where no point is near, the row
  says so, and says plainly when N is beyond this machine (more cores than it has, more memory than it
  has, or more than one core for a single event loop).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from loadtests.analysis.claims import measured_ceiling, upstream_latency
from loadtests.analysis.levels import levels_of, select
from loadtests.analysis.memory import MemoryFit, fit_memory, worker_uss_mb
from loadtests.results import Point, RunResults

PLAN_CALLS = (100, 1_000, 10_000)
CHECK_FACTOR = 1.5  # a measured point within N / 1.5 .. N x 1.5 calls in flight checks the plan at N


@dataclass(frozen=True, kw_only=True)
class PlanRow:
    variant: str
    scenario: str
    calls: int  # N
    latency_s: float  # L
    rate_rps: float  # N / L
    model: str  # "processes" (replicate at a measured ceiling) or "slope" (within the processes)
    processes: int | None
    memory_mb: float | None
    cpu_cores: float | None
    cpu_ms_per_request: float | None
    beyond: list[str]  # where this machine cannot do it, plainly
    check: str  # the measured point that checks the plan, or why there is none
    check_error: float | None  # (plan - measured) / measured memory at the check point
    basis: str  # which measured figures the row stands on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class _Basis:
    variant: str
    scenario: str
    points: list[Point]
    fit: MemoryFit
    cpu_ms: float | None
    ceiling_calls: int | None  # measured: the mock's peak where it stopped following the users
    workers: int  # configured worker processes (a configuration fact, not a prediction)
    tree_at_ceiling_mb: float | None
    worker_mb: float | None
    leaves: int | None  # processes without children seen in the tree (the serving processes)


def capacity_plan(
    run: RunResults, calls: Sequence[int] = PLAN_CALLS, fits: Sequence[MemoryFit] | None = None
) -> list[PlanRow]:
    """``fits``: the run's USS fits when already computed (``memory_fits``), else fitted here."""
    big_l = upstream_latency(run)
    if big_l is None:
        return []
    cpus = int(run.metadata.get("cpu_count") or 1)
    mem_total = run.metadata.get("memory_total_mb")
    rows: list[PlanRow] = []
    for basis in _bases(run, fits):
        for n in calls:
            rows.append(
                _row(basis, n, big_l, cpus, mem_total if isinstance(mem_total, int | float) else None)
            )
    return rows


def _bases(run: RunResults, fits: Sequence[MemoryFit] | None) -> list[_Basis]:
    workers = {v.name: v.workers for v in run.variants}
    fitted = {(f.variant, f.scenario): f for f in fits or ()}
    levels = levels_of(run)
    keys = dict.fromkeys(
        (p.variant, p.scenario)
        for p in run.points
        if p.load_model == "closed" and p.server_uss_mb is not None
    )
    out = []
    for variant, scenario in keys:
        points = [
            p
            for p in run.points
            if p.variant == variant and p.scenario == scenario and p.load_model == "closed" and p.valid
        ]
        if not points:
            continue
        cpu = [
            p.server_cpu_ms_per_request
            for p in points
            if p.server_cpu_ms_per_request is not None and not p.extra.get("server_cpu_bound")
        ]
        capped = measured_ceiling(
            select(levels, variant=variant, scenario=scenario, load_model="closed", valid=True)
        )
        at_cap = [p for p in points if capped is not None and p.load == capped.load and p.server_uss_mb]
        leaves = [len((p.extra.get("memory") or {}).get("leaf_uss_mb", [])) for p in points]
        out.append(
            _Basis(
                variant=variant,
                scenario=scenario,
                points=points,
                fit=fitted.get((variant, scenario)) or fit_memory(variant, scenario, points),
                cpu_ms=statistics.median(cpu) if cpu else None,
                ceiling_calls=capped.peak_in_flight if capped is not None else None,
                workers=max(1, workers.get(variant, 1)),
                tree_at_ceiling_mb=(
                    statistics.median(p.server_uss_mb for p in at_cap if p.server_uss_mb) if at_cap else None
                ),
                worker_mb=worker_uss_mb(points),
                leaves=max(leaves, default=0) or None,
            )
        )
    return out


def _memory_at(basis: _Basis, n: float) -> tuple[str, int | None, float | None, str]:
    """(model, processes, MB, basis text) for n calls in flight."""
    if basis.ceiling_calls and basis.tree_at_ceiling_mb is not None and basis.worker_mb is not None:
        per_process = basis.ceiling_calls / basis.workers
        processes = max(basis.workers, math.ceil(n / per_process - 1e-9))
        mb = basis.tree_at_ceiling_mb + (processes - basis.workers) * basis.worker_mb
        text = (
            f"measured ceiling {basis.ceiling_calls} calls on {basis.workers} worker(s) = "
            f"{per_process:g} per process; tree {basis.tree_at_ceiling_mb:.0f} MB USS there, "
            f"+{basis.worker_mb:.1f} MB (median worker USS) per added process"
        )
        return "processes", processes, mb, text
    fit = basis.fit
    if fit.usable and fit.mb_per_call is not None and fit.intercept_mb is not None:
        mb = fit.intercept_mb + fit.mb_per_call * n
        text = (
            f"USS = {fit.intercept_mb:.1f} MB + {fit.mb_per_call * 1024:.0f} KB x calls "
            f"(r^2 {_r2(fit.r2)}, {fit.levels} levels, "
            f"{fit.in_flight_min:.0f}-{fit.in_flight_max:.0f} in flight)"
        )
        return "slope", basis.leaves, mb, text
    why = fit.why_not or "no memory slope"
    if basis.ceiling_calls:
        why = f"measured ceiling {basis.ceiling_calls} calls but no worker memory reading"
    return "none", basis.leaves, None, why


def _row(basis: _Basis, n: int, big_l: float, cpus: int, mem_total: float | None) -> PlanRow:
    rate = n / big_l
    model, processes, mb, text = _memory_at(basis, n)
    cores = None if basis.cpu_ms is None else basis.cpu_ms * rate / 1000.0
    beyond: list[str] = []
    if cores is not None and cores > cpus:
        beyond.append(f"beyond this machine: {cores:.1f} cores of {cpus}")
    elif cores is not None and model == "slope" and (processes or 1) == 1 and cores > 1:
        beyond.append(f"beyond one process: its one event loop would need {cores:.1f} cores")
    if mb is not None and mem_total is not None and mb > mem_total:
        beyond.append(f"beyond this machine: {mb / 1024:.1f} GB of {mem_total / 1024:.1f} GB memory")
    check, error = _check(basis, n, model)
    return PlanRow(
        variant=basis.variant,
        scenario=basis.scenario,
        calls=n,
        latency_s=big_l,
        rate_rps=round(rate, 2),
        model=model,
        processes=processes,
        memory_mb=None if mb is None else round(mb, 1),
        cpu_cores=None if cores is None else round(cores, 3),
        cpu_ms_per_request=None if basis.cpu_ms is None else round(basis.cpu_ms, 2),
        beyond=beyond,
        check=check,
        check_error=error,
        basis=text + (f"; CPU {basis.cpu_ms:.1f} ms per request (median)" if basis.cpu_ms else ""),
    )


def _check(basis: _Basis, n: int, model: str) -> tuple[str, float | None]:
    near = [
        p
        for p in basis.points
        if p.in_flight_mean
        and p.server_uss_mb is not None
        and 1 / CHECK_FACTOR <= p.in_flight_mean / n <= CHECK_FACTOR
    ]
    if not near:
        top = max((p.in_flight_mean or 0.0 for p in basis.points), default=0.0)
        return (f"not measured: this run held at most {top:.0f} calls in flight on {basis.variant}", None)
    point = min(near, key=lambda p: abs(math.log((p.in_flight_mean or 1.0) / n)))
    assert point.in_flight_mean is not None and point.server_uss_mb is not None
    if model == "none":  # no memory plan to check, but the point's own figures still say what N costs
        cpu_only = point.cpu.server_percent / 100.0 if point.cpu else None
        return (
            f"{point.users} users, {point.in_flight_mean:.0f} in flight: "
            f"measured {point.server_uss_mb:.0f} MB"
            + (f", {cpu_only:.2f} cores" if cpu_only is not None else "")
            + " (no memory slope to check)",
            None,
        )
    _, _, planned, _ = _memory_at(basis, point.in_flight_mean)
    if planned is None:
        return ("no plan to check", None)
    error = (planned - point.server_uss_mb) / point.server_uss_mb
    cpu = point.cpu.server_percent / 100.0 if point.cpu else None
    in_fit = basis.fit.usable and model == "slope"
    return (
        f"{point.users} users, {point.in_flight_mean:.0f} in flight: measured {point.server_uss_mb:.0f} MB, "
        f"plan {planned:.0f} MB ({error:+.0%})"
        + (f", {cpu:.2f} cores measured" if cpu is not None else "")
        + (" (the point is one the fit was made from)" if in_fit else ""),
        round(error, 4),
    )


def _r2(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
