"""``python -m loadtests gate [BASE] [HEAD]``: two git revisions measured side by side on this machine.

Who measures what with whose code:
- The *measurer* is this process's ``loadtests`` package (the checkout you run the gate from, in CI the
  pull request's head): load generation, the steady-state test, the figures and the comparison, one and
  the same instrument for both sides.
- The *mock* upstream is also the measurer's (``mock_llm`` of this checkout), so both sides wait on the
  identical ground truth, and its per-call records are the ones this harness joins with.
- The *measured* code is each revision's ``servers/``: every server process runs with its working
  directory and ``PYTHONPATH`` at that revision's worktree (checked before measuring: its ``servers``
  must import from there), with this environment when the revision pins the same dependencies
  (constraints.txt and pyproject's dependencies) or a fresh one made for it otherwise.

How: a detached ``git worktree`` per revision in a temporary directory (removed afterwards, also on Ctrl-C);
then ``--rounds`` rounds (default 5), each measuring both sides with fresh processes (mock and server
started anew for every variant), in alternating order (base, head; head, base; ...) so a drift in the
machine's speed cancels rather than favours one side. Each round is one repeat of every point; the
comparison (``loadtests.analysis.compare``, the rank test of ``loadtests.analysis.gate_stats`` once both
sides have 5 rounds) gates server CPU per request, overhead p50/p95 and throughput, each relative to the
mock's CPU per request in the same window (the machine's speed at that moment), and the failed share. A
round whose window broke a steady-state rule still counts (both sides face the same machine; the rank test
judges the spread), one whose measurement failed or hung does not, and a point head lacks is a regression.
The run directory holds ``base/`` and ``head/`` (each a normal run: results.json, raw/, logs/),
``comparison.md``, ``comparison.json``, ``gate.png`` and ``summary.md`` (the step summary).

Exit 0: no regression; 1: a regression; 2: cannot compare (unknown revision, a revision without the
servers package, a side that will not start or breaks the contract), one line on stderr each time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from loadtests.analysis.compare import Comparison, Incomparable, compare_runs
from loadtests.argtypes import number
from loadtests.driver.gate import (
    DEFAULT_ROUNDS,
    GATE_METRICS,
    GATE_PRESETS,
    MIN_ROUNDS,
    measure_sides,
    prepare_sides,
    settings_for_targets,
)
from loadtests.driver.gate_git import (
    GateError,
    Side,
    default_base,
    repo_relative,
    resolve,
    toplevel,
    worktree,
)
from loadtests.driver.interrupts import stop_signals_interrupt
from loadtests.driver.rundir import default_run_dir, run_dir_locked
from loadtests.errors import OneLineParser, run_main
from loadtests.presets import SweepSettings
from loadtests.reporting import gate_report
from loadtests.reporting.compare_doc import Shown, render, to_json
from loadtests.results import RunResults


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m loadtests gate",
        description="Measure two git revisions interleaved on this machine and compare them. "
        "Exit 0: no regression, 1: regression, 2: cannot compare.",
    )
    parser.add_argument("base", nargs="?", help="baseline revision (default: merge base with origin/main)")
    parser.add_argument("head", nargs="?", default="HEAD", help="revision under test (default: HEAD)")
    parser.add_argument(
        "--rounds",
        type=number("--rounds", kind=int, minimum=MIN_ROUNDS),
        default=DEFAULT_ROUNDS,
        help="rounds a side (default 5)",
    )
    parser.add_argument(
        "--preset", choices=sorted(GATE_PRESETS), default="gate", help="what to measure (default: gate)"
    )
    parser.add_argument(
        "--tolerance",
        type=number("--tolerance", above=0, below=1, what="between 0 and 1 (0.10 = 10%)"),
        default=0.10,
        help="minimum effect (default 0.10 = 10%%)",
    )
    parser.add_argument("--out", type=Path, help="run directory (default: results/gate-<UTC timestamp>/)")
    parser.add_argument(
        "--target",
        dest="targets",
        action="append",
        default=[],
        metavar="FILE",
        help="your own app's target file in this repository (repeatable): measured instead of the preset's "
        "variants, its overhead scenario (the analyse request against an instant upstream), each side "
        "from its own revision of the file",
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    # On a stop signal every process stops and both worktrees go, through the context managers below.
    started = time.monotonic()
    try:
        with stop_signals_interrupt():
            return _gate(args, started)
    except GateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: every process stopped and the worktrees removed", file=sys.stderr)
        return 130


def _gate(args: argparse.Namespace, started: float) -> int:
    repo = toplevel(Path.cwd())
    head = resolve(repo, args.head)
    base = resolve(repo, args.base) if args.base is not None else default_base(repo, head)
    settings = GATE_PRESETS[args.preset]
    target_paths = [repo_relative(repo, Path(t)) for t in args.targets]
    run_dir = args.out or default_run_dir("gate-")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GateError(f"--out: cannot create {run_dir}: {exc.strerror or exc}") from None
    with run_dir_locked(run_dir):  # a second gate (or sweep) on the same --out is refused meanwhile
        if (run_dir / "comparison.json").exists():
            raise GateError(f"--out: {run_dir} already holds a gate run; pick another directory")
        revisions = [("base", args.base or "merge base", base), ("head", args.head, head)]
        sides, runs = _measure(repo, revisions, settings, target_paths, run_dir, args)
        return finish(sides, runs, run_dir, args, started)


def _measure(
    repo: Path,
    revisions: Sequence[tuple[str, str, str]],
    settings: SweepSettings,
    target_paths: Sequence[Path],
    run_dir: Path,
    args: argparse.Namespace,
) -> tuple[list[Side], dict[str, RunResults]]:
    """Both revisions checked out in temporary worktrees (removed afterwards, whatever happens), measured."""
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as scratch_name:
        scratch = Path(scratch_name)
        (_, _, base), (_, _, head) = revisions
        with (
            worktree(repo, base, scratch / "base") as base_tree,
            worktree(repo, head, scratch / "head") as head_tree,
        ):
            checked_out = [
                (name, given, commit, tree)
                for (name, given, commit), tree in zip(revisions, (base_tree, head_tree), strict=True)
            ]
            sides = prepare_sides(repo, checked_out, target_paths=list(target_paths), scratch=scratch)
            if target_paths:
                settings = settings_for_targets(settings, sides)
            print(
                f"gate: base {sides[0].short} vs head {sides[1].short}, preset {args.preset}, "
                f"{args.rounds} rounds a side, interleaved; writing {run_dir}",
                flush=True,
            )
            return sides, measure_sides(sides, settings, run_dir, rounds=args.rounds, preset=args.preset)


def finish(
    sides: Sequence[Side],
    runs: dict[str, RunResults],
    run_dir: Path,
    args: argparse.Namespace,
    started: float,
) -> int:
    """Judge, write comparison.md/.json, gate.png and summary.md (also the CI step summary), print."""
    wall = time.monotonic() - started
    for side in sides:
        runs[side.name].metadata["wall_time_s"] = round(wall, 1)
        runs[side.name].save(run_dir / side.name)
    try:
        comparison: Comparison = compare_runs(
            runs["base"], runs["head"], tolerance=args.tolerance, gate=GATE_METRICS, count_unsteady=True
        )
    except Incomparable as exc:
        raise GateError(f"the two sides cannot be compared: {exc}") from None
    shown = Shown(
        baseline=f"base {sides[0].short}", current=f"head {sides[1].short}", tolerance=args.tolerance,
        gate=GATE_METRICS,
    )  # fmt: skip
    columns = (*GATE_METRICS, "cpu", "overhead_p50")  # the gated figures, and the raw ones people know
    table = render(comparison, runs["base"], runs["head"], shown, columns=columns)
    (run_dir / "comparison.md").write_text(table)
    data = to_json(comparison)
    data["gate"] = {
        "base": sides[0].commit,
        "head": sides[1].commit,
        "rounds": args.rounds,
        "preset": args.preset,
        "wall_time_s": round(wall, 1),
    }
    (run_dir / "comparison.json").write_text(json.dumps(data, indent=2) + "\n")
    chart = gate_report.chart(runs, run_dir / "gate.png")
    summary = gate_report.summary(
        comparison, runs, table=table, sides=sides, rounds=args.rounds, wall_s=wall, chart=chart
    )
    (run_dir / "summary.md").write_text(summary)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(summary + "\n")
    verdict = "REGRESSION" if comparison.failed else "no regression"
    print(table)
    print(f"gate: {verdict}; wall time {wall:.0f} s; {run_dir}")
    return 1 if comparison.failed else 0


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
