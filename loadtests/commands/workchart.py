"""``python -m loadtests.reporting.workchart RUN [RUN ...] --out PNG``: throughput and latency against users
for each variant of each run, labelled with the run's BENCH_WORK_MS, to show where handler CPU stalls a
server.

With ``BENCH_WORK_MS`` set, every request spends that much CPU where its variant runs handler code: on
fastapi-async's one event loop it adds up (one core, shared by every request in flight), in flask-gthread's
threads over four processes it spreads over the cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

from loadtests.errors import OneLineParser, run_main
from loadtests.reporting.stallchart import draw


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog="python -m loadtests.reporting.workchart", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    print(draw(args.runs, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
