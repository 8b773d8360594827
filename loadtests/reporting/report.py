"""Everything a report writes for one run: charts, verdict.json, memory.json, report.md and report.html.

Everything is written into the run directory: ``charts/<scenario>-<kind>.png`` (2x resolution) and
``.svg``; the story set (``story/`` light for a blog, ``story-dark-talk/`` for slides); ``verdict.json``
(``{"claims": [{"id", "status", "evidence", ...}]}``); ``memory.json`` (the fits and the plan);
``report.md`` (links the PNGs) and ``report.html`` (the SVGs embedded, so the one file can be mailed or
attached to CI). The run is analysed once (:func:`loadtests.analysis.run_analysis.analyse_run`) and the
document built once; the charts and both renderings read them.
"""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.analysis.run_analysis import analyse_run
from loadtests.errors import UserError
from loadtests.reporting.chart_style import Style, make_style
from loadtests.reporting.chartkit import Chart, save_chart
from loadtests.reporting.charts import build_charts
from loadtests.reporting.dockit import ChartEntry, to_html, to_markdown
from loadtests.reporting.report_doc import document
from loadtests.reporting.story import build_story
from loadtests.results import atomic_write_text, load_results

CHARTS_DIR = "charts"
# The story set (loadtests.reporting.story), written beside the catalogue in both styles.
STORY_SETS = (("story", make_style("light", "blog")), ("story-dark-talk", make_style("dark", "talk")))


def write_report(
    run_dir: Path, *, theme: str = "light", size: str = "blog", charts_name: str = CHARTS_DIR
) -> list[Path]:
    """Render everything for one run; returns the files written (charts first)."""
    if not run_dir.exists():
        raise UserError(f"report: run directory {run_dir} does not exist (run `make bench` first)")
    run = load_results(run_dir)
    if not run_dir.is_dir():
        run_dir = run_dir.parent  # a results.json path was given
    style = make_style(theme, size)  # type: ignore[arg-type]
    analysis = analyse_run(run, run_dir)
    written, entries = _write_charts(build_charts(run, style, analysis), style, run_dir, charts_name)
    story: list[ChartEntry] = []
    for name, story_style in STORY_SETS:  # the story set in both styles, whatever the catalogue's
        paths, found = _write_charts(build_story(run, story_style, analysis), story_style, run_dir, name)
        written += paths
        story = story or found
    verdict_path = run_dir / "verdict.json"
    atomic_write_text(verdict_path, json.dumps(analysis.verdict.to_dict(), indent=2) + "\n")
    memory_path = run_dir / "memory.json"  # the fits and the plan, for machines (the report shows both)
    atomic_write_text(memory_path, json.dumps(analysis.memory_document(), indent=2) + "\n")
    run_name = run_dir.resolve().name
    blocks = document(run, analysis, entries, run_name=run_name, story=story)
    md_path = run_dir / "report.md"
    atomic_write_text(md_path, to_markdown(blocks))
    html_path = run_dir / "report.html"
    atomic_write_text(html_path, to_html(blocks, title=f"Benchmark report: {run_name}", theme=style.theme))
    return [*written, verdict_path, memory_path, md_path, html_path]


def _write_charts(
    charts: list[Chart], style: Style, run_dir: Path, charts_name: str
) -> tuple[list[Path], list[ChartEntry]]:
    charts_dir = run_dir / charts_name
    charts_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*charts_dir.glob("*.png"), *charts_dir.glob("*.svg")]:
        stale.unlink()  # a chart the run no longer has must not linger beside the new ones
    written: list[Path] = []
    entries: list[ChartEntry] = []
    for chart in charts:
        png, svg = save_chart(chart, charts_dir, style)
        written += [png, svg]
        entries.append(
            ChartEntry(
                name=chart.name,
                scenario=chart.scenario,
                kind=chart.kind,
                title=chart.title,
                subtitle=chart.subtitle,
                png=f"{charts_name}/{png.name}",
                svg_text=svg.read_text(),
                invalid=chart.invalid,
            )
        )
        chart.figure.clear()
    return written, entries
