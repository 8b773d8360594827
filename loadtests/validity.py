"""Is a point one a performance engineer would sign? Pure functions, so every rule is unit-tested.

Invalid (the point is kept, with every reason):
- a load-generator process above ``LOADGEN_CPU_LIMIT`` percent of one core over the window: the load
  generator, not the server, may have set the pace;
- open loop: fewer than 1 - ``LITTLE_TOLERANCE`` of the offered requests completed (no steady state);
- closed loop: Little's law off by more than ``LITTLE_TOLERANCE`` (throughput x mean latency should equal
  the number of users; if not, users were idle, missing or mis-timed);
- closed loop: the mock saw more upstream calls in flight than there are users (beyond a tolerance): calls
  the load did not make (a previous point's backlog, retries);
- processes outside the measurement used more than ``OTHER_CPU_LIMIT`` percent of a core during the window
  while the whole machine was more than ``MACHINE_BUSY_LIMIT`` busy (a noisy neighbour the measurement had
  to compete with for CPU moves every number on a 2-core machine);
- zero completions in the window; open-loop arrivals refused by the in-flight cap; an open-loop send lag
  (actual minus intended send time) whose p99 exceeds ``OPEN_LAG_LIMIT_MS``.

A mock peak that differs from min(users, ceiling) while Little's law holds is not a harness fault: the load
generator demonstrably kept ``users`` requests in flight, so the server ran fewer (gunicorn gthread with
keep-alive connections piled on some workers) or more (a streaming endpoint that holds no thread between
chunks) upstream calls at once than theory predicts. That is a finding about the server, recorded in
``extra["findings"]`` with a CPU-bound server process, and the point stays valid so the charts show it.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtests.results import LittlesLaw

LOADGEN_CPU_LIMIT = 90.0  # percent of one core, per load-generator process
OTHER_CPU_LIMIT = 35.0  # percent of one core used by processes outside the measurement (a noisy machine)
SERVER_BUSY = 90.0  # percent of one core: a server process this busy is CPU-bound (a finding)
MACHINE_SATURATED = 0.95  # fraction of all cores busy: CPU ran out (a finding)
MACHINE_BUSY_LIMIT = 0.75  # fraction of all cores busy: beyond it, processes wait for a CPU
LITTLE_TOLERANCE = 0.10
OPEN_LAG_LIMIT_MS = 50.0


def peak_tolerance(expected: int) -> int:
    """Allowed difference between the mock's peak and min(users, ceiling): 1 call or 5 %."""
    return max(1, round(expected * 0.05))


@dataclass(frozen=True, kw_only=True)
class Evidence:
    load_model: str
    users: int | None
    rate: float | None
    completed: int
    loadgen_cpu_percent: dict[str, float]  # per load-generator process
    littles_law: LittlesLaw | None
    upstream_peak: int | None
    expected_peak: int | None  # min(users, ceiling) when the scenario makes one upstream call per request
    dropped: int = 0
    lag_p99_ms: float | None = None
    other_cpu_percent: float | None = None  # machine busy time not spent by loadgen, server or mock
    machine_busy_percent: float | None = None  # all processes, percent of one core (200 = 2 cores busy)
    cpu_count: int = 1
    server_max_process_percent: float | None = None  # the busiest process of the server's tree


def littles_law(
    *,
    load_model: str,
    users: int | None,
    rate: float | None,
    throughput_rps: float,
    mean_latency_ms: float | None,
) -> LittlesLaw | None:
    """Closed loop: expected = users. Open loop: expected = offered rate x mean latency (so the ratio is
    achieved / offered throughput)."""
    if mean_latency_ms is None:
        return None
    mean_s = mean_latency_ms / 1000.0
    measured = throughput_rps * mean_s
    expected = float(users or 0) if load_model == "closed" else float(rate or 0) * mean_s
    if expected <= 0:
        return None
    return LittlesLaw(
        expected_in_flight=round(expected, 3),
        measured_in_flight=round(measured, 3),
        ratio=round(measured / expected, 4),
    )


