"""The rules a claim of the verdict is judged by, with their thresholds: caps from the mock's exact gauge,
"100+ comfortably", gthread's ceiling, the framework claim and the price of 128 in flight; each judges
measured levels only, and decides only where the evidence clears its threshold by more than the
interval (``loadtests.analysis.verdict`` says which claims a run gets).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from loadtests.analysis.levels import Level
from loadtests.results import RunResults

Status = Literal["reproduced", "not_reproduced", "depends", "inconclusive"]
CAP_SATURATION_FACTOR = 2
CAP_MAX_FAILED_SHARE = 0.01  # a server that fails requests cannot show its cap
CAP_THROUGHPUT_SLACK = 1.10
# Below C / L the cap still holds when each request also costs the server a few ms of its own: at a short
# L (a time-scaled run, L = 0.1 s) that is 10 % of the period.
CAP_THROUGHPUT_LOW = 0.80
COMFORT_MIN_USERS = 100
COMFORT_P95_FACTOR = 1.25
COMFORT_THROUGHPUT_FRACTION = 0.90
FOLLOW_FRACTION = 0.90
COMFORT_DEFINITION = (
    f"'comfortably' means, at a load of at least {COMFORT_MIN_USERS} concurrent users: no failed request, "
    f"the mock saw at least {COMFORT_MIN_USERS} upstream calls in flight, p95 latency within "
    f"{COMFORT_P95_FACTOR:g} x the upstream latency L, and throughput at least "
    f"{COMFORT_THROUGHPUT_FRACTION:.0%} of users / L (under a mock profile whose calls vary, the p95 rule "
    f"reads on what the server adds: overhead p95 within {COMFORT_P95_FACTOR - 1:g} x L, and users / L "
    "takes the mean call the level met)"
)


@dataclass(frozen=True, kw_only=True)
class Claim:
    id: str
    statement: str
    status: Status
    evidence: str
    source: Literal["article", "nuance"]


@dataclass(frozen=True, kw_only=True)
class CapSpec:
    id: str
    variant: str
    cap: int
    statement: str


@dataclass(frozen=True, kw_only=True)
class ComfortSpec:
    id: str
    variant: str
    statement: str


GTHREAD = "flask-gthread"


def upstream_latency(run: RunResults) -> float | None:
    value = run.metadata.get("upstream_latency_s")
    return float(value) if isinstance(value, int | float) and value > 0 else None


def no_data(claim_id: str, statement: str, source: Literal["article", "nuance"], why: str) -> Claim:
    return Claim(id=claim_id, statement=statement, status="inconclusive", evidence=why, source=source)


def missing_data(
    variant: str, levels: Sequence[Level], big_l: float | None, scenario: str | None
) -> str | None:
    if big_l is None:
        return "the run's metadata has no upstream_latency_s (L), so no ceiling can be computed"
    if scenario is None:
        return "the run has no valid closed-loop points"
    if not levels:
        return f"{variant} has no valid closed-loop point in the {scenario} scenario"
    return None


def cap_claim(
    spec: CapSpec,
    levels: list[Level],
    ignored: list[Level],
    big_l: float | None,
    scenario: str | None,
    source: Literal["article", "nuance"],
) -> Claim:
    why = missing_data(spec.variant, levels, big_l, scenario)
    if why is not None or big_l is None:
        return no_data(spec.id, spec.statement, source, why or "")
    above = [lv for lv in levels if lv.users > spec.cap]
    need = CAP_SATURATION_FACTOR * spec.cap
    if not above or above[-1].users < need:
        return no_data(
            spec.id,
            spec.statement,
            source,
            f"{spec.variant} ({scenario}): highest valid load {levels[-1].users} users; a level of at "
            f"least {need} users ({CAP_SATURATION_FACTOR} x {spec.cap}) is needed to see whether it stops at "
            f"{spec.cap}",
        )
    top = max(above, key=lambda lv: lv.throughput_rps * _latency(lv, big_l))  # rps x L: calls per L
    limit_rps = spec.cap / _latency(top, big_l)
    highest = above[-1]
    peaks = [lv for lv in above if lv.peak_in_flight is not None]
    peak_top = max(peaks, key=lambda lv: (lv.peak_in_flight or 0, lv.load)) if peaks else None
    # Both bounds: "holds at most C" is about a server that holds C and no more. One that holds fewer (a
    # flask-sync with 1 worker) contradicts it as much as one that holds more.
    thr_ratio = top.throughput_rps / limit_rps
    thr_low, thr_high = (v / limit_rps for v in (top.throughput_ci_rps or (top.throughput_rps,) * 2))
    thr_ok = thr_low >= CAP_THROUGHPUT_LOW and thr_high <= CAP_THROUGHPUT_SLACK
    thr_noise = not thr_ok and thr_high >= CAP_THROUGHPUT_LOW and thr_low <= CAP_THROUGHPUT_SLACK
    # The mock's gauge is exact: no tolerance on either side.
    measured = None if peak_top is None else int(peak_top.peak_in_flight or 0)
    failed = sum(lv.failed for lv in above)
    total = sum(lv.failed + lv.completed for lv in above)
    failed_share = failed / total if total else 0.0
    span = f"{len(above)} valid level{'s' if len(above) > 1 else ''} " + (
        f"from {above[0].users} to {highest.users} users" if len(above) > 1 else f"at {highest.users} users"
    )
    if peak_top is None:
        peak_text = "the mock reported no in-flight peak"
    elif measured == spec.cap:
        peak_text = f"peak in flight exactly {spec.cap} (max {measured} at {peak_top.users} users)"
    else:
        peak_text = (
            f"measured ceiling {measured} in flight (max at {peak_top.users} users), "
            f"{'above' if (measured or 0) > spec.cap else 'below'} the claimed {spec.cap}"
        )
    thr_text = (
        f"throughput at most {top.throughput_rps:.3g} rps ({top.users} users) vs "
        f"{spec.cap}/L = {limit_rps:.3g} rps ({_pct(thr_ratio)}{_interval_pct(thr_low, thr_high)})"
    )
    queue_text = ""
    if highest.p50_ms is not None:
        highest_l = _latency(highest, big_l)
        queue_text = (
            f"; p50 latency {highest.p50_ms / 1000:.3g} s at {highest.users} users = "
            f"{highest.p50_ms / 1000 / highest_l:.3g} x L (L = {highest_l:g} s): the rest queue"
        )
    evidence = f"{spec.variant} ({scenario}, {span}): {peak_text}; {thr_text}{queue_text}"
    status, why_not = _cap_status(spec.cap, measured, failed_share, thr_ok=thr_ok, thr_noise=thr_noise)
    evidence += why_not
    if ignored:
        evidence += f"; {len(ignored)} invalid level(s) not used"
    return Claim(id=spec.id, statement=spec.statement, status=status, evidence=evidence, source=source)


def _cap_status(
    cap: int, measured: int | None, failed_share: float, *, thr_ok: bool, thr_noise: bool
) -> tuple[Status, str]:
    """The cap claim's status from the gauge (exact), the failures and the throughput's interval, with
    what to add to the evidence when it is not decided."""
    if measured is None:
        return "inconclusive", (
            "; without the mock's ground truth, throughput alone cannot tell a cap from a slow server"
        )
    if failed_share > CAP_MAX_FAILED_SHARE:
        return "inconclusive", (
            f"; {failed_share:.1%} of requests failed, so a low peak may be failures rather than a cap"
        )
    if measured != cap:
        return "not_reproduced", ""
    if thr_ok:
        return "reproduced", ""
    if thr_noise:
        return "inconclusive", (
            f"; within the noise: the throughput's interval reaches outside {_pct(CAP_THROUGHPUT_LOW)}-"
            f"{_pct(CAP_THROUGHPUT_SLACK)} of {cap}/L"
        )
    return "inconclusive", "; the mock's peak matches but the throughput does not, so neither decides"


def measured_ceiling(levels: Sequence[Level]) -> Level | None:
    """The valid level that shows a concurrency ceiling: the mock's peak stopped following the users
    (users above the peak by more than the sweep's tolerance) while no request failed. The lowest such
    level with the highest peak."""
    from loadtests.analysis.validity import peak_tolerance

    capped = [
        lv
        for lv in levels
        if lv.peak_in_flight is not None
        and lv.users > lv.peak_in_flight + peak_tolerance(lv.users)
        and lv.failed == 0
    ]
    return max(capped, key=lambda lv: (lv.peak_in_flight or 0, -lv.load)) if capped else None


def _latency(lv: Level, big_l: float) -> float:
    """The L a level is judged by: its own when the run's levels differ in it, else the run's."""
    return lv.latency_s or big_l


def _l_header(levels: Sequence[Level], big_l: float) -> str:
    """ ", L = x s" for a claim's evidence when every level shares the run's L; each level says its own
    otherwise."""
    return f", L = {big_l:g} s" if all(_latency(lv, big_l) == big_l for lv in levels) else ""


def _comfort_failures(lv: Level, big_l: float) -> tuple[list[str], list[str]]:
    """(what breaks the rule, what is within the noise of it) at one level: the gauge and the failures are
    exact; the p95 and the throughput are judged by their 95 % intervals (a decision only when the whole
    interval is on one side of the threshold)."""
    big_l = _latency(lv, big_l)
    failures, noise = [], []
    if lv.failed:
        failures.append(f"{lv.failed} failed ({lv.error_rate:.1%})")
    in_flight = lv.in_flight
    if in_flight is None or in_flight < COMFORT_MIN_USERS:
        failures.append(f"in flight {figure(in_flight)} < {COMFORT_MIN_USERS}")
    latency = _overhead_rule(lv, big_l) if lv.drawn_upstream else _p95_rule(lv, big_l)
    failures += latency[0]
    noise += latency[1]
    # Under drawn latencies users / L holds with L the mean upstream call the level met.
    period = (lv.upstream_mean_s or big_l) if lv.drawn_upstream else big_l
    need = COMFORT_THROUGHPUT_FRACTION * lv.users / period
    low, high = lv.throughput_ci_rps or (lv.throughput_rps, lv.throughput_rps)
    if high < need:
        failures.append(
            f"throughput {lv.throughput_rps:.3g} rps < {COMFORT_THROUGHPUT_FRACTION:.0%} of users/L"
        )
    elif low < need:
        noise.append(
            f"throughput interval [{low:.3g}, {high:.3g}] rps straddles {COMFORT_THROUGHPUT_FRACTION:.0%} "
            "of users/L"
        )
    return failures, noise


def _p95_rule(lv: Level, big_l: float) -> tuple[list[str], list[str]]:
    """Every call takes L: p95 latency within COMFORT_P95_FACTOR x L."""
    limit_ms = COMFORT_P95_FACTOR * big_l * 1000.0
    if lv.p95_ms is not None and lv.p95_at_limit is not None and abs(lv.p95_at_limit[0] - limit_ms) < 0.5:
        return _p95_at_limit_rule(lv, lv.p95_at_limit[1], lv.p95_at_limit[2], limit_ms)
    p95 = lv.p95_ci_ms
    if lv.p95_ms is None or (p95 is not None and p95[0] > limit_ms):
        return [f"p95 {_seconds(lv.p95_ms)} > {COMFORT_P95_FACTOR:g} x L"], []
    if p95 is None:
        return [], [f"p95 {_seconds(lv.p95_ms)} has no interval (too few completions)"]
    if p95[1] > limit_ms:
        return [], [
            f"p95 interval [{_seconds(p95[0])}, {_seconds(p95[1])}] straddles {COMFORT_P95_FACTOR:g} x L"
        ]
    return [], []


def _p95_at_limit_rule(
    lv: Level, interval: tuple[float, float] | None, lower: float | None, limit_ms: float
) -> tuple[list[str], list[str]]:
    """The p95 against its limit, by the interval whose correlation comes from the limit's own
    exceedances (loadtests.analysis.intervals.limit_interval)."""
    rule = f"{COMFORT_P95_FACTOR:g} x L"
    if (interval is not None and interval[0] > limit_ms) or (lower is not None and lower > limit_ms):
        return [f"p95 {_seconds(lv.p95_ms)} > {rule}"], []
    if interval is None:
        return [], [
            f"p95 {_seconds(lv.p95_ms)} is not bounded against {rule} (too few periods or completions)"
        ]
    if interval[1] > limit_ms:
        return [], [
            f"p95 interval at the limit [{_seconds(interval[0])}, {_seconds(interval[1])}] straddles {rule}"
        ]
    return [], []


def _overhead_rule(lv: Level, big_l: float) -> tuple[list[str], list[str]]:
    """Calls with a tail: p95 latency against L would measure the upstream, so the same allowance is put on
    what the server added (latency minus each request's own upstream call): p95 within (factor - 1) x L."""
    limit_ms = (COMFORT_P95_FACTOR - 1.0) * big_l * 1000.0
    rule = f"{COMFORT_P95_FACTOR - 1.0:g} x L = {limit_ms:.0f} ms"
    found, interval = lv.overhead_p95_ms, lv.overhead_p95_ci_ms
    if found is None:
        return [], ["no request joined with its upstream call: no overhead to judge"]
    if interval is not None and interval[0] > limit_ms:
        return [f"overhead p95 {found:.0f} ms > {rule}"], []
    if interval is None:
        return [], [f"overhead p95 {found:.0f} ms has no interval (too few completions)"]
    if interval[1] > limit_ms:
        return [], [f"overhead p95 interval [{interval[0]:.0f}, {interval[1]:.0f}] ms straddles {rule}"]
    return [], []


def _comfort_figures(lv: Level, big_l: float, *, own_l: bool = False) -> str:
    big_l = _latency(lv, big_l)
    own = f" (L = {big_l:g} s)" if own_l else ""
    source = "peak" if lv.peak_in_flight is not None else "Little's-law"
    p95 = f"p95 {_seconds(lv.p95_ms)}" + (f" = {lv.p95_ms / 1000 / big_l:.2f} x L" if lv.p95_ms else "")
    if lv.p95_ci_ms is not None and lv.p95_ci_ms[0] != lv.p95_ci_ms[1]:
        p95 += f" [{lv.p95_ci_ms[0] / 1000 / big_l:.2f}, {lv.p95_ci_ms[1] / 1000 / big_l:.2f}]"
    if lv.drawn_upstream and lv.overhead_p95_ms is not None:
        p95 += f", overhead p95 {lv.overhead_p95_ms:.0f} ms"
    return (
        f"at {lv.users} users{own}: {lv.failed} failed, {source} {figure(lv.in_flight)} in flight, {p95}, "
        f"{lv.throughput_rps:.3g} rps ({_pct(lv.throughput_rps / (lv.users / big_l))} of users/L)"
    )


def comfort_claim(
    spec: ComfortSpec,
    levels: list[Level],
    big_l: float | None,
    scenario: str | None,
    source: Literal["article", "nuance"],
) -> Claim:
    why = missing_data(spec.variant, levels, big_l, scenario)
    if why is not None or big_l is None:
        return no_data(spec.id, spec.statement, source, why or "")
    high = [lv for lv in levels if lv.users >= COMFORT_MIN_USERS]
    ceiling = measured_ceiling(levels)
    if ceiling is not None and (ceiling.peak_in_flight or 0) < COMFORT_MIN_USERS:
        # Measured, not predicted: a server that stops at N < 100 in flight cannot hold 100+.
        return Claim(
            id=spec.id,
            statement=spec.statement,
            status="not_reproduced",
            evidence=(
                f"{spec.variant} ({scenario}, L = {_latency(ceiling, big_l):g} s): measured ceiling "
                f"{ceiling.peak_in_flight} in flight at {ceiling.users} users (the mock's gauge stopped "
                f"following the users), {ceiling.throughput_rps:.3g} rps = "
                f"{ceiling.throughput_rps * _latency(ceiling, big_l):.3g}/L, p95 "
                f"{_seconds(ceiling.p95_ms)}: it cannot hold {COMFORT_MIN_USERS}+ "
                f"(predicted ceiling {ceiling.predicted_ceiling})"
            ),
            source=source,
        )
    if not high:
        return no_data(
            spec.id,
            spec.statement,
            source,
            f"{spec.variant} ({scenario}): no valid level at {COMFORT_MIN_USERS}+ users "
            f"(highest valid: {levels[-1].users} users)",
        )
    results = [(lv, *_comfort_failures(lv, big_l)) for lv in high]
    header = _l_header(high, big_l)
    parts = [
        _comfort_figures(lv, big_l, own_l=not header)
        + (" (not comfortable: " + ", ".join(f) + ")" if f else "")
        + (" (within the noise: " + ", ".join(n) + ")" if n and not f else "")
        for lv, f, n in results
    ]
    evidence = f"{spec.variant} ({scenario}{header}) " + "; ".join(parts)
    _, first_failures, first_noise = results[0]
    if not first_failures and not first_noise:
        status: Status = "reproduced"
    elif all(f for _, f, _ in results):
        status = "not_reproduced"
    elif not first_failures:
        status = "inconclusive"
        evidence += f"; at {high[0].users} users the evidence does not clear the threshold: within the noise"
    else:
        status = "inconclusive"
        evidence += f"; fails at {high[0].users} users but passes higher up, so the data disagree"
    return Claim(id=spec.id, statement=spec.statement, status=status, evidence=evidence, source=source)


def gthread_claim(
    levels: list[Level], ceiling: int, workers: int, big_l: float | None, scenario: str | None
) -> Claim:
    statement = (
        f"Flask on gunicorn gthread (threads per worker) holds its {ceiling} predicted requests in flight"
    )
    cid = "flask-gthread-holds-ceiling"
    why = missing_data(GTHREAD, levels, big_l, scenario)
    if why is not None or big_l is None:
        return no_data(cid, statement, "nuance", why or "")
    at = [lv for lv in levels if lv.users >= ceiling]
    if not at:
        return no_data(
            cid,
            statement,
            "nuance",
            f"{GTHREAD} ({scenario}): no valid level at or above its ceiling of {ceiling} users "
            f"(highest valid: {levels[-1].users} users)",
        )
    lv = at[0]
    big_l = _latency(lv, big_l)
    in_flight = lv.in_flight or 0.0
    evidence = (
        f"{GTHREAD} ({scenario}) at {lv.users} users: {figure(lv.in_flight)} in flight of {ceiling} "
        "predicted, "
        f"{lv.throughput_rps:.3g} rps vs {ceiling}/L = {ceiling / big_l:.3g} rps "
        f"({_pct(lv.throughput_rps / (ceiling / big_l))})"
    )
    low, high = lv.throughput_ci_rps or (lv.throughput_rps, lv.throughput_rps)
    need = FOLLOW_FRACTION * ceiling / big_l
    if in_flight >= FOLLOW_FRACTION * ceiling and low < need <= high:
        status: Status = "inconclusive"
        evidence += (
            f"; within the noise: the throughput's interval [{low:.3g}, {high:.3g}] rps straddles {need:.3g}"
        )
    elif in_flight >= FOLLOW_FRACTION * ceiling and low >= need:
        status = "reproduced"
    elif in_flight <= workers:
        status = "not_reproduced"
    else:
        status = "depends"
        evidence += (
            f"; more than its {workers} workers but short of the ceiling: keep-alive connections can pile up "
            "unevenly on workers"
        )
    return Claim(id=cid, statement=statement, status=status, evidence=evidence, source="nuance")


def _pct(ratio: float) -> str:
    delta = ratio - 1.0
    if abs(delta) < 0.01:
        return "within 1%"
    return f"{ratio:.0%}"


def _interval_pct(low: float, high: float) -> str:
    """' [95%, 104%]' for an interval of ratios; nothing for a point figure without one."""
    return "" if low == high else f" [{low:.0%}, {high:.0%}]"


def figure(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 or value >= 10 else f"{value:.1f}"


def _seconds(ms: float | None) -> str:
    return "unknown" if ms is None else f"{ms / 1000:.3g} s"


SYNC_PRICE_ID = "price-of-128-sync-vs-async"
SYNC_PRICE_CALLS = 128
SYNC_PRICE_STATEMENT = (
    "Holding 128 calls in flight costs more memory with sync workers (one process per call) than with one "
    "async process"
)


def sync_price_claim(
    run: RunResults, *, sync: str = "flask-sync", asynchronous: str = "fastapi-async"
) -> Claim | None:
    """flask-sync's measured worker USS times 128 processes (plus its measured master and launcher)
    against fastapi-async's measured tree at the valid point nearest 128 calls in flight; CPU from each
    one's measured CPU per request at 128 / L requests per second. None when the run has no memory
    readings for either (then the claim is not tested, and older runs' verdicts stay as they were)."""
    from loadtests.analysis.memory import worker_uss_mb

    big_l = upstream_latency(run)
    n = SYNC_PRICE_CALLS
    sync_points = [p for p in run.points if p.variant == sync and p.valid and p.load_model == "closed"]
    async_points = [
        p
        for p in run.points
        if p.variant == asynchronous and p.valid and p.load_model == "closed" and p.in_flight_mean
    ]
    if not any(p.server_uss_mb is not None for p in [*sync_points, *async_points]):
        return None  # a run from before memory was measured (or without either variant): not tested
    worker = worker_uss_mb(sync_points)
    with_memory = [p for p in sync_points if p.server_uss_mb is not None and p.extra.get("memory")]
    near = [p for p in async_points if p.server_uss_mb is not None and (p.in_flight_mean or 0) >= 0.75 * n]
    missing = []
    if big_l is None:
        missing.append("the run has no L")
    if worker is None or not with_memory:
        missing.append(f"{sync} has no valid point with per-worker memory")
    if not near:
        missing.append(f"{asynchronous} has no valid point with at least {0.75 * n:.0f} calls in flight")
    if missing:
        return no_data(SYNC_PRICE_ID, SYNC_PRICE_STATEMENT, "nuance", "; ".join(missing))
    assert worker is not None and big_l is not None
    # The sync tree's parts that do not grow with workers (gunicorn's master, the launcher), measured.
    base = statistics.median(
        (p.server_uss_mb or 0.0) - sum(p.extra["memory"].get("leaf_uss_mb", [])) for p in with_memory
    )
    sync_mb = base + n * worker
    point = min(near, key=lambda p: abs((p.in_flight_mean or 0) - n))
    async_mb = point.server_uss_mb or 0.0
    rate = n / big_l
    sync_cpu = _median_cpu(sync_points)
    async_cpu = point.server_cpu_ms_per_request
    cpu_text = "CPU unknown"
    if sync_cpu is not None and async_cpu is not None:
        cpu_text = (
            f"CPU at {n}/L = {rate:.0f} requests/s: {sync} {sync_cpu:.1f} ms per request = "
            f"{sync_cpu * rate / 1000:.2f} cores, {asynchronous} {async_cpu:.1f} ms = "
            f"{async_cpu * rate / 1000:.2f} cores (each measured per request)"
        )
    status: Status = "reproduced" if sync_mb > async_mb else "not_reproduced"
    ratio = f", {sync_mb / async_mb:.0f}x less" if async_mb > 0 else ""
    evidence = (
        f"{sync}: {n} x {worker:.1f} MB (median worker USS, measured on its {len(with_memory)} valid "
        f"point(s)) + {base:.1f} MB (master and launcher) = {sync_mb:,.0f} MB, derived from measured "
        f"per-process memory, not a measured {n}-process tree; {asynchronous} at {point.users} users "
        f"({point.in_flight_mean:.0f} in flight): {async_mb:,.0f} MB USS measured for the whole tree{ratio}; "
        f"{cpu_text}"
    )
    return Claim(
        id=SYNC_PRICE_ID, statement=SYNC_PRICE_STATEMENT, status=status, evidence=evidence, source="nuance"
    )


def _median_cpu(points: Sequence[Any]) -> float | None:
    values = [
        p.server_cpu_ms_per_request
        for p in points
        if p.server_cpu_ms_per_request is not None and not p.extra.get("server_cpu_bound")
    ]
    return statistics.median(values) if values else None
