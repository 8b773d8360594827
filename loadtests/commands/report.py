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

from loadtests.errors import OneLineParser, UserError, run_main
from loadtests.reporting.chart_style import SIZES, THEMES
from loadtests.reporting.report import CHARTS_DIR, write_report


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    except UserError as exc:  # an unreadable results.json too (ResultsFormatError)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folders: dict[Path, int] = {}
    for path in written:
        if path.suffix == ".png":
            folders[path.parent] = folders.get(path.parent, 0) + 1
    for folder, count in folders.items():
        print(f"{folder}/: {count} charts (PNG + SVG)")
    for path in written:
        if path.suffix not in (".png", ".svg"):
            print(path)
    verdict = json.loads(next(p for p in written if p.name == "verdict.json").read_text())
    for claim in verdict["claims"]:
        print(f"  {claim['status']:>14}  {claim['statement']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
