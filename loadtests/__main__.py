"""``python -m loadtests sweep|capacity|faults|report|compare``: one entry point, one sub-command per job."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

from loadtests.driver.processes import ProcessStartError
from loadtests.errors import UserError
from loadtests.results import ResultsFormatError

# Each sub-command's module has ``main(argv) -> int``; imported lazily so ``report`` never pays for Locust.
COMMANDS = {
    "sweep": ("loadtests.sweep", "run load tests against server variants and write results/<run>/"),
    "capacity": (
        "loadtests.driver.capacity",
        "find the most users each variant serves within an SLO",
    ),
    "faults": (
        "loadtests.driver.faults",
        "goodput and upstream calls per request as upstream fails",
    ),
    "reach": (
        "loadtests.driver.reach",
        "how many concurrent streams each variant holds, and what fails first",
    ),
    "report": ("loadtests.reporting.report", "render charts, report.md/.html and verdict.json for a run"),
    "compare": (
        "loadtests.reporting.compare",
        "compare two runs; exit 1 on a regression, 2 incomparable",
    ),
    "gate": ("loadtests.driver.gate", "measure two git revisions interleaved on this machine; exit 0/1/2"),
    "readme": ("loadtests.reporting.readme", "write the README's verdict block from the reference run"),
}

USAGE = (
    "usage: python -m loadtests (or llm-wait-bench) {" + ",".join(COMMANDS) + "} [options]   "
    "(--help on each; --version)"
)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("llm-wait-bench")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _usage() -> int:
    print(USAGE)
    for name, (_, summary) in COMMANDS.items():
        print(f"  {name:8} {summary}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        print(f"llm-wait-bench {version()}")
        return 0
    if not args:
        print(f"error: name a command: {', '.join(COMMANDS)} (see --help)", file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help"):
        return run(lambda _argv: _usage(), [])
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    command: Callable[[list[str]], int] = importlib.import_module(COMMANDS[name][0]).main
    return run(command, rest)


def run(command: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run one command's ``main``: a user's mistake is one ``error:`` line and exit 2, never a traceback
    (every module's ``python -m`` entry comes through here too)."""
    try:
        return command(argv)
    except (UserError, ProcessStartError, ResultsFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... --help | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
