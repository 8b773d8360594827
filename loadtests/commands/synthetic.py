"""``python -m loadtests.commands.synthetic OUT``: write a synthetic run (physics, not measurements) to
preview the report without measuring anything."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from loadtests.analysis.synthetic import RATES, synthetic_run
from loadtests.errors import OneLineParser, run_main


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m loadtests.commands.synthetic",
        description="write a synthetic run (physics, not measurements) to preview the report",
    )
    parser.add_argument("out", type=Path, help="run directory to write results.json into")
    parser.add_argument("--open-loop", action="store_true", help="add open-loop points")
    parser.add_argument(
        "--scenarios", default="analyse,stream", help="comma-separated (default analyse,stream)"
    )
    args = parser.parse_args(argv)
    run = synthetic_run(
        scenarios=tuple(s for s in args.scenarios.split(",") if s), rates=RATES if args.open_loop else ()
    )
    print(run.save(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
