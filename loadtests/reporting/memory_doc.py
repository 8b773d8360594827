"""The report's sections on the cost of concurrency: memory per in-flight call, the capacity plan, reach.

Blocks of :mod:`loadtests.reporting.dockit`, so Markdown and HTML stay identical.
"""

from __future__ import annotations

from typing import Any

from loadtests.analysis.memory import MemoryFit
from loadtests.analysis.plan import PlanRow
from loadtests.reporting.dockit import Block, Heading, Para, Table
from loadtests.results import RunResults

PLAN_HEADERS = [
    "variant", "scenario", "N", "requests/s", "processes", "MB (USS)", "CPU cores", "this machine",
    "checked against",
]  # fmt: skip
REACH_HEADERS = [
    "variant", "streams", "L (s)", "held", "completed", "failed", "server MB (USS)", "server CPU %",
    "loadgen max %", "first failure", "detail",
]  # fmt: skip


def memory_blocks(fits: list[MemoryFit]) -> list[Block]:
    if not fits:
        return []
    rows = []
    for f in fits:
        rows.append(
            [
                f.variant,
                f.scenario,
                _num(f.kb_per_call, "{:,.0f}"),
                _num(None if f.slope_se_mb is None else f.slope_se_mb * 1024, "{:,.0f}"),
                _num(f.intercept_mb, "{:,.1f}"),
                _num(f.r2, "{:.3f}"),
                f"{f.levels} ({f.points} points)",
                f"{f.in_flight_min:.0f}-{f.in_flight_max:.0f}",
                str(f.processes or ""),
                "yes" if f.usable else f"no: {f.why_not}",
            ]
        )
    headers = [
        "variant", "scenario", "KB per call", "SE (KB)", "intercept MB", "r^2", "levels", "in flight",
        "processes", "usable",
    ]  # fmt: skip
    return [
        Heading(2, "Memory per call in flight"),
        Para(
            "Peak USS of the server's whole process tree (master, workers; sampled every 0.5 s with psutil) "
            "against the calls the mock saw in flight (its gauge, averaged over the window), fitted by least "
            "squares over the variant's valid closed-loop points: the slope is memory per in-flight call. "
            "USS, not RSS: a forked worker's shared pages appear in every worker's RSS. Peak RSS and PSS are "
            "on every point in results.json."
        ),
        Table(headers, rows),
    ]


def plan_blocks(rows: list[PlanRow]) -> list[Block]:
    if not rows:
        return []
    table = [
        [
            r.variant,
            r.scenario,
            f"{r.calls:,}",
            f"{r.rate_rps:,.0f}",
            f"{r.processes:,}" if r.processes else "",
            _num(r.memory_mb, "{:,.0f}"),
            _num(r.cpu_cores, "{:.2f}"),
            "; ".join(r.beyond) or "fits",
            r.check,
        ]
        for r in rows
    ]
    big_l = rows[0].latency_s
    bases = list(dict.fromkeys(f"{r.variant} ({r.scenario}): {r.basis}" for r in rows))
    return [
        Heading(2, "Capacity plan"),
        Para(
            f"What holding N calls in flight at L = {big_l:g} s would cost on this machine, from the "
            "measured slopes (memory per call or per worker process, CPU ms per request at N / L "
            "requests per second). "
            "A plan, not a measurement: each row names the measured point that checks it, or says there is "
            "none; nothing here sizes a run or decides a verdict."
        ),
        Table(PLAN_HEADERS, table),
        Para("Bases: " + " · ".join(bases) + "."),
    ]


def reach_blocks(run: RunResults) -> list[Block]:
    if not run.reach:
        return []
    rows = [
        [
            str(e["variant"]),
            f"{int(e['streams']):,}",
            f"{e['latency_s']:g}",
            f"{int(e.get('held') or 0):,}",
            f"{e.get('completed', 0):,}",
            f"{e.get('failed', 0):,}",
            _num(e.get("server_uss_mb"), "{:,.0f}"),
            _num(e.get("server_cpu_percent"), "{:.0f}"),
            _num(e.get("loadgen_max_percent"), "{:.0f}"),
            str(e.get("first_failure", "")),
            str(e.get("detail", "")),
        ]
        for e in run.reach
    ]
    md = run.metadata.get("reach_settings", {})
    return [
        Heading(2, "Reach: concurrent streams"),
        Para(
            "Each level is a closed-loop stream point (`python -m loadtests reach`) held for a window "
            f"after one L; {md.get('nofile', 'open-file limit not recorded')}. held = the most streams the "
            "mock saw in flight at once; first failure = what broke first, from the point's own evidence."
        ),
        Table(REACH_HEADERS, rows),
    ]


def _num(value: Any, fmt: str) -> str:
    return "" if value is None else fmt.format(value)
