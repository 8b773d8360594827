"""The README's key figures: one row per variant, written from a run's ``results.json`` (never by hand).

Each cell names the point it comes from, so a reader can find it in the report: the capacity search's
result, the ``analyse`` closed-loop point at the highest level every variant ran, the highest open-loop
rate, and the ``stream`` point; server CPU and memory as the points measured them.
"""

from __future__ import annotations

import statistics

from loadtests.analysis.capacity import interval_text
from loadtests.results import Point, RunResults


def _level(points: list[Point], scenario: str, load_model: str) -> float | None:
    """The highest level of this scenario and load model that every variant of the run has."""
    by_variant: dict[str, set[float]] = {}
    for p in points:
        if p.scenario == scenario and p.load_model == load_model and not p.extra.get("capacity_search"):
            level = p.users if load_model == "closed" else p.rate
            if level is not None:
                by_variant.setdefault(p.variant, set()).add(float(level))
    if not by_variant:
        return None
    common = set.intersection(*by_variant.values())
    return max(common) if common else None


def _find(points: list[Point], variant: str, scenario: str, load_model: str, level: float) -> Point | None:
    for p in points:
        value = p.users if load_model == "closed" else p.rate
        if (p.variant, p.scenario, p.load_model) == (variant, scenario, load_model) and value == level:
            return p
    return None


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms < 10_000 else f"{ms / 1000:.0f} s"


def _closed(p: Point | None, big_l: float) -> str:
    if p is None:
        return "-"
    if not p.valid:
        # The first reason's head, its numbers kept: a reader's table, not a count of kinds.
        return f"invalid ({p.invalid_reasons[0].split(':', 1)[0] if p.invalid_reasons else '?'})"
    assert p.latency_ms is not None
    return (
        f"{p.upstream_peak_in_flight} in flight, {p.throughput_rps:.1f} rps, "
        f"p50 {_seconds(p.latency_ms.p50)} ({p.latency_ms.p50 / 1000 / big_l:.1f} x L)"
    )


def _open(p: Point | None) -> str:
    if p is None:
        return "-"
    if not p.valid:
        return "not sustained" if any("sustain" in r for r in p.invalid_reasons) else "invalid"
    assert p.latency_ms is not None
    return f"sustained, p99 {_seconds(p.latency_ms.p99)}"


def _cpu(points: list[Point], variant: str, scenario: str) -> str:
    values = [
        p.server_cpu_ms_per_request
        for p in points
        if p.variant == variant and p.scenario == scenario and p.valid and p.server_cpu_ms_per_request
    ]
    return f"{statistics.median(values):.1f}" if values else "-"


def figures_block(run: RunResults, *, run_name: str) -> str:
    points = run.points
    big_l = float(run.metadata.get("upstream_latency_s") or 1.0)
    users = _level(points, "analyse", "closed")
    rate = _level(points, "analyse", "open")
    capacity = {(e["variant"], e["scenario"]): e for e in run.capacity}
    variants = list(dict.fromkeys(p.variant for p in points))
    header = ["variant", "capacity within the SLO (analyse)"]
    if users is not None:
        header.append(f"analyse, {users:g} users")
    if rate is not None:
        header.append(f"analyse, {rate:g} rps open loop")
    header += [
        "server CPU ms per request (analyse / stream)",
        f"server USS at {users:g} users" if users else "",
    ]
    header = [h for h in header if h]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in variants:
        entry = capacity.get((variant, "analyse"))
        found = f"{interval_text(entry)} ({entry['bound']})" if entry else "-"
        row = [variant, found]
        at_users = _find(points, variant, "analyse", "closed", users) if users is not None else None
        if users is not None:
            row.append(_closed(at_users, big_l))
        if rate is not None:
            row.append(_open(_find(points, variant, "analyse", "open", rate)))
        row.append(f"{_cpu(points, variant, 'analyse')} / {_cpu(points, variant, 'stream')}")
        if users is not None:
            uss = at_users.server_uss_mb if at_users is not None else None
            row.append(f"{uss:.0f} MB" if uss else "-")
        lines.append("| " + " | ".join(row) + " |")
    md = run.metadata
    lines += [
        "",
        f"From `{run_name}/results.json` (preset `{md.get('preset')}`, L = {big_l:g} s, "
        f"{md.get('cpu_count')} CPUs, commit `{str(md.get('git_commit', '?'))[:10]}`); the capacity is the "
        "most users whose point met p95 <= 1.25 x L with no failures, and its bound what stopped it.",
    ]
    return "\n".join(lines)
