"""``python -m loadtests report RUN_DIR``: charts, report.md, a self-contained report.html, verdict.json.

Everything is written into the run directory: ``charts/<scenario>-<kind>.png`` (2x resolution) and
``.svg``, ``verdict.json`` (``{"claims": [{"id", "status", "evidence", ...}]}``), ``report.md`` (links
the PNGs) and ``report.html`` (the SVGs embedded, so the one file can be mailed or attached to CI).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from loadtests.analysis.plan import memory_document
from loadtests.analysis.verdict import compute_verdict
from loadtests.errors import UserError
from loadtests.reporting.chart_style import SIZES, THEMES, make_style
from loadtests.reporting.charts import build_charts, save_chart
from loadtests.reporting.report_doc import ChartEntry, render_html, render_markdown
from loadtests.results import ResultsFormatError, atomic_write_text, load_results

CHARTS_DIR = "charts"


class _Parser(argparse.ArgumentParser):
    """argparse that fails with one line (the dispatcher's convention), not usage plus a message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"report: {message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m loadtests report",
        description="Render charts, report.md, report.html and verdict.json into a run directory.",
    )
    parser.add_argument("run_dir", type=Path, help="run directory holding results.json (e.g. results/latest)")
    parser.add_argument("--theme", choices=THEMES, default="light", help="chart colours (default light)")
    parser.add_argument(
        "--size",
        choices=SIZES,
        default="blog",
        help="blog: 9x5.6 in; talk: 16:9 with large type (default blog)",
    )
    parser.add_argument(
        "--charts-dir",
        default=CHARTS_DIR,
        help="folder of the run directory the charts go to, so a second set (say dark, talk size) can sit "
        "beside the first; the report shows this set (default: charts)",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    try:
        args = _parser().parse_args(list(argv))
        if not args.charts_dir or "/" in args.charts_dir or args.charts_dir.startswith("."):
            raise UserError(
                f"--charts-dir: {args.charts_dir!r} must be a plain folder name, such as charts-dark"
            )
        written = write_report(args.run_dir, theme=args.theme, size=args.size, charts_name=args.charts_dir)
    except (UserError, ResultsFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    charts = [p for p in written if p.parent.name == args.charts_dir]
    if charts:
        print(f"{charts[0].parent}/: {len(charts) // 2} charts (PNG + SVG)")
    for path in written[len(charts) :]:
        print(path)
    verdict = json.loads(written[len(charts)].read_text())
    for claim in verdict["claims"]:
        print(f"  {claim['status']:>14}  {claim['statement']}")
    return 0


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
    verdict = compute_verdict(run)
    charts_dir = run_dir / charts_name
    charts_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*charts_dir.glob("*.png"), *charts_dir.glob("*.svg")]:
        stale.unlink()  # a chart the run no longer has must not linger beside the new ones
    written: list[Path] = []
    entries: list[ChartEntry] = []
    for chart in build_charts(run, style):
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
    verdict_path = run_dir / "verdict.json"
    atomic_write_text(verdict_path, json.dumps(verdict.to_dict(), indent=2) + "\n")
    memory_path = run_dir / "memory.json"  # the fits and the plan, for machines (the report shows both)
    atomic_write_text(memory_path, json.dumps(memory_document(run), indent=2) + "\n")
    md_path = run_dir / "report.md"
    atomic_write_text(md_path, render_markdown(run, verdict, entries, run_name=run_dir.resolve().name))
    html_path = run_dir / "report.html"
    atomic_write_text(
        html_path, render_html(run, verdict, entries, run_name=run_dir.resolve().name, theme=style.theme)
    )
    return [*written, verdict_path, memory_path, md_path, html_path]


if __name__ == "__main__":
    from loadtests.__main__ import run

    sys.exit(run(main, sys.argv[1:]))
