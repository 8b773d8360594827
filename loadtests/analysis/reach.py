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


def first_failure(point: Point, facts: ReachFacts) -> tuple[str, str, bool]:
    """(what failed first, the figures behind it, whether the level was held)."""
    held = point.upstream_peak_in_flight or 0
    total = point.completed + point.failed
    failed_share = point.failed / total if total else 1.0
    statuses = point.failures_by_status
    lag_ms = _before_upstream_p95(point)
    loadgen = [r for r in point.invalid_reasons if r.startswith("load generator")]
    short = facts.streams - held > peak_tolerance(facts.streams)
    busiest = point.extra.get("server_max_process_percent")
    if point.extra.get("measurement_failed"):
        return "measurement failed", "; ".join(point.invalid_reasons), False
    if facts.open_file_errors:
        return "open files", f"{facts.open_file_errors} 'too many open files' log lines; held {held:,}", False
    shed = int(statuses.get("503", 0))
    if shed and 2 * shed >= point.failed:
        # Before the CPU of either side: a server that answers 503 at its limit does so whatever the
        # load generator's state, and closed-loop users retry a 503 at once, so a saturated load
        # generator or server is the storm of refusals, not its cause (fastapi-shedding at 1,000
        # streams: 63 held, 23,553 refused, Locust at 96 % of a core).
        detail = f"{shed:,} answered 503 ({shed / max(total, 1):.1%}); held {held:,}"
        if loadgen:
            detail += f"; the users retried at once, which loaded the load generator ({loadgen[0]})"
        elif point.extra.get("server_cpu_bound"):
            detail += f"; the users retried at once, which kept a server process at {busiest}% of a core"
        return "503 shedding", detail, False
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
        errors = f", {point.failed:,} failed" if point.failed else ""
        return (
            "server CPU",
            f"a server process at {busiest}% of a core; held {held:,} of {facts.streams:,}{errors}",
            False,
        )
    conn = {k: v for k, v in statuses.items() if k.startswith(TRANSPORT_PREFIX)}
    if conn:
        kinds = ", ".join(f"{k.removeprefix(TRANSPORT_PREFIX)} {v:,}" for k, v in sorted(conn.items()))
        return "connection errors", f"{sum(conn.values()):,} transport errors ({kinds}); held {held:,}", False
    if point.failed:
        shown = ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items()))
        return "errors", f"{point.failed:,} failed ({failed_share:.1%}: {shown}); held {held:,}", False
    if short:
        return (
            "concurrency cap",
            f"the mock saw at most {held:,} of {facts.streams:,} streams in flight",
            False,
        )
    if lag_ms is not None and lag_ms > max(1000.0, LAG_FRACTION * facts.latency_s * 1000.0):
        return "event-loop lag", f"before-upstream p95 {lag_ms / 1000:.1f} s; held {held:,}", False
    if completed_nothing(point):
        return "nothing completed", "no stream finished inside the window", False
    if not point.valid:
        # Held and nothing failed, yet the figures disagree (fastapi-workers at 10,000 streams: 9,943
        # held, 0 failed, 29.5 rps of the 40 offered, Little's law off by 24 %, both cores busy): the
        # streams slowed, so the level was not held as asked.
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
    detail = f"held {held:,}, {point.completed:,} completed, 0 failed"
    if lag_ms is not None:
        detail += f", before-upstream p95 {lag_ms:.0f} ms"
    return "nothing", detail, True


def completed_nothing(point: Point) -> bool:
    return point.completed == 0


def _before_upstream_p95(point: Point) -> float | None:
    parts: dict[str, Any] = point.breakdown_ms or {}
    before = parts.get("before_upstream") or {}
    value = before.get("p95") if isinstance(before, dict) else None
    return float(value) if isinstance(value, int | float) else None
