"""``python -m loadtests readme [--check]``: the README's verdict block, written from the committed
reference run's ``verdict.json``, its five-line answer, its key figures, how it compares with its repeat
(``results/reference-repeat``) and loadtests/README.md's accuracy section, from its ``results.json`` and
verdict (never copied by hand). ``--check`` exits 1 when any block
differs, so a test and CI notice a verdict that changed without its README, or a README edited without a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loadtests.analysis.reproduction import reproduction
from loadtests.errors import OneLineParser, UserError, run_main
from loadtests.reporting.readme import (
    DEFAULT_ACCURACY_README,
    DEFAULT_README,
    DEFAULT_REPEAT_VERDICT,
    DEFAULT_VERDICT,
    NO_REPEAT,
    readme_texts,
    shown_name,
)
from loadtests.reporting.reproduction_doc import repeat_block
from loadtests.results import RunResults, load_results


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m loadtests readme", description=__doc__)
    parser.add_argument("--verdict", type=Path, default=DEFAULT_VERDICT, help="default: %(default)s")
    parser.add_argument(
        "--repeat-verdict",
        type=Path,
        default=DEFAULT_REPEAT_VERDICT,
        help="the same preset run again on the same commit, compared with --verdict's run when it exists "
        "(default: %(default)s)",
    )
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
    verdict = _verdict(args.verdict)
    run_dir = args.verdict.parent
    try:
        readme = args.readme.read_text()
    except OSError as exc:
        raise UserError(f"--readme {args.readme}: {exc.strerror or exc}") from None
    run = load_results(run_dir)
    try:
        accuracy_readme = args.accuracy_readme.read_text()
    except OSError as exc:
        raise UserError(f"--accuracy-readme {args.accuracy_readme}: {exc.strerror or exc}") from None
    pairs = readme_texts(
        run,
        verdict,
        readme=(args.readme, readme),
        accuracy_readme=(args.accuracy_readme, accuracy_readme),
        run_name=shown_name(run_dir),
        repeat=_repeat(run, verdict, args.repeat_verdict, first_name=shown_name(run_dir)),
    )
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


def _repeat(run: RunResults, verdict: dict[str, Any], path: Path, *, first_name: str) -> str:
    """The reference against its repeat, or the line saying none is committed."""
    if not path.exists():
        return NO_REPEAT
    repeat = load_results(path.parent)
    repro = reproduction(run, verdict, repeat, _verdict(path, flag="--repeat-verdict"))
    return repeat_block(repro, names=(first_name, shown_name(path.parent)))


def _verdict(path: Path, *, flag: str = "--verdict") -> dict[str, Any]:
    try:
        verdict = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{flag} {path}: {exc}") from None
    claims = verdict.get("claims") if isinstance(verdict, dict) else None
    if not isinstance(claims, list) or not all(
        isinstance(c, dict) and {"status", "statement"} <= set(c) for c in claims
    ):
        raise UserError(f"{flag} {path}: not a verdict.json (claims with status and statement)")
    return verdict


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
