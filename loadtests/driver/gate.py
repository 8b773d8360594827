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
comparison (``loadtests.reporting.compare``, the rank test of ``loadtests.analysis.gate_stats`` once both
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
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from loadtests.argtypes import number
from loadtests.driver.gate_git import (
    GateError,
    Side,
    check_harness,
    check_imports_from,
    default_base,
    dependency_key,
    environment_for,
    repo_relative,
    resolve,
    server_env,
    side_targets,
    toplevel,
    worktree,
)
from loadtests.driver.interrupts import deferred_interrupts, stop_signals_interrupt
from loadtests.driver.metadata import collect_all, collect_harness_version, utc_now
from loadtests.driver.pointrun import PointSpec
from loadtests.driver.processes import LOOPBACK, ManagedProcess, ProcessStartError, free_port
from loadtests.driver.targets import TargetError, TargetSpec, register
from loadtests.driver.verify import ContractError
from loadtests.errors import UserError
from loadtests.presets import SweepSettings
from loadtests.reporting import gate_report
from loadtests.reporting.compare import Comparison, Incomparable, compare_runs, render, to_json
from loadtests.results import RunResults
from loadtests.sweep import (
    REPO,
    Group,
    VariantSession,
    _server_env,
    group_points,
    measure_point,
    plan_points,
    upstream_latency_s,
)

DEFAULT_ROUNDS = 5
MIN_ROUNDS = 3
# Gated: what a code change moves when no upstream wait hides it, each relative to the mock's CPU per
# request in the same window (compare.machine_speed_ms): the machine's speed drifts between rounds, and a
# revision compared with itself failed on raw CPU when head's rounds happened to land in slower spells.
# Latency p50/p95 of the overhead scenario are its overhead (the instant upstream takes ~0 ms): reported.
GATE_METRICS = ("throughput_rel", "errors", "cpu_rel", "overhead_p50_rel", "overhead_p95_rel", "memory")
GATE_PRESETS: dict[str, SweepSettings] = {
    # About 4 minutes for 5 rounds on 2 cores: the article's two variants against an instant upstream,
    # where CPU per request decides throughput and overhead. Two users leave the machine some idle CPU:
    # at 4, flask-sync, Locust and the mock saturated both cores and a third of the windows drifted.
    "gate": SweepSettings(
        variants=("flask-sync", "fastapi-async"),
        scenarios=("overhead",),
        users=(2,),
        rates=(),
        time_scale=0.5,
        duration_s=3.0,
        max_warmup_s=20.0,
    ),
    # For the gate's own test: one variant, a fixed short warm-up and window (seconds, not minutes).
    "gate-tiny": SweepSettings(
        variants=("fastapi-async",),
        scenarios=("overhead",),
        users=(2,),
        rates=(),
        time_scale=0.5,
        duration_s=1.0,
        warmup_s=1.0,
    ),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see python -m loadtests gate --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    run_dir = args.out or Path("results") / f"gate-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    if (run_dir / "comparison.json").exists():
        raise GateError(f"--out: {run_dir} already holds a gate run; pick another directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GateError(f"--out: cannot create {run_dir}: {exc.strerror or exc}") from None
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as scratch_name:
        scratch = Path(scratch_name)
        with (
            worktree(repo, base, scratch / "base") as base_tree,
            worktree(repo, head, scratch / "head") as head_tree,
        ):
            sides = []
            for name, revision, commit, tree in (
                ("base", args.base or "merge base", base, base_tree),
                ("head", args.head, head, head_tree),
            ):
                label = f"{name} {revision} ({commit[:10]})"
                if target_paths:  # your own app: its files and code from this revision, this environment
                    specs = side_targets(tree, target_paths, label)
                    side = Side(
                        name=name, revision=revision, commit=commit, tree=tree, python=sys.executable,
                        env_reused=True, targets=specs,
                    )  # fmt: skip
                    sides.append(side)
                    continue
                check_harness(tree, label)
                own_key = dependency_key(REPO)
                python, reused = environment_for(tree, name, own_key=own_key, scratch=scratch)
                side = Side(
                    name=name, revision=revision, commit=commit, tree=tree, python=python, env_reused=reused
                )
                check_imports_from(side)
                sides.append(side)
            if target_paths:
                settings = _settings_for_targets(settings, sides)
            print(
                f"gate: base {sides[0].short} vs head {sides[1].short}, preset {args.preset}, "
                f"{args.rounds} rounds a side, interleaved; writing {run_dir}",
                flush=True,
            )
            runs = measure_sides(sides, settings, run_dir, rounds=args.rounds, preset=args.preset)
    return finish(sides, runs, run_dir, args, started)


def _settings_for_targets(settings: SweepSettings, sides: Sequence[Side]) -> SweepSettings:
    """The preset with the targets as its variants (registered for planning by head's files; each side's
    session starts and sends its own revision's)."""
    base_names, head_names = (list(side.targets) for side in sides)
    if base_names != head_names:
        raise GateError(
            f"--target: the target names differ between base ({', '.join(base_names)}) and head "
            f"({', '.join(head_names)}); a renamed target cannot be compared"
        )
    for spec in sides[1].targets.values():
        try:
            register(spec)
        except TargetError as exc:
            raise GateError(f"--target: {exc}") from None
        if not spec.supports("overhead"):
            raise GateError(
                f"--target: {spec.name} ({spec.source}) has no [scenarios.analyse]: the gate measures "
                "the analyse request against an instant upstream"
            )
    return settings.with_overrides({"variants": tuple(head_names), "scenarios": ("overhead",)})


def measure_sides(
    sides: Sequence[Side], settings: SweepSettings, run_dir: Path, *, rounds: int, preset: str
) -> dict[str, RunResults]:
    runs = {side.name: _side_results(side, settings, preset) for side in sides}
    for side in sides:
        for sub in ("raw", "logs"):
            (run_dir / side.name / sub).mkdir(parents=True, exist_ok=True)
    for round_index in range(rounds):
        order = sides if round_index % 2 == 0 else list(reversed(sides))
        for side in order:
            began = time.monotonic()
            points = measure_round(side, settings, run_dir / side.name, round_index)
            runs[side.name].points.extend(points)
            runs[side.name].save(run_dir / side.name)
            shown = ", ".join(
                f"{p.variant} {p.server_cpu_ms_per_request or float('nan'):.2f} ms/req"
                + ("" if p.valid else " (invalid)")
                for p in points
            )
            print(
                f"  round {round_index + 1}/{rounds} {side.name}: {shown} ({time.monotonic() - began:.0f} s)",
                flush=True,
            )
    for run in runs.values():
        run.metadata["finished_at"] = utc_now()
    return runs


def _side_results(side: Side, settings: SweepSettings, preset: str) -> RunResults:
    metadata = collect_all(
        argv=[],
        repo=side.tree,
        preset=preset,
        mock_profile=settings.mock_profile,
        time_scale=settings.time_scale,
        seed=settings.seed,
        upstream_latency_s=round(upstream_latency_s(settings.mock_profile, settings.time_scale), 6),
        scenarios=settings.scenarios,
        load_models=["closed"] if settings.users else ["open"],
        started_at=utc_now(),
        extra={"sweep_settings": settings.to_dict()},
    )
    metadata.update(
        command_line="python -m loadtests gate",
        # The measurer is this checkout for both sides: its harness version, not the worktree's.
        harness_version=collect_harness_version(REPO),
        gate={
            "side": side.name,
            "revision": side.revision,
            "commit": side.commit,
            "measured_code": (
                "the target files and the apps they start, of this commit"
                if side.targets
                else "servers/ of this commit (worktree on PYTHONPATH)"
            )
            + "; mock and load generator: the measurer's",
            "environment": "the measurer's (same pins)" if side.env_reused else "its own (other pins)",
        },
    )
    if side.targets:  # which app files were measured, as this revision has them
        metadata["targets"] = {
            name: {
                "file": str(Path(spec.source or "").resolve().relative_to(side.tree.resolve())),
                "sha256": spec.sha256,
            }
            for name, spec in side.targets.items()
        }
    return RunResults(metadata=metadata)


class SideSession(VariantSession):
    """A variant session whose server runs one side's code: its worktree as working directory and first
    on the import path, with its interpreter. The mock stays the measurer's."""

    def __init__(self, group: Group, settings: SweepSettings, run_dir: Path, side: Side) -> None:
        self.side = side
        super().__init__(group, settings, run_dir)

    def spec(self) -> TargetSpec:
        return self.side.targets.get(self.group.variant) or super().spec()

    def _target_env_extra(self) -> dict[str, str]:
        # Your app's packages from this revision's tree, not from an installed copy of head's.
        return {"PYTHONPATH": str(self.side.tree)}

    def _start_server(self) -> None:
        if self.group.variant in self.side.targets:  # your own app: the sweep's way, with this side's file
            super()._start_server()
            return
        port = free_port()
        self.url = f"http://{LOOPBACK}:{port}"
        self._values = self._placeholders(port)
        argv = [self.side.python, "-m", "servers", "run", self.group.variant, "--host", LOOPBACK]
        argv += ["--port", str(port), "--upstream", self.mock_url]
        self.server = ManagedProcess(
            f"{self.side.name} variant {self.group.variant}",
            argv,
            log_path=self.server_log,
            ready_url=f"{self.url}/health",
            env=server_env(
                self.side.tree, {**_server_env(self.run_dir, self.group.variant), **self.group.server_env}
            ),
            cwd=self.side.tree,
        )
        self.server.start(ready_timeout=60.0)


def measure_round(side: Side, settings: SweepSettings, side_dir: Path, round_index: int) -> list[Any]:
    """One repeat of every point for one side, every variant started afresh; a side that will not start
    or breaks the contract ends the gate (exit 2): there is nothing to compare it with."""
    specs = [
        PointSpec(
            variant=s.variant,
            scenario=s.scenario,
            load_model=s.load_model,
            users=s.users,
            rate=s.rate,
            repeat=round_index,
        )
        for s in plan_points(settings)
    ]
    points = []
    try:
        for group in group_points(specs, settings):
            with SideSession(group, settings, side_dir, side) as session:
                if round_index == 0:
                    session.verify([s.scenario for s in group.specs])
                for spec in group.specs:
                    points.append(measure_point(session, spec, settings, side_dir))
    except (ProcessStartError, ContractError) as exc:
        raise GateError(f"{side.name} ({side.short}) cannot be measured: {exc}") from None
    finally:
        with deferred_interrupts():  # every process of the round has stopped: its job databases go
            shutil.rmtree(side_dir / "tmp", ignore_errors=True)
    return points


@dataclass(frozen=True, kw_only=True)
class _Shown:
    baseline: str
    current: str
    tolerance: float
    gate: tuple[str, ...]


def finish(
    sides: Sequence[Side],
    runs: dict[str, RunResults],
    run_dir: Path,
    args: argparse.Namespace,
    started: float,
) -> int:
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
    shown = _Shown(
        baseline=f"base {sides[0].short}", current=f"head {sides[1].short}", tolerance=args.tolerance,
        gate=GATE_METRICS,
    )  # fmt: skip
    columns = (*GATE_METRICS, "cpu", "overhead_p50")  # the gated figures, and the raw ones people know
    table = render(comparison, runs["base"], runs["head"], shown, columns=columns)  # type: ignore[arg-type]
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
    from loadtests.__main__ import run

    sys.exit(run(main, sys.argv[1:]))