def invalid_reasons(evidence: Evidence) -> list[str]:
    reasons: list[str] = []
    for name, percent in sorted(evidence.loadgen_cpu_percent.items()):
        if percent > LOADGEN_CPU_LIMIT:
            reasons.append(
                f"load generator {name} used {percent:.0f}% of a core (limit {LOADGEN_CPU_LIMIT:.0f}%): "
                "it may have set the pace; add --loadgen-processes"
            )
    other, busy = evidence.other_cpu_percent, evidence.machine_busy_percent
    capacity = 100.0 * evidence.cpu_count
    if (
        other is not None
        and busy is not None
        and other > OTHER_CPU_LIMIT
        and busy > MACHINE_BUSY_LIMIT * capacity
    ):
        reasons.append(
            f"other processes used {other:.0f}% of a core while the machine was "
            f"{busy / capacity * 100:.0f}% busy (limits {OTHER_CPU_LIMIT:.0f}% and "
            f"{MACHINE_BUSY_LIMIT * 100:.0f}%): the measurement competed for CPU"
        )
    if evidence.completed == 0:
        reasons.append("no request completed in the measured window")
    law = evidence.littles_law
    if evidence.load_model == "open" and law is not None and law.ratio < 1.0 - LITTLE_TOLERANCE:
        # Above capacity the queue grows for as long as the point runs: its percentiles measure the
        # window's length, not the server.
        reasons.append(
            f"offered rate not sustained: {law.ratio * 100:.0f}% of the offered requests/s completed, so the "
            "queue grew all window long (no steady state; the server's capacity is below this rate)"
        )
    if evidence.load_model == "closed" and law is not None and abs(law.ratio - 1.0) > LITTLE_TOLERANCE:
        reasons.append(
            f"Little's law off by {abs(law.ratio - 1) * 100:.0f}%: throughput x mean latency = "
            f"{law.measured_in_flight:.1f} in flight, but {law.expected_in_flight:.0f} users"
        )
    if evidence.upstream_peak is not None and evidence.expected_peak is not None and evidence.users:
        tolerance = peak_tolerance(evidence.users)
        if evidence.upstream_peak > evidence.users + tolerance:
            reasons.append(
                f"mock peak in flight {evidence.upstream_peak} above the {evidence.users} users: "
                "upstream calls the load did not make (a previous point's backlog, or retries)"
            )
    if evidence.dropped:
        reasons.append(f"{evidence.dropped} open-loop arrivals refused by the in-flight cap")
    if evidence.lag_p99_ms is not None and evidence.lag_p99_ms > OPEN_LAG_LIMIT_MS:
        reasons.append(
            f"open-loop send lag p99 {evidence.lag_p99_ms:.0f} ms (limit {OPEN_LAG_LIMIT_MS:.0f} ms): "
            "the load generator could not keep the schedule"
        )
    return reasons


def findings(evidence: Evidence) -> list[str]:
    """Server behaviour worth reporting that does not make the point invalid."""
    out: list[str] = []
    if evidence.upstream_peak is not None and evidence.expected_peak is not None:
        tolerance = peak_tolerance(evidence.expected_peak)
        if evidence.upstream_peak < evidence.expected_peak - tolerance:
            out.append(
                f"mock peak in flight {evidence.upstream_peak} below min(users, ceiling) = "
                f"{evidence.expected_peak}: the server ran fewer upstream calls at once than predicted"
            )
        elif evidence.upstream_peak > evidence.expected_peak + tolerance:
            out.append(
                f"mock peak in flight {evidence.upstream_peak} above the predicted ceiling "
                f"(min(users, ceiling) = {evidence.expected_peak}): the ceiling does not bind this scenario"
            )
    busy = evidence.machine_busy_percent
    if busy is not None and busy > MACHINE_SATURATED * 100.0 * evidence.cpu_count:
        out.append(
            f"the machine's CPUs were {busy / evidence.cpu_count:.0f}% busy: server, mock and load generator "
            "competed for CPU, so latency includes waiting for a core"
        )
    if evidence.server_max_process_percent is not None and evidence.server_max_process_percent > SERVER_BUSY:
        out.append(
            f"a server process used {evidence.server_max_process_percent:.0f}% of a core: the server was "
            "CPU-bound at this load on this machine"
        )
    return out
