"""``python -m loadtests readme [--check]``: the README's verdict block, written from the committed
reference run's ``verdict.json``, its key figures and loadtests/README.md's accuracy section, from its
``results.json`` (never copied by hand). ``--check`` exits 1 when any block differs, so a test and CI
notice a verdict that changed without its README, or a README edited without a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loadtests.errors import OneLineParser, UserError
from loadtests.reporting.accuracy import accuracy_block
from loadtests.reporting.figures import figures_block
from loadtests.results import ResultsFormatError, load_results

REPO = Path(__file__).resolve().parents[2]
START, END = "<!-- verdict:start -->", "<!-- verdict:end -->"
ACCURACY_START, ACCURACY_END = "<!-- accuracy:start -->", "<!-- accuracy:end -->"
FIGURES_START, FIGURES_END = "<!-- figures:start -->", "<!-- figures:end -->"
DEFAULT_VERDICT = REPO / "results" / "reference" / "verdict.json"
DEFAULT_README = REPO / "README.md"
DEFAULT_ACCURACY_README = REPO / "loadtests" / "README.md"


def verdict_block(verdict: dict[str, Any]) -> str:
    """One line per claim: its status, the claim, and the evidence that decided it."""
    lines = []
    for claim in verdict.get("claims", []):
        evidence = str(claim.get("evidence", "")).rstrip(".")
        lines.append(f"- **{claim['status']}**: {claim['statement']} — {evidence}.")
    return "\n".join(lines)


def with_block(readme: str, block: str, *, source: str, start: str = START, end: str = END) -> str:
    if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
        raise UserError(f"{source}: needs exactly one {start} ... {end} pair, in that order")
    head, rest = readme.split(start, 1)
    _old, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m loadtests readme", description=__doc__)
    parser.add_argument("--verdict", type=Path, default=DEFAULT_VERDICT, help="default: %(default)s")
    parser.add_argument("--readme", type=Path, default=DEFAULT_README, help="default: %(default)s")
    parser.add_argument(
        "--accuracy-readme",
        type=Path,
        default=DEFAULT_ACCURACY_README,
        help="where the accuracy section goes; the run is the verdict's directory (default: %(default)s)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the README's block differs; write nothing"
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        verdict = json.loads(args.verdict.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--verdict {args.verdict}: {exc}") from None
    try:
        readme = args.readme.read_text()
    except OSError as exc:
        raise UserError(f"--readme {args.readme}: {exc.strerror or exc}") from None
    claims = verdict.get("claims") if isinstance(verdict, dict) else None
    if not isinstance(claims, list) or not all(
        isinstance(c, dict) and {"status", "statement"} <= set(c) for c in claims
    ):
        raise UserError(f"--verdict {args.verdict}: not a verdict.json (claims with status and statement)")
    run_dir = args.verdict.parent
    try:
        run = load_results(run_dir)
    except ResultsFormatError as exc:
        raise UserError(str(exc)) from None
    try:
        accuracy_readme = args.accuracy_readme.read_text()
    except OSError as exc:
        raise UserError(f"--accuracy-readme {args.accuracy_readme}: {exc.strerror or exc}") from None
    run_name = _shown(run_dir)
    readme_new = with_block(readme, verdict_block(verdict), source=str(args.readme))
    readme_new = with_block(
        readme_new,
        figures_block(run, run_name=run_name),
        source=str(args.readme),
        start=FIGURES_START,
        end=FIGURES_END,
    )
    pairs = [
        (args.readme, readme, readme_new, "verdict and figures"),
        (
            args.accuracy_readme,
            accuracy_readme,
            with_block(
                accuracy_readme,
                accuracy_block(run, run_name=run_name),
                source=str(args.accuracy_readme),
                start=ACCURACY_START,
                end=ACCURACY_END,
            ),
            "accuracy",
        ),
    ]
    stale = [(path, what) for path, old, new, what in pairs if new != old]
    if args.check:
        for path, what in stale:
            print(f"{path}: its {what} block differs from {run_dir}; run make readme")
        return 1 if stale else 0
    for path, old, new, what in pairs:
        if new != old:
            path.write_text(new)
            print(f"{path}: {what} block rewritten from {run_dir}")
    return 0


def _shown(run_dir: Path) -> str:
    """The run as the repository names it (results/reference), not as this machine's path."""
    try:
        return str(run_dir.resolve().relative_to(REPO))
    except ValueError:
        return run_dir.name


if __name__ == "__main__":
    from loadtests.__main__ import run

    sys.exit(run(main, sys.argv[1:]))
