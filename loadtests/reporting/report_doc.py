"""The report's document: its sections as blocks of :mod:`loadtests.reporting.dockit`, built once from a run
and its analysis, then rendered as Markdown and HTML by the kit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loadtests.analysis.capacity import interval_text, level_marks
from loadtests.analysis.claims import COMFORT_DEFINITION, upstream_latency
from loadtests.analysis.run_analysis import RunAnalysis
from loadtests.analysis.verdict import Verdict
from loadtests.reporting.cpu_doc import cpu_blocks
from loadtests.reporting.dockit import Block, ChartEntry, Claims, FigureBlock, Heading, Para, Table
from loadtests.reporting.memory_doc import memory_blocks, plan_blocks, reach_blocks
from loadtests.reporting.provider_doc import provider_blocks
from loadtests.results import Point, RunResults

ARTICLE_QUOTE = (
    '"Flask + Gunicorn (4 workers): 4 concurrent requests max before blocking; '
    'FastAPI + Uvicorn: handles 100+ concurrent requests comfortably"'
)


def document(
    run: RunResults,
    analysis: RunAnalysis,
    charts: Sequence[ChartEntry],
    *,
    run_name: str,
    story: Sequence[ChartEntry] = (),
) -> list[Block]:
    """Every section of the report, in reading order: the story set first, the full catalogue later."""
    md = run.metadata
    big_l = upstream_latency(run)
    blocks: list[Block] = [Heading(1, f"Benchmark report: {run_name}")]
    if md.get("synthetic"):
        blocks.append(
            Para("**Synthetic data**: these numbers follow the queueing model; nothing was measured.")
        )
    blocks.append(
        Para(
            f"Preset `{md.get('preset', '?')}`, mock profile `{md.get('mock_profile', '?')}`, time scale "
            f"{md.get('time_scale', '?')}, upstream latency L = {f'{big_l:g} s' if big_l else 'unknown'}; "
            f"{md.get('cpu_model', 'unknown CPU')} with {md.get('cpu_count', '?')} CPUs; "
            f"started {md.get('started_at', '?')}, git `{str(md.get('git_commit', '?'))[:10]}`"
            f"{' (dirty)' if md.get('git_dirty') else ''}."
        )
    )
    blocks += _verdict_blocks(analysis.verdict)
    if story:
        blocks += [
            Heading(2, "The finding in a few charts"),
            Para(
                "The story set (`story/`, and `story-dark-talk/` for slides): one message a chart, a few "
                "variants each, chosen by rule from this run; every chart of every scenario is in the "
                "catalogue below."
            ),
            *(FigureBlock(entry) for entry in story),
        ]
    blocks += _capacity_blocks(run)
    blocks += _fault_blocks(run)
    blocks += provider_blocks(analysis.provider, analysis.limits)
    blocks += _breakdown_blocks(run)
    blocks += memory_blocks(analysis.fits) + plan_blocks(analysis.plan) + reach_blocks(run)
    blocks += cpu_blocks(run)
    blocks += _chart_blocks(charts)
    blocks += _invalid_blocks(run)
    blocks += _variant_blocks(run)
    blocks += [Heading(2, "Points"), Para(_POINTS_NOTE), _points_table(run.points)]
    blocks += [Heading(2, "Run metadata"), _metadata_table(md)]
    return blocks


_POINTS_NOTE = (
    "One row per measured point (repeats separate). Latency and time to first chunk in ms, exact "
    "percentiles over the measured window; peak = the most upstream calls the mock saw in flight; "
    "Little = measured / expected in-flight (1.00 is perfect agreement); CPU = server ms per request; "
    "warm-up = seconds before the window, detected from the data (the steady-state test is in results.json)."
)


def _verdict_blocks(verdict: Verdict) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Verdict")]
    scenario = f"the `{verdict.scenario}` scenario" if verdict.scenario else "no scenario (no valid points)"
    blocks.append(
        Para(
            f"The article claims {ARTICLE_QUOTE}. Each status below is computed from the valid closed-loop "
            f"points of {scenario}; the evidence is the measured numbers. Here {COMFORT_DEFINITION}."
        )
    )
    article = [(c.status, c.statement, c.evidence) for c in verdict.claims if c.source == "article"]
    nuance = [(c.status, c.statement, c.evidence) for c in verdict.claims if c.source == "nuance"]
    blocks += [Heading(3, "The article's claim"), Claims(article)]
    if nuance:
        blocks += [Heading(3, "What the article leaves out"), Claims(nuance)]
    if verdict.not_tested:
        blocks.append(Para("Not tested in this run (variant absent): " + ", ".join(verdict.not_tested) + "."))
    return blocks


def _capacity_blocks(run: RunResults) -> list[Block]:
    if not run.capacity:
        return []
    slo = run.capacity[0].get("slo", "the SLO")
    blocks: list[Block] = [
        Heading(2, "Capacity under the SLO"),
        Para(
            f"The most closed-loop users each variant served within {slo}, found by bracketing and "
            "bisection on measured points (`python -m loadtests capacity`); bound = what stopped it, read "
            "from the first failing level above the capacity."
        ),
    ]
    rows = [
        [
            str(e["variant"]),
            str(e["scenario"]),
            interval_text(e, unit=""),
            f"{e['throughput_rps']:g}",
            str(e.get("in_flight_at_capacity") or ""),
            str(e["bound"]).replace("_", " "),
            str(e["points"]),
            level_marks(e.get("levels", [])),
            f"{e.get('wall_time_s', 0):.0f}",
        ]
        for e in run.capacity
    ]
    headers = [
        "variant", "scenario", "capacity", "rps", "in flight", "bound", "points",
        "levels (+ pass, - fail, ? undecided)", "s",
    ]  # fmt: skip
    return [*blocks, Table(headers, rows)]


def _fault_blocks(run: RunResults) -> list[Block]:
    if not run.faults:
        return []
    rows = [
        [
            str(e["variant"]),
            str(e["retries"]),
            f"{float(e['fault_rate']):.0%}",
            f"{e['goodput_rps']:g}",
            f"{float(e['failed_share']):.1%}",
            _ms(e.get("p50_ms")),
            _ms(e.get("p95_ms")),
            "" if e.get("upstream_calls_per_request") is None else f"{e['upstream_calls_per_request']:.2f}",
            "yes" if e.get("valid") else "**no**",
        ]
        for e in sorted(run.faults, key=lambda e: (e["variant"], e["retries"], e["fault_rate"]))
    ]
    worst = max(run.faults, key=lambda e: e.get("upstream_calls_per_request") or 0)
    headers = [
        "variant",
        "retries",
        "fault rate",
        "goodput rps",
        "failed",
        "p50",
        "p95",
        "calls/request",
        "valid",
    ]
    return [
        Heading(2, "Under upstream faults"),
        Para(
            "One closed-loop level per row (`python -m loadtests faults`), the mock failing the given share "
            f"of calls with {'/'.join(worst.get('errors', []))}. Goodput = successful answers per second; "
            "calls/request = the mock's calls per finished client request: at "
            f"{float(worst['fault_rate']):.0%} faults the upstream got "
            f"{worst.get('upstream_calls_per_request')} calls per request ({worst['variant']}, "
            f"{worst['retries']} retries)."
        ),
        Table(headers, rows),
    ]


def _breakdown_blocks(run: RunResults) -> list[Block]:
    points = [p for p in run.points if p.valid and p.breakdown_ms and p.breakdown_ms.get("upstream")]
    if not points:
        return []
    big_l = upstream_latency(run)
    rows = []
    for p in sorted(points, key=lambda p: (p.scenario, p.variant, p.load)):
        b = p.breakdown_ms or {}
        before, during, after = b["before_upstream"], b["upstream"], b["after_upstream"]
        rows.append(
            [
                p.variant,
                p.scenario,
                _load(p),
                f"{_ms(before['p50'])} / {_ms(before['p95'])}",
                f"{before['p50'] / 1000 / big_l:.2f}" if big_l else "",
                f"{_ms(during['p50'])} / {_ms(during['p95'])}",
                f"{_ms(after['p50'])} / {_ms(after['p95'])}",
                "" if p.overhead_ms is None else f"{_ms(p.overhead_ms.p50)} / {_ms(p.overhead_ms.p95)}",
                f"{b.get('matched', 0)}/{b.get('matched', 0) + b.get('unmatched', 0)}",
            ]
        )
    headers = [
        "variant", "scenario", "load", "before p50/p95", "before / L", "upstream p50/p95",
        "after p50/p95", "overhead p50/p95", "joined",
    ]  # fmt: skip
    return [
        Heading(2, "Where the time goes"),
        Para(
            "Each request joined with the upstream call it caused (by `x-request-id`, on the system-wide "
            "monotonic clock): before = queueing and work in the server before its call reached the mock; "
            "upstream = the mock's time; after = the server's work after the answer and the way back; "
            "overhead = latency minus the upstream's time. Milliseconds."
        ),
        Table(headers, rows),
    ]


def _chart_blocks(charts: Sequence[ChartEntry]) -> list[Block]:
    if not charts:
        return [Heading(2, "Charts"), Para("No chart: the run has no points to draw.")]
    blocks: list[Block] = [Heading(2, "Charts")]
    scenario = None
    for entry in charts:
        if entry.scenario != scenario:
            scenario = entry.scenario
            blocks.append(Heading(3, f"Scenario `{scenario}`"))
        blocks.append(FigureBlock(entry))
    return blocks


def _invalid_blocks(run: RunResults) -> list[Block]:
    invalid = [p for p in run.points if not p.valid]
    blocks: list[Block] = [Heading(2, "Invalid points")]
    if not invalid:
        return [*blocks, Para("None: every point passed the sweep's validity checks.")]
    blocks.append(
        Para(
            f"{len(invalid)} point(s) failed a validity check. They are drawn hollow and left out of the "
            "verdict (a level with another valid repeat uses that repeat)."
        )
    )
    rows = [
        [p.variant, p.scenario, _load(p), str(p.repeat), "; ".join(p.invalid_reasons) or "?"] for p in invalid
    ]
    return [*blocks, Table(["variant", "scenario", "load", "repeat", "reasons"], rows)]


def _variant_blocks(run: RunResults) -> list[Block]:
    if not run.variants:
        return []
    rows = [
        [
            v.name,
            v.framework,
            v.server,
            v.worker_class,
            str(v.workers),
            str(v.predicted_ceiling),
            "yes" if v.verified else "no",
            v.reason or "",
        ]
        for v in run.variants
    ]
    headers = [
        "variant",
        "framework",
        "server",
        "worker class",
        "workers",
        "predicted ceiling",
        "verified",
        "note",
    ]
    return [Heading(2, "Variants"), Table(headers, rows)]


def _points_table(points: Sequence[Point]) -> Table:
    headers = [
        "variant", "scenario", "load", "rep", "valid", "done", "failed", "rps",
        "p50", "p95", "p99", "TTFT p50", "peak", "ceiling", "Little", "CPU", "loadgen %", "warm-up",
    ]  # fmt: skip
    ordered = sorted(points, key=lambda p: (p.scenario, p.load_model, p.variant, p.load, p.repeat))
    rows = []
    for p in ordered:
        lat = p.latency_ms
        rows.append(
            [
                p.variant,
                p.scenario,
                _load(p),
                str(p.repeat),
                "yes" if p.valid else "**no**",
                str(p.completed),
                str(p.failed),
                f"{p.throughput_rps:.3g}",
                _ms(lat.p50 if lat else None),
                _ms(lat.p95 if lat else None),
                _ms(lat.p99 if lat else None),
                _ms(p.ttft_ms.p50 if p.ttft_ms else None),
                "" if p.upstream_peak_in_flight is None else str(p.upstream_peak_in_flight),
                str(p.predicted_ceiling),
                f"{p.littles_law.ratio:.2f}" if p.littles_law else "",
                f"{p.server_cpu_ms_per_request:.2f}" if p.server_cpu_ms_per_request is not None else "",
                f"{p.cpu.loadgen_percent:.0f}" if p.cpu else "",
                f"{p.warmup_s:.1f}",
            ]
        )
    return Table(headers, rows)


def _metadata_table(md: dict[str, Any]) -> Table:
    rows = []
    for key, value in md.items():
        if isinstance(value, dict):
            text = ", ".join(f"{k} {v}" for k, v in sorted(value.items())) or "none"
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value)
        rows.append([key, text])
    return Table(["key", "value"], rows)


def _load(p: Point) -> str:
    return f"{p.users} users" if p.load_model == "closed" else f"{p.rate:g} rps"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.1f}"
