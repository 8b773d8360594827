"""The report's text: one document model rendered twice, as Markdown and as self-contained HTML.

Both renderings come from the same blocks, so report.md and report.html can never disagree. Inline
markup is limited to **bold** and `code`, which the HTML renderer translates after escaping.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loadtests.analysis.verdict import COMFORT_DEFINITION, Verdict, upstream_latency
from loadtests.results import Point, RunResults

STATUS_LABEL = {
    "reproduced": "Reproduced",
    "not_reproduced": "Not reproduced",
    "depends": "Depends",
    "inconclusive": "Inconclusive",
}
ARTICLE_QUOTE = (
    '"Flask + Gunicorn (4 workers): 4 concurrent requests max before blocking; '
    'FastAPI + Uvicorn: handles 100+ concurrent requests comfortably"'
)


@dataclass(frozen=True, kw_only=True)
class ChartEntry:
    name: str
    scenario: str
    kind: str
    title: str
    subtitle: str
    png: str  # relative to the run directory
    svg_text: str
    invalid: list[str]


@dataclass(frozen=True)
class _Heading:
    level: int
    text: str


@dataclass(frozen=True)
class _Para:
    text: str


@dataclass(frozen=True)
class _Claims:
    items: list[tuple[str, str, str]]  # status, statement, evidence


@dataclass(frozen=True)
class _Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class _Figure:
    entry: ChartEntry


_Block = _Heading | _Para | _Claims | _Table | _Figure


def render_markdown(run: RunResults, verdict: Verdict, charts: Sequence[ChartEntry], *, run_name: str) -> str:
    out: list[str] = []
    for block in _document(run, verdict, charts, run_name):
        if isinstance(block, _Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, _Para):
            out.append(block.text)
        elif isinstance(block, _Claims):
            out.append(
                "\n".join(
                    f"- **{STATUS_LABEL[status]}**: {statement}.  \n  Evidence: {evidence}."
                    for status, statement, evidence in block.items
                )
            )
        elif isinstance(block, _Table):
            lines = ["| " + " | ".join(block.headers) + " |", "|" + "---|" * len(block.headers)]
            lines += [
                "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in block.rows
            ]
            out.append("\n".join(lines))
        else:
            e = block.entry
            out.append(f"![{e.title}]({e.png})\n\n*{e.title}.* {e.subtitle}. ([SVG]({e.png[:-4]}.svg))")
    return "\n\n".join(out) + "\n"


def render_html(
    run: RunResults, verdict: Verdict, charts: Sequence[ChartEntry], *, run_name: str, theme: str
) -> str:
    body: list[str] = []
    for block in _document(run, verdict, charts, run_name):
        if isinstance(block, _Heading):
            body.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, _Para):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, _Claims):
            items = "".join(
                f'<li><span class="status {status}">{STATUS_LABEL[status]}</span> {_inline(statement)}.'
                f'<div class="evidence">Evidence: {_inline(evidence)}.</div></li>'
                for status, statement, evidence in block.items
            )
            body.append(f'<ul class="claims">{items}</ul>')
        elif isinstance(block, _Table):
            head = "".join(f"<th>{_inline(h)}</th>" for h in block.headers)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            body.append(
                f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
                f"<tbody>{rows}</tbody></table></div>"
            )
        else:
            e = block.entry
            data = base64.b64encode(e.svg_text.encode()).decode()
            body.append(
                f'<figure id="{html.escape(e.name)}"><img src="data:image/svg+xml;base64,{data}" '
                f'alt="{html.escape(e.title)}"><figcaption><strong>{html.escape(e.title)}.</strong> '
                f"{html.escape(e.subtitle)}.</figcaption></figure>"
            )
    colours = (
        {"bg": "#ffffff", "fg": "#1a1a1a", "muted": "#5f5f5f", "rule": "#e3e3e3"}
        if theme == "light"
        else {"bg": "#16181d", "fg": "#ececec", "muted": "#a9a9a9", "rule": "#30343c"}
    )
    css = _CSS.format(**colours)
    title = html.escape(f"Benchmark report: {run_name}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{css}</style></head><body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )


_CSS = """
body {{ background: {bg}; color: {fg}; margin: 0;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }}
main {{ max-width: 1100px; margin: 0 auto; padding: 1.5rem; }}
h1, h2, h3 {{ line-height: 1.25; }}
code {{ font-size: 0.92em; }}
figure {{ margin: 1.5rem 0; }} figure img {{ width: 100%; height: auto; border: 1px solid {rule}; }}
figcaption {{ color: {muted}; font-size: 0.95em; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: 0.85em; font-variant-numeric: tabular-nums; }}
th, td {{ border-bottom: 1px solid {rule}; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }}
th:first-child, td:first-child {{ text-align: left; }}
.claims {{ list-style: none; padding: 0; }} .claims li {{ margin: 0.8em 0; }}
.evidence {{ color: {muted}; font-size: 0.92em; margin-left: 0.2em; }}
.status {{ display: inline-block; min-width: 8.5em; padding: 0 0.4em; border-radius: 4px; font-weight: 600;
  color: #fff; text-align: center; }}
.reproduced {{ background: #0072B2; }} .not_reproduced {{ background: #D55E00; }}
.depends {{ background: #CC79A7; }} .inconclusive {{ background: #6b6b6b; }}
"""


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def _document(run: RunResults, verdict: Verdict, charts: Sequence[ChartEntry], run_name: str) -> list[_Block]:
    md = run.metadata
    big_l = upstream_latency(run)
    blocks: list[_Block] = [_Heading(1, f"Benchmark report: {run_name}")]
    if md.get("synthetic"):
        blocks.append(
            _Para("**Synthetic data**: these numbers follow the queueing model; nothing was measured.")
        )
    blocks.append(
        _Para(
            f"Preset `{md.get('preset', '?')}`, mock profile `{md.get('mock_profile', '?')}`, time scale "
            f"{md.get('time_scale', '?')}, upstream latency L = {f'{big_l:g} s' if big_l else 'unknown'}; "
            f"{md.get('cpu_model', 'unknown CPU')} with {md.get('cpu_count', '?')} CPUs; "
            f"started {md.get('started_at', '?')}, git `{str(md.get('git_commit', '?'))[:10]}`"
            f"{' (dirty)' if md.get('git_dirty') else ''}."
        )
    )
    blocks += _verdict_blocks(verdict)
    blocks += _capacity_blocks(run)
    blocks += _fault_blocks(run)
    blocks += _breakdown_blocks(run)
    from loadtests.reporting.memory_doc import memory_blocks, plan_blocks, reach_blocks  # built on this

    blocks += memory_blocks(run) + plan_blocks(run) + reach_blocks(run)
    blocks += _chart_blocks(charts)
    blocks += _invalid_blocks(run)
    blocks += _variant_blocks(run)
    blocks += [_Heading(2, "Points"), _Para(_POINTS_NOTE), _points_table(run.points)]
    blocks += [_Heading(2, "Run metadata"), _metadata_table(md)]
    return blocks


_POINTS_NOTE = (
    "One row per measured point (repeats separate). Latency and time to first chunk in ms, exact "
    "percentiles over the measured window; peak = the most upstream calls the mock saw in flight; "
    "Little = measured / expected in-flight (1.00 is perfect agreement); CPU = server ms per request; "
    "warm-up = seconds before the window, detected from the data (the steady-state test is in results.json)."
)


def _verdict_blocks(verdict: Verdict) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, "Verdict")]
    scenario = f"the `{verdict.scenario}` scenario" if verdict.scenario else "no scenario (no valid points)"
    blocks.append(
        _Para(
            f"The article claims {ARTICLE_QUOTE}. Each status below is computed from the valid closed-loop "
            f"points of {scenario}; the evidence is the measured numbers. Here {COMFORT_DEFINITION}."
        )
    )
    article = [(c.status, c.statement, c.evidence) for c in verdict.claims if c.source == "article"]
    nuance = [(c.status, c.statement, c.evidence) for c in verdict.claims if c.source == "nuance"]
    blocks += [_Heading(3, "The article's claim"), _Claims(article)]
    if nuance:
        blocks += [_Heading(3, "What the article leaves out"), _Claims(nuance)]
    if verdict.not_tested:
        blocks.append(
            _Para("Not tested in this run (variant absent): " + ", ".join(verdict.not_tested) + ".")
        )
    return blocks


def _capacity_blocks(run: RunResults) -> list[_Block]:
    if not run.capacity:
        return []
    slo = run.capacity[0].get("slo", "the SLO")
    blocks: list[_Block] = [
        _Heading(2, "Capacity under the SLO"),
        _Para(
            f"The most closed-loop users each variant served within {slo}, found by bracketing and "
            "bisection on measured points (`python -m loadtests capacity`); bound = what stopped it, read "
            "from the first failing level above the capacity."
        ),
    ]
    rows = [
        [
            str(e["variant"]),
            str(e["scenario"]),
            str(e["users"]),
            f"{e['throughput_rps']:g}",
            str(e.get("in_flight_at_capacity") or ""),
            str(e["bound"]).replace("_", " "),
            str(e["points"]),
            ", ".join(f"{lv['users']}{'+' if lv['passed'] else '-'}" for lv in e.get("levels", [])),
            f"{e.get('wall_time_s', 0):.0f}",
        ]
        for e in run.capacity
    ]
    headers = ["variant", "scenario", "users", "rps", "in flight", "bound", "points", "levels (+ pass)", "s"]
    return [*blocks, _Table(headers, rows)]


def _fault_blocks(run: RunResults) -> list[_Block]:
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
        _Heading(2, "Under upstream faults"),
        _Para(
            "One closed-loop level per row (`python -m loadtests faults`), the mock failing the given share "
            f"of calls with {'/'.join(worst.get('errors', []))}. Goodput = successful answers per second; "
            "calls/request = the mock's calls per finished client request: at "
            f"{float(worst['fault_rate']):.0%} faults the upstream got "
            f"{worst.get('upstream_calls_per_request')} calls per request ({worst['variant']}, "
            f"{worst['retries']} retries)."
        ),
        _Table(headers, rows),
    ]


def _breakdown_blocks(run: RunResults) -> list[_Block]:
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
        _Heading(2, "Where the time goes"),
        _Para(
            "Each request joined with the upstream call it caused (by `x-request-id`, on the system-wide "
            "monotonic clock): before = queueing and work in the server before its call reached the mock; "
            "upstream = the mock's time; after = the server's work after the answer and the way back; "
            "overhead = latency minus the upstream's time. Milliseconds."
        ),
        _Table(headers, rows),
    ]


def _chart_blocks(charts: Sequence[ChartEntry]) -> list[_Block]:
    if not charts:
        return [_Heading(2, "Charts"), _Para("No chart: the run has no points to draw.")]
    blocks: list[_Block] = [_Heading(2, "Charts")]
    scenario = None
    for entry in charts:
        if entry.scenario != scenario:
            scenario = entry.scenario
            blocks.append(_Heading(3, f"Scenario `{scenario}`"))
        blocks.append(_Figure(entry))
    return blocks


def _invalid_blocks(run: RunResults) -> list[_Block]:
    invalid = [p for p in run.points if not p.valid]
    blocks: list[_Block] = [_Heading(2, "Invalid points")]
    if not invalid:
        return [*blocks, _Para("None: every point passed the sweep's validity checks.")]
    blocks.append(
        _Para(
            f"{len(invalid)} point(s) failed a validity check. They are drawn hollow and left out of the "
            "verdict (a level with another valid repeat uses that repeat)."
        )
    )
    rows = [
        [p.variant, p.scenario, _load(p), str(p.repeat), "; ".join(p.invalid_reasons) or "?"] for p in invalid
    ]
    return [*blocks, _Table(["variant", "scenario", "load", "repeat", "reasons"], rows)]


def _variant_blocks(run: RunResults) -> list[_Block]:
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
    return [_Heading(2, "Variants"), _Table(headers, rows)]


def _points_table(points: Sequence[Point]) -> _Table:
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
    return _Table(headers, rows)


def _metadata_table(md: dict[str, Any]) -> _Table:
    rows = []
    for key, value in md.items():
        if isinstance(value, dict):
            text = ", ".join(f"{k} {v}" for k, v in sorted(value.items())) or "none"
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value)
        rows.append([key, text])
    return _Table(["key", "value"], rows)


def _load(p: Point) -> str:
    return f"{p.users} users" if p.load_model == "closed" else f"{p.rate:g} rps"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.1f}"
