"""``python -m loadtests sweep|capacity|...``: one entry point, a sub-command per job (loadtests.commands)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from loadtests.errors import run_main

# Each sub-command's module has ``main(argv) -> int``; imported lazily so ``report`` never pays for Locust.
COMMANDS = {
    "sweep": ("loadtests.commands.sweep", "run load tests against server variants and write results/<run>/"),
    "capacity": (
        "loadtests.commands.capacity",
        "find the most users each variant serves within an SLO",
    ),
    "faults": (
        "loadtests.commands.faults",
        "goodput and upstream calls per request as upstream fails",
    ),
    "reach": (
        "loadtests.commands.reach",
        "how many concurrent streams each variant holds, and what fails first",
    ),
    "cpu": (
        "loadtests.commands.cpu",
        "profile each variant under load: a flame graph and CPU ms per request by component",
    ),
    "report": ("loadtests.commands.report", "render charts, report.md/.html and verdict.json for a run"),
    "compare": (
        "loadtests.commands.compare",
        "compare two runs; exit 1 on a regression, 2 incomparable",
    ),
    "gate": ("loadtests.commands.gate", "measure two git revisions interleaved on this machine; exit 0/1/2"),
    "readme": (
        "loadtests.commands.readme",
        "write the README's generated blocks (answer, verdict, figures) from the reference run",
    ),
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
    """Run one command's ``main`` (``errors.run_main``: one line and exit 2 for a user's mistake)."""
    return run_main(command, argv)


if __name__ == "__main__":
    sys.exit(main())
