"""Is a point one a performance engineer would sign? Pure functions, so every rule is unit-tested.

Invalid (the point is kept, with every reason):
- a load-generator process above ``LOADGEN_CPU_LIMIT`` percent of one core over the window: the load
  generator, not the server, may have set the pace;
- the warm-up did not settle within its bound (``loadtests.analysis.steady``), or the window itself drifted;
- open loop: the backlog (requests in the system) grew over the window by more than ``LITTLE_TOLERANCE``
  of the arrivals that happened *and* by more than Poisson noise in the number in the system explains
  (3 standard deviations of the difference of two counts of mean arrival rate x mean latency): the queue
  grew, the server's capacity is below the offered rate;
- requests that hung: open at the window's end for longer than the window and than 1.5 x the slowest
  answer it saw (a queued request is as old as the answers ahead of it, a hung one older than all);
- the mock was late (observed minus injected delay, p99 on its own clock) by more than
  ``MOCK_LATE_FRACTION`` of L (at least ``MOCK_LATE_FLOOR_MS``): the upstream's timing, the ground truth,
  cannot be trusted;
- closed loop: Little's law off by more than ``LITTLE_TOLERANCE`` (throughput x mean latency should equal
  the number of users; if not, users were idle, missing or mis-timed);
- closed loop: the mock saw more upstream calls in flight than there are users (beyond a tolerance): calls
  the load did not make (a previous point's backlog, retries);
- processes outside the measurement used more than ``OTHER_CPU_LIMIT`` percent of a core during the window
  while the whole machine was more than ``MACHINE_BUSY_LIMIT`` busy (a noisy neighbour the measurement had
  to compete with for CPU moves every number on a 2-core machine);
- the machine changed under the measurement: the hypervisor took more than ``STEAL_LIMIT`` percent of the
  machine's CPU over the window (steal);
- zero completions in the window; open-loop arrivals refused by the in-flight cap; an open-loop send lag
  (actual minus intended send time) whose p99 exceeds ``OPEN_LAG_LIMIT_MS``.

A mock peak that differs from min(users, ceiling) while Little's law holds is not a harness fault: the load
generator demonstrably kept ``users`` requests in flight, so the server ran fewer (gunicorn gthread with
keep-alive connections piled on some workers) or more (a streaming endpoint that holds no thread between
chunks) upstream calls at once than theory predicts. That is a finding about the server, recorded in
``extra["findings"]`` with a CPU-bound server process, and the point stays valid so the charts show it.

One core's speed (a fixed piece of work, timed in CPU time before and after the window) that moved by more
than ``CALIBRATION_CHANGE_LIMIT`` is a finding too, not a reason: both timings run while the load does, and
on a 2-vCPU VM whose vCPUs may be one core's two threads, a busy sibling alone moved it by 22 % (a sweep of
4 users during the test suite), so it flags the point's CPU figures rather than voiding its latencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.results import LittlesLaw

LOADGEN_CPU_LIMIT = 90.0  # percent of one core, per load-generator process
OTHER_CPU_LIMIT = 35.0  # percent of one core used by processes outside the measurement (a noisy machine)
SERVER_BUSY = 90.0  # percent of one core: a server process this busy is CPU-bound (a finding)
MACHINE_SATURATED = 0.95  # fraction of all cores busy: CPU ran out (a finding)
MACHINE_BUSY_LIMIT = 0.75  # fraction of all cores busy: beyond it, processes wait for a CPU
LITTLE_TOLERANCE = 0.10
OPEN_LAG_LIMIT_MS = 50.0
MOCK_LATE_FRACTION = 0.02
# The mock's timers and a loaded 2-core machine's scheduling: below this, an L too short to hold 2 % of it
# (time-scaled test runs) is not the mock's fault.
MOCK_LATE_FLOOR_MS = 10.0
STEAL_LIMIT = 5.0  # percent of the machine's CPU the hypervisor gave to others over the window
CALIBRATION_CHANGE_LIMIT = 0.20  # one core's speed moved by more than this between window start and end


# Reasons that say the measurement's surroundings were off at that moment (the mock's own clock stalled, a
# neighbour took the CPU), not what the server did: a capacity search measures such a level once more.
MOCK_LATE = "the mock was late by"
OTHER_CPU = "other processes used"
MACHINE_CHANGED = "the machine changed during the window"
TRANSIENT_REASONS = (MOCK_LATE, OTHER_CPU, MACHINE_CHANGED)


def only_transient(reasons: Sequence[str]) -> bool:
    """True when a point is invalid and every reason is one of :data:`TRANSIENT_REASONS`."""
    return bool(reasons) and all(reason.startswith(TRANSIENT_REASONS) for reason in reasons)


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
    arrivals: int | None = None  # requests that arrived in the window (open loop: what was offered)
    backlog_growth: int | None = None  # requests in the system at the window's end minus at its start
    mean_latency_s: float | None = None  # of the requests that finished in the window
    window_s: float | None = None
    hung: int = 0
    mock_late_p99_ms: float | None = None  # the mock's observed minus injected delay, p99
    upstream_latency_s: float = 0.0  # L
    steady_state: dict[str, object] | None = None  # loadtests.driver.pointrun.steady_record
    steal_percent: float | None = None  # of the machine's CPU over the window
    calibration_change: float | None = None  # one core's speed: after / before - 1 (positive: slower)


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
            f"{OTHER_CPU} {other:.0f}% of a core while the machine was "
            f"{busy / capacity * 100:.0f}% busy (limits {OTHER_CPU_LIMIT:.0f}% and "
            f"{MACHINE_BUSY_LIMIT * 100:.0f}%): the measurement competed for CPU"
        )
    reasons.extend(_machine_reasons(evidence))
    if evidence.completed == 0:
        reasons.append("no request completed in the measured window")
    law = evidence.littles_law
    growth_limit = open_backlog_limit(evidence)
    if growth_limit is not None and (evidence.backlog_growth or 0) > growth_limit:
        # Above capacity the queue grows for as long as the point runs: its percentiles measure the
        # window's length, not the server.
        reasons.append(
            f"offered rate not sustained: the backlog grew by {evidence.backlog_growth} requests over the "
            f"window against {evidence.arrivals} arrivals (limit {growth_limit:.0f}), so the queue grew all "
            "window long (no steady state; the server's capacity is below this rate)"
        )
    reasons.extend(_steady_reasons(evidence.steady_state))
    if evidence.hung:
        reasons.append(
            f"{evidence.hung} request(s) hung: open for longer than the window and than 1.5 x the slowest "
            "answer it saw"
        )
    late, big_l = evidence.mock_late_p99_ms, evidence.upstream_latency_s
    late_limit = max(MOCK_LATE_FRACTION * big_l * 1000.0, MOCK_LATE_FLOOR_MS)
    if late is not None and big_l > 0 and late > late_limit:
        reasons.append(
            f"{MOCK_LATE} {late:.1f} ms at p99 (limit {MOCK_LATE_FRACTION:.0%} of L, at least "
            f"{MOCK_LATE_FLOOR_MS:g} ms: {late_limit:.0f} ms): the upstream's own timing was off"
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


def _machine_reasons(evidence: Evidence) -> list[str]:
    steal = evidence.steal_percent
    if steal is not None and steal > STEAL_LIMIT:
        return [
            f"{MACHINE_CHANGED}: the hypervisor took {steal:.1f}% of the machine's CPU (steal; limit "
            f"{STEAL_LIMIT:g}%)"
        ]
    return []


def open_backlog_limit(evidence: Evidence) -> float | None:
    """Open loop: how much the number of requests in the system may grow over the window before the queue
    counts as growing: LITTLE_TOLERANCE of the arrivals, and beyond the noise of an idle server (the
    number in the system of an M/G/inf queue is Poisson with mean lambda x W; two counts differ by up to
    3 standard deviations, sqrt(2 lambda W), plus one)."""
    if evidence.load_model != "open" or evidence.arrivals is None or evidence.mean_latency_s is None:
        return None
    # lambda x W, from the arrivals that happened
    seconds = evidence.window_s or 0.0
    in_system = evidence.arrivals / seconds * evidence.mean_latency_s if seconds > 0 else 0.0
    return max(LITTLE_TOLERANCE * evidence.arrivals, 3.0 * (2.0 * in_system) ** 0.5 + 1.0)


def _steady_reasons(record: dict[str, object] | None) -> list[str]:
    if not record:
        return []
    out: list[str] = []
    if record.get("abandoned"):
        out.append(f"cut short: {record['abandoned']}")
    elif record.get("detected") and not record.get("settled"):
        out.append(
            f"no steady state within the warm-up bound of {record.get('bound_s')} s: "
            + _unsettled(record.get("warmup_figures"))
        )
    if record.get("window_settled") is False:
        figures = record.get("window_figures")
        latency = figures.get("latency_ms") if isinstance(figures, dict) else None
        out.append("the window itself was not steady: " + _unsettled({"latency_ms": latency}))
    return out


def _unsettled(figures: object) -> str:
    parts = []
    if isinstance(figures, dict):
        for name, fig in figures.items():
            if isinstance(fig, dict) and not fig.get("settled"):
                rel = fig.get("relative_drift")
                parts.append(
                    f"{name} drifted {rel * 100:+.0f}%" if isinstance(rel, float) else f"{name} moved"
                )
            elif fig is None and name != "in_flight":
                parts.append(f"no {name} data")
    return ", ".join(parts) or "a series moved"


def findings(evidence: Evidence) -> list[str]:
    """Server behaviour worth reporting that does not make the point invalid."""
    out: list[str] = []
    if evidence.upstream_peak is not None and evidence.expected_peak is not None:
        tolerance = peak_tolerance(evidence.expected_peak)
        if evidence.upstream_peak < evidence.expected_peak - tolerance:
            out.append(
                f"prediction contradicted: mock peak in flight {evidence.upstream_peak} below min(users, "
                f"ceiling) = {evidence.expected_peak}: the server ran fewer upstream calls at once than "
                "predicted"
            )
        elif evidence.upstream_peak > evidence.expected_peak + tolerance:
            out.append(
                f"prediction contradicted: mock peak in flight {evidence.upstream_peak} above the predicted "
                f"ceiling (min(users, ceiling) = {evidence.expected_peak}): the ceiling does not bind this "
                "scenario"
            )
    busy = evidence.machine_busy_percent
    if busy is not None and busy > MACHINE_SATURATED * 100.0 * evidence.cpu_count:
        out.append(
            f"the machine's CPUs were {busy / evidence.cpu_count:.0f}% busy: server, mock and load generator "
            "competed for CPU, so latency includes waiting for a core"
        )
    change = evidence.calibration_change
    if change is not None and abs(change) > CALIBRATION_CHANGE_LIMIT:
        out.append(
            f"one core's speed moved by {change:+.0%} over the window (a fixed piece of work, timed in CPU "
            f"time before and after; flagged above {CALIBRATION_CHANGE_LIMIT:.0%}): CPU per request here "
            "carries it"
        )
    if evidence.server_max_process_percent is not None and evidence.server_max_process_percent > SERVER_BUSY:
        out.append(
            f"a server process used {evidence.server_max_process_percent:.0f}% of a core: the server was "
            "CPU-bound at this load on this machine"
        )
    return out
