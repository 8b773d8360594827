"""The gate's measuring part: each revision as a side (its worktree, its environment, its servers), and
rounds that measure both sides with fresh processes in alternating order.

The measurer (this checkout's ``loadtests``) and the mock (this checkout's ``mock_llm``) are one and the
same instrument for both sides; the measured code is each revision's ``servers/`` (or your own app's
target files, as that revision has them). See ``loadtests.commands.gate`` for the whole procedure.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.driver.gate_git import (
    GateError,
    Side,
    check_harness,
    check_imports_from,
    dependency_key,
    environment_for,
    server_env,
    side_targets,
)
from loadtests.driver.interrupts import deferred_interrupts
from loadtests.driver.measure import measure_point
from loadtests.driver.metadata import collect_all, collect_harness_version, utc_now
from loadtests.driver.pointspec import PointSpec
from loadtests.driver.processes import LOOPBACK, ManagedProcess, free_port
from loadtests.driver.schedule import Group, group_points, plan_points, upstream_latency_s
from loadtests.driver.session import VariantSession
from loadtests.driver.session import server_env as session_env
from loadtests.driver.targets import TargetError, TargetSpec, register
from loadtests.driver.verify import ContractError
from loadtests.errors import ProcessStartError
from loadtests.presets import SweepSettings
from loadtests.results import RunResults

REPO = Path(__file__).resolve().parents[2]

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


def prepare_sides(
    repo: Path,
    revisions: Sequence[tuple[str, str, str, Path]],
    *,
    target_paths: Sequence[Path],
    scratch: Path,
) -> list[Side]:
    """One side per (name, revision as given, commit, worktree): its code checked and its environment
    chosen (this one when the revision pins the same dependencies, a fresh one otherwise)."""
    sides = []
    for name, revision, commit, tree in revisions:
        label = f"{name} {revision} ({commit[:10]})"
        if target_paths:  # your own app: its files and code from this revision, this environment
            specs = side_targets(tree, list(target_paths), label)
            sides.append(
                Side(
                    name=name, revision=revision, commit=commit, tree=tree, python=sys.executable,
                    env_reused=True, targets=specs,
                )
            )  # fmt: skip
            continue
        check_harness(tree, label)
        python, reused = environment_for(tree, name, own_key=dependency_key(REPO), scratch=scratch)
        side = Side(name=name, revision=revision, commit=commit, tree=tree, python=python, env_reused=reused)
        check_imports_from(side)
        sides.append(side)
    return sides


def settings_for_targets(settings: SweepSettings, sides: Sequence[Side]) -> SweepSettings:
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
    runs = {side.name: side_results(side, settings, preset) for side in sides}
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


def side_results(side: Side, settings: SweepSettings, preset: str) -> RunResults:
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
                self.side.tree, {**session_env(self.run_dir, self.group.variant), **self.group.server_env}
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
