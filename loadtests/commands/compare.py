"""``python -m loadtests compare BASELINE CURRENT``: compare two runs; also the judge of ``gate``.

Points are matched by ``Point.key`` (variant, scenario, load model, load; repeats grouped) and only valid
repeats count. A metric regresses when it moves the wrong way by more than the tolerance (default 10%) and
is beyond the noise of the repeats: with 5 or more valid repeats on both sides (``gate`` measures that many
rounds) by an exact one-sided rank test on the medians' side (analysis.gate_stats); with 2 to 4, when the
bootstrap interval of the ratio of means excludes 1.0 (analysis.resampling); with a single repeat the
tolerance alone decides and the output says so. A point valid in the baseline with no valid repeat in the
current run is a regression, and so is a point or a gated figure the current run lacks (a change must not
pass by dropping what it broke; ``--shared-only`` compares only what both runs have, for a quick run against
a fuller baseline). The failed share regresses on an absolute rise of more than one percentage point (a
ratio of zeros means nothing), confirmed by the rank test when there are repeats. Capacity entries (``python
-m loadtests capacity``) compare by users: lower by more than the tolerance is a regression (one search a
run: no noise estimate). Gated by default: throughput, p50, p95, server CPU per request and overhead p50/p95
(each in units of the mock's CPU per request in the same window, the machine's speed then; the raw figures
are shown) and errors; p99 is reported only (``--gate`` changes that). The report says when the runs were
made on different machines, harness versions or BENCH_WORK_MS. Exit 0: no regression; 1: a regression; 2: a
file cannot be read or the runs cannot be compared (another mock profile or time scale, or no scenario or
point in common). ``--json`` prints the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from loadtests.analysis.compare import DEFAULT_GATE, METRICS, Incomparable, compare_runs
from loadtests.errors import OneLineParser, UserError, run_main
from loadtests.reporting.compare_doc import Shown, render, to_json
from loadtests.results import load_results


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m loadtests compare",
        description="Compare CURRENT against BASELINE. Exit 0: no regression, 1: regression, "
        "2: incomparable or unreadable.",
    )
    parser.add_argument("baseline", type=Path, help="baseline run directory or results.json")
    parser.add_argument("current", type=Path, help="current run directory or results.json")
    parser.add_argument(
        "--tolerance", type=_fraction, default=0.10, help="relative change allowed (default 0.10 = 10%%)"
    )
    parser.add_argument(
        "--gate",
        type=_metrics,
        default=DEFAULT_GATE,
        help=f"metrics that fail the build, comma-separated from {','.join(METRICS)} "
        f"(default {','.join(DEFAULT_GATE)}; the others are reported only)",
    )
    parser.add_argument(
        "--shared-only",
        action="store_true",
        help="compare only the points both runs have (a quick run against a fuller baseline); "
        "by default a point the current run lacks is a regression",
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON (for machines)")
    return parser


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (0.10 = 10%), not {text}")
    return value


def _metrics(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown metric {unknown[0] if unknown else text!r}")
    return names


def main(argv: Sequence[str]) -> int:
    try:
        args = _parser().parse_args(list(argv))
        baseline = load_results(args.baseline)
        current = load_results(args.current)
        comparison = compare_runs(
            baseline, current, tolerance=args.tolerance, gate=args.gate, shared_only=args.shared_only
        )
    except UserError as exc:  # an unreadable file too (ResultsFormatError): 2, as the docstring says
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Incomparable as exc:
        print(f"error: runs cannot be compared: {exc}", file=sys.stderr)
        return 2
    shown = Shown(
        baseline=str(args.baseline),
        current=str(args.current),
        tolerance=args.tolerance,
        gate=tuple(args.gate),
    )
    text = render(comparison, baseline, current, shown)
    print(json.dumps(to_json(comparison), indent=2) if args.json else text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 1 if comparison.failed else 0


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
