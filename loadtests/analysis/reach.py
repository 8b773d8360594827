"""What failed first when a variant was asked to hold N concurrent streams: read from one point's evidence.

Pure: a measured point and a few facts the driver gathered (log lines about open files, the machine's
free memory) in, one row out. Several things can go wrong at once at 10,000 streams; the order below is
the order of cause: a process that cannot open a socket explains everything after it, a starved load
generator makes every other figure untrustworthy, and so on down to the server's own limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadtests.analysis.validity import peak_tolerance
from loadtests.results import Point

LAG_FRACTION = 0.05  # before-upstream p95 above this share of L (and 1 s) is a server that falls behind
LOW_MEMORY_FRACTION = 0.10  # the machine's available memory below this share of its total
MACHINE_BUSY_FRACTION = 0.95  # every core this busy: the machine, not one process, ran out
# The load generator records a transport failure as "error:<ExceptionName>" (no HTTP status at all).
TRANSPORT_PREFIX = "error:"


@dataclass(frozen=True, kw_only=True)
class ReachFacts:
    streams: int
    latency_s: float
    open_file_errors: int  # log lines naming EMFILE / "Too many open files", any process
    available_memory_min_mb: float | None
    memory_total_mb: float | None
    cpu_count: int | None = None


Failure = tuple[str, str, bool]  # what failed first, the figures behind it, whether the level was held


def first_failure(point: Point, facts: ReachFacts) -> Failure:
    """(what failed first, the figures behind it, whether the level was held)."""
    held = point.upstream_peak_in_flight or 0
    found = _broken(point, facts, held) or _starved(point, facts, held) or _short(point, facts, held)
    if found is not None:
        return found
    lag_ms = _before_upstream_p95(point)
    detail = f"held {held:,}, {point.completed:,} completed, 0 failed"
    if lag_ms is not None:
        detail += f", before-upstream p95 {lag_ms:.0f} ms"
    return "nothing", detail, True


def _broken(point: Point, facts: ReachFacts, held: int) -> Failure | None:
    """The harness broke, a process could not open a socket, or the server shed: these explain the rest."""
    if point.extra.get("measurement_failed"):
        return "measurement failed", "; ".join(point.invalid_reasons), False
    if facts.open_file_errors:
        return "open files", f"{facts.open_file_errors} 'too many open files' log lines; held {held:,}", False
    shed = int(point.failures_by_status.get("503", 0))
    if shed and 2 * shed >= point.failed:
        # Before the CPU of either side: a server that answers 503 at its limit does so whatever the
        # load generator's state, and closed-loop users retry a 503 at once, so a saturated load
        # generator or server is the storm of refusals, not its cause (fastapi-shedding at 1,000
        # streams: 63 held, 23,553 refused, Locust at 96 % of a core).
        total = point.completed + point.failed
        detail = f"{shed:,} answered 503 ({shed / max(total, 1):.1%}); held {held:,}"
        loadgen = _loadgen_reasons(point)
        if loadgen:
            detail += f"; the users retried at once, which loaded the load generator ({loadgen[0]})"
        elif point.extra.get("server_cpu_bound"):
            busiest = point.extra.get("server_max_process_percent")
            detail += f"; the users retried at once, which kept a server process at {busiest}% of a core"
        return "503 shedding", detail, False
    return None


def _starved(point: Point, facts: ReachFacts, held: int) -> Failure | None:
    """A resource ran out: the load generator's CPU, the machine's memory, a server process's CPU."""
    loadgen = _loadgen_reasons(point)
    if loadgen:
        return "load generator CPU", loadgen[0], False
    if (
        facts.available_memory_min_mb is not None
        and facts.memory_total_mb
        and facts.available_memory_min_mb < LOW_MEMORY_FRACTION * facts.memory_total_mb
    ):
        return "memory", f"{facts.available_memory_min_mb:,.0f} MB available at the lowest", False
    if point.extra.get("server_cpu_bound"):
        # Before errors and the cap: a process at 100 % of a core cannot accept or start what it was sent,
        # so timeouts and a shortfall in flight are the CPU's doing (fastapi-async at 5,000 streams: 3,356
        # held, its one loop at 99.5 %, the machine a third idle).
        busiest = point.extra.get("server_max_process_percent")
        errors = f", {point.failed:,} failed" if point.failed else ""
        return (
            "server CPU",
            f"a server process at {busiest}% of a core; held {held:,} of {facts.streams:,}{errors}",
            False,
        )
    return None


def _short(point: Point, facts: ReachFacts, held: int) -> Failure | None:
    """Requests failed, the server capped what it held, fell behind, or the figures disagree."""
    statuses = point.failures_by_status
    conn = {k: v for k, v in statuses.items() if k.startswith(TRANSPORT_PREFIX)}
    if conn:
        kinds = ", ".join(f"{k.removeprefix(TRANSPORT_PREFIX)} {v:,}" for k, v in sorted(conn.items()))
        return "connection errors", f"{sum(conn.values()):,} transport errors ({kinds}); held {held:,}", False
    if point.failed:
        total = point.completed + point.failed
        shown = ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items()))
        return (
            "errors",
            f"{point.failed:,} failed ({point.failed / total:.1%}: {shown}); held {held:,}",
            False,
        )
    if facts.streams - held > peak_tolerance(facts.streams):
        return (
            "concurrency cap",
            f"the mock saw at most {held:,} of {facts.streams:,} streams in flight",
            False,
        )
    lag_ms = _before_upstream_p95(point)
    if lag_ms is not None and lag_ms > max(1000.0, LAG_FRACTION * facts.latency_s * 1000.0):
        return "event-loop lag", f"before-upstream p95 {lag_ms / 1000:.1f} s; held {held:,}", False
    if completed_nothing(point):
        return "nothing completed", "no stream finished inside the window", False
    if not point.valid:
        return _not_held(point, facts, held)
    return None


def _not_held(point: Point, facts: ReachFacts, held: int) -> Failure:
    """Held and nothing failed, yet the figures disagree (fastapi-workers at 10,000 streams: 9,943 held,
    0 failed, 29.5 rps of the 40 offered, Little's law off by 24 %, both cores busy): the streams slowed,
    so the level was not held as asked."""
    reasons = "; ".join(point.invalid_reasons)
    busy = point.extra.get("machine_busy_percent")
    if (
        isinstance(busy, int | float)
        and facts.cpu_count
        and busy >= MACHINE_BUSY_FRACTION * 100.0 * facts.cpu_count
    ):
        return (
            "machine CPU",
            f"the machine at {busy:.0f}% of {facts.cpu_count} cores; held {held:,}, 0 failed, "
            f"{point.throughput_rps:.1f} of {facts.streams / facts.latency_s:.1f} rps; {reasons}",
            False,
        )
    return "not steady", f"held {held:,}, 0 failed, but {reasons}", False


def _loadgen_reasons(point: Point) -> list[str]:
    return [r for r in point.invalid_reasons if r.startswith("load generator")]


def completed_nothing(point: Point) -> bool:
    return point.completed == 0


def _before_upstream_p95(point: Point) -> float | None:
    parts: dict[str, Any] = point.breakdown_ms or {}
    before = parts.get("before_upstream") or {}
    value = before.get("p95") if isinstance(before, dict) else None
    return float(value) if isinstance(value, int | float) else None


def reach_row(point: Point, facts: ReachFacts, procs: int, pool: int | None) -> dict[str, Any]:
    """One reach level's row: what it held and cost, and what failed first."""
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
