"""``python -m loadtests readme [--check]``: the README's verdict block, written from the committed
reference run's ``verdict.json`` (never copied by hand). ``--check`` exits 1 when the README differs, so a
test and CI notice a verdict that changed without its README, or a README edited without a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loadtests.errors import OneLineParser, UserError

REPO = Path(__file__).resolve().parents[2]
START, END = "<!-- verdict:start -->", "<!-- verdict:end -->"
DEFAULT_VERDICT = REPO / "results" / "reference" / "verdict.json"
DEFAULT_README = REPO / "README.md"


def verdict_block(verdict: dict[str, Any]) -> str:
    """One line per claim: its status, the claim, and the evidence that decided it."""
    lines = []
    for claim in verdict.get("claims", []):
        evidence = str(claim.get("evidence", "")).rstrip(".")
        lines.append(f"- **{claim['status']}**: {claim['statement']} — {evidence}.")
    return "\n".join(lines)


def with_block(readme: str, block: str, *, source: str) -> str:
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise UserError(f"{source}: needs exactly one {START} ... {END} pair, in that order")
    head, rest = readme.split(START, 1)
    _old, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m loadtests readme", description=__doc__)
    parser.add_argument("--verdict", type=Path, default=DEFAULT_VERDICT, help="default: %(default)s")
    parser.add_argument("--readme", type=Path, default=DEFAULT_README, help="default: %(default)s")
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
    updated = with_block(readme, verdict_block(verdict), source=str(args.readme))
    if args.check:
        if updated != readme:
            print(f"{args.readme}: its verdict block differs from {args.verdict}; run make readme")
            return 1
        return 0
    if updated != readme:
        args.readme.write_text(updated)
        print(f"{args.readme}: verdict block rewritten from {args.verdict}")
    return 0


if __name__ == "__main__":
    from loadtests.__main__ import run

    sys.exit(run(main, sys.argv[1:]))
