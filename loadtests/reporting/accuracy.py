"""The accuracy section of loadtests/README.md, written from a run's ``results.json`` (never by hand).

What a sceptic checks first, each as measured over the run's valid points: Little's law (the load
generator's throughput x mean latency against the users it ran, or the arrivals it made), the mock's own
in-flight gauge against the load generator's throughput x the delay the mock injected (two independent
instruments), the busiest load-generator process, the mock's lateness, and what each capacity search found.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence

from loadtests.analysis.capacity import interval_text, level_marks
from loadtests.analysis.validity import LOADGEN_CPU_LIMIT
from loadtests.results import Point, RunResults

ONE_UPSTREAM_CALL = ("analyse", "stream")  # a request is one upstream call for its whole life


def label(p: Point) -> str:
    load = f"{p.users} users" if p.load_model == "closed" else f"{p.rate:g} rps"
    return f"{p.variant} {p.scenario} {load}"


def reason_kind(reason: str) -> str:
    """A reason's kind, for counting: its words before the first colon, numbers dropped."""
    head = reason.split(":", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"[\d.,%]+", "N", head)).strip()


def gauge_agreement(p: Point) -> float | None:
    """The mock's mean calls in flight over the load generator's throughput x the mock's mean delay, - 1."""
    if p.scenario not in ONE_UPSTREAM_CALL or not p.in_flight_mean or not p.upstream_latency_s:
        return None
    expected = p.throughput_rps * p.upstream_latency_s
    return p.in_flight_mean / expected - 1.0 if expected > 0 else None


def _worst(pairs: Sequence[tuple[float, Point]]) -> str:
    value, point = max(pairs, key=lambda pair: abs(pair[0]))
    return f"{value:+.1%} ({label(point)})"


def accuracy_block(run: RunResults, *, run_name: str) -> str:
    valid = [p for p in run.points if p.valid]
    lines = [*_header(run, run_name, valid), *_checks(valid), *_capacity_table(run)]
    return "\n".join(lines)


def _header(run: RunResults, run_name: str, valid: Sequence[Point]) -> list[str]:
    md, points = run.metadata, run.points
    big_l = md.get("upstream_latency_s")
    wall = md.get("wall_time_s")
    broken = Counter(reason_kind(p.invalid_reasons[0]) for p in points if not p.valid and p.invalid_reasons)
    return [
        f"Run `{run_name}`: preset `{md.get('preset')}`, mock `{md.get('mock_profile')}` x "
        f"{md.get('time_scale')} (L = {big_l:g} s), {len({p.variant for p in points})} variants, "
        f"{len({p.scenario for p in points})} scenarios, {len(points)} points, "
        f"{len(run.capacity)} capacity searches"
        + (f", wall time {wall / 60:.1f} min" if isinstance(wall, int | float) else "")
        + f"; commit `{str(md.get('git_commit', '?'))[:10]}`"
        + (" (dirty tree)" if md.get("git_dirty") else "")
        + f", {md.get('cpu_count')} CPUs ({md.get('cpu_model')}).",
        "",
        f"- **{len(valid)} of {len(points)} points valid.**"
        + (
            " The others, by the first rule each broke: "
            + "; ".join(f"{kind} ({n})" for kind, n in broken.most_common())
            + "."
            if len(valid) < len(points)
            else ""
        ),
    ]


def _checks(valid: Sequence[Point]) -> list[str]:
    """Little's law, the mock's gauge, the load generator's CPU, the mock's timing, over valid points."""
    lines = []
    laws = [(p.littles_law.ratio - 1.0, p) for p in valid if p.littles_law is not None]
    if laws:
        median = statistics.median(abs(v) for v, _ in laws)
        lines.append(
            f"- **Little's law** on {len(laws)} valid points (throughput x mean latency against users, or "
            f"arrivals x mean latency against requests in the system): median |error| {median:.1%}, "
            f"worst {_worst(laws)}."
        )
    gauges = [(g, p) for p in valid if (g := gauge_agreement(p)) is not None]
    if gauges:
        median = statistics.median(abs(v) for v, _ in gauges)
        lines.append(
            f"- **The mock's gauge against the load generator** on {len(gauges)} valid "
            f"{'/'.join(ONE_UPSTREAM_CALL)} points (mean calls in flight the mock counted, against "
            f"throughput x the delay it injected): median |difference| {median:.1%}, worst {_worst(gauges)}."
        )
    busiest = [
        (max(p.extra["loadgen_cpu_percent"].values()), p) for p in valid if p.extra.get("loadgen_cpu_percent")
    ]
    if busiest:
        top, point = max(busiest, key=lambda pair: pair[0])
        lines.append(
            f"- **Load generator**: its busiest process used at most {top:.0f} % of a core on a valid point "
            f"({label(point)}); a point above {LOADGEN_CPU_LIMIT:.0f} % is invalid."
        )
    late = [
        (p.extra["mock_delay_error_ms"]["p99"], p)
        for p in valid
        if isinstance(p.extra.get("mock_delay_error_ms"), dict) and p.extra["mock_delay_error_ms"].get("p99")
    ]
    if late:
        top, point = max(late, key=lambda pair: pair[0])
        lines.append(
            f"- **The mock's timing**: its calls ended at most {top:.1f} ms late at p99 ({label(point)})."
        )
    return lines


def _capacity_table(run: RunResults) -> list[str]:
    if not run.capacity:
        return []
    big_l = run.metadata.get("upstream_latency_s")
    lines = [
        "",
        "| variant | scenario | capacity (users) | bound | rps there | p95 there | levels measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in run.capacity:
        p95 = entry.get("p95_ms_at_capacity")
        p95_text = f"{p95 / 1000 / big_l:.2f} x L" if p95 and big_l else "-"
        levels = level_marks(entry.get("levels", []))
        lines.append(
            f"| {entry['variant']} | {entry['scenario']} | {interval_text(entry, unit='')} | "
            f"{entry['bound']} | "
            f"{entry['throughput_rps']:g} | {p95_text} | {levels} |"
        )
    slo = run.capacity[0].get("slo")
    return [*lines, "", f"Capacity: the most users with a valid point that meets the SLO ({slo})."]
