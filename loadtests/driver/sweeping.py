"""The sweep's measuring loop: every group of points in its own variant session, with a progress bar and one
line per finished point; capacity searches run in the same session after the group's fixed points.

For each variant (and each mock profile its scenarios need: ``overhead`` runs on the ``instant`` profile) it
starts the mock and the variant as real processes on free loopback ports, verifies the variant against the
server contract, runs every point (``loadtests.driver.pointrun``), and stops everything. ``results.json`` is
rewritten atomically after every point; raw per-request records go to ``raw/``, every process's log to
``logs/``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from loadtests.analysis.capacity import Slo, interval_text, judge
from loadtests.analysis.validity import only_transient
from loadtests.driver.capacity import search_in_session
from loadtests.driver.loadgen import RemoteWorkers
from loadtests.driver.measure import measure_point
from loadtests.driver.options import known_variants
from loadtests.driver.pointbuild import MEASUREMENT_FAILED
from loadtests.driver.pointspec import PointSpec
from loadtests.driver.rundir import Run
from loadtests.driver.schedule import (
    VARIANT_OVERHEAD_S,
    Group,
    capacity_guess,
    capacity_todo,
    estimate_seconds,
    group_guess_s,
    group_points,
    level_guess_s,
    plan_points,
    point_guess_s,
    point_key,
    upstream_latency_s,
)
from loadtests.driver.session import VariantSession
from loadtests.errors import ProcessStartError
from loadtests.presets import SweepSettings
from loadtests.results import Point


@dataclass(frozen=True, kw_only=True)
class SweepPlan:
    """What is left to measure: points, capacity searches, grouped by variant session."""

    done: int  # points already measured (a resumed run)
    todo: list[PointSpec]
    searches: list[tuple[str, str]]
    groups: list[Group]
    total_points: int  # about: a search's levels are guessed
    estimate_s: float


def plan_sweep(settings: SweepSettings, run: Run) -> SweepPlan:
    """The plan for this run; a point whose measurement broke is measured again (its stale copy goes)."""
    results = run.results
    results.points = [p for p in results.points if not p.extra.get(MEASUREMENT_FAILED)]
    done = {point_key(p) for p in results.points}
    todo = [s for s in plan_points(settings) if s.key not in done]
    searches = capacity_todo(settings, results)
    groups = group_points(todo, settings, searches)
    total = len(todo) + sum(len(capacity_guess(v, c, settings)) for v, c in searches)
    return SweepPlan(
        done=len(done), todo=todo, searches=searches, groups=groups, total_points=total,
        estimate_s=estimate_seconds(groups, settings),
    )  # fmt: skip


def figures(point: Point) -> str:
    """A finished point in one line of progress: throughput, p95 and the mock's peak in flight."""
    p95 = point.latency_ms.p95 if point.latency_ms else float("nan")
    return f"{point.throughput_rps:.2f} rps, p95 {p95:.0f} ms, peak {point.upstream_peak_in_flight}"


def remote_workers(settings: SweepSettings) -> RemoteWorkers:
    return RemoteWorkers(count=settings.remote_workers, bind=settings.master_bind, port=settings.master_port)


def _progress(console: Any) -> Any:
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[done]}/{task.fields[points]} points"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def transient_only(point: Point) -> bool:
    """Invalid for transient reasons alone (the mock late, neighbours' CPU, steal): worth measuring again."""
    return (
        not point.valid
        and not point.extra.get(MEASUREMENT_FAILED)
        and bool(point.invalid_reasons)
        and only_transient(point.invalid_reasons)
    )


@dataclass(kw_only=True)
class Sweep:
    """Measures a plan into a run, one variant session per group; progress goes to ``console``."""

    settings: SweepSettings
    run: Run
    console: Any
    progress: Any = None
    task: Any = None
    points_done: int = 0

    def measure(self, plan: SweepPlan) -> None:
        """Every group of the plan; a KeyboardInterrupt stops it between (or inside) points."""
        self.progress = _progress(self.console)
        with self.progress:
            self.task = self.progress.add_task(
                "starting", total=max(plan.estimate_s, 1.0), done=0, points=plan.total_points
            )
            self.run.each_session(
                plan.groups,
                self.settings,
                self._measure_group,
                verify=lambda group: [*(s.scenario for s in group.specs), *group.capacity],
                on_failed=self._failed,
                starting=lambda group: self.progress.update(
                    self.task, description=f"starting {group.variant} (mock {group.mock_profile})"
                ),
            )

    def _measure_group(self, group: Group, session: VariantSession) -> None:
        self.progress.advance(self.task, VARIANT_OVERHEAD_S)
        for spec in group.specs:
            point = self._measure(session, spec)
            if transient_only(point):
                # Spoilt by the machine or the mock's timing, not the server: measured once more, both kept
                # (the second under the next unused repeat index), and the level is read from the valid one.
                again = replace(spec, repeat=spec.repeat + self.settings.repeat)
                self._measure(
                    session,
                    again,
                    why="the first measurement was invalid: " + "; ".join(point.invalid_reasons),
                )
            self.progress.advance(self.task, point_guess_s(spec, self.settings))
        for scenario in group.capacity:
            self._search(session, scenario)

    def _measure(self, session: VariantSession, spec: PointSpec, *, why: str | None = None) -> Point:
        self.progress.update(self.task, description=f"{spec.label()}")
        point = measure_point(session, spec, self.settings, self.run.run_dir)
        if why is not None:
            point.extra["measured_again"] = why
        self._record(point)
        status = "ok" if point.valid else "[red]invalid[/]: " + "; ".join(point.invalid_reasons)
        again = " (measured again)" if why is not None else ""
        self.progress.console.print(f"  {spec.label()}{again}: {figures(point)} — {status}")
        return point

    def _record(self, point: Point) -> None:
        self.run.results.points.append(point)
        self.run.save()
        self.points_done += 1
        self.progress.update(self.task, done=self.points_done)

    def _failed(self, group: Group, exc: Exception) -> None:
        log = self.run.run_dir / "logs" / f"{group.variant}.server.log"
        reason = str(exc)
        shown = reason if isinstance(exc, ProcessStartError) else f"variant {group.variant}: {reason}"
        self.progress.console.print(f"[red]error[/]: {shown}")
        if not isinstance(exc, ProcessStartError):
            self.progress.console.print(f"  (its log: {log})")
        self.run.variant_not_measured(group.variant, reason=self.run.strip_paths(reason), log=log)
        self.progress.advance(self.task, VARIANT_OVERHEAD_S + group_guess_s(group, self.settings))

    def _search(self, session: VariantSession, scenario: str) -> None:
        """One capacity search in this variant's session (the capacity command's rules and SLO)."""
        variant = session.group.variant
        slo = Slo()
        big_l = upstream_latency_s(self.settings.mock_profile, self.settings.time_scale)
        # Every closed-loop point of this variant and scenario is a level the search need not measure
        # again: its own from an interrupted run, and the sweep's fixed points (measured in full).
        prior = [
            p
            for p in self.run.results.points
            if p.variant == variant and p.scenario == scenario and p.load_model == "closed"
        ]
        guessed = capacity_guess(variant, scenario, self.settings)

        def on_point(point: Point) -> None:
            self._record(point)
            if guessed:  # the ETA's guess of this search, one level at a time
                self.progress.advance(self.task, level_guess_s(guessed.pop(0), self.settings))
            judged = judge(point, slo, point.upstream_latency_s or big_l)
            verdict = {True: "meets the SLO", False: f"fails the SLO ({judged.why})", None: judged.why}[
                judged.passed
            ]
            self.progress.console.print(
                f"  {variant} {scenario} capacity search, {point.users} u: {figures(point)} — {verdict}"
            )

        self.progress.update(self.task, description=f"{variant} {scenario} capacity search")
        entry = search_in_session(
            session, scenario, self.settings, self.run.run_dir, slo=slo, nominal_latency_s=big_l,
            max_users=self.settings.capacity_max_users, max_points=self.settings.capacity_max_points,
            on_point=on_point, prior=prior,
        )  # fmt: skip
        self.run.results.capacity.append(entry)
        self.run.save()
        for spec in guessed:  # levels the guess had and the search did not need
            self.progress.advance(self.task, level_guess_s(spec, self.settings))
        self.progress.console.print(
            f"  {variant} {scenario}: capacity {interval_text(entry)} ({entry['throughput_rps']} rps at "
            f"{entry['users']}), bound {entry['bound']}, {entry['points']} levels"
        )


def unsupported_notes(settings: SweepSettings) -> list[str]:
    """Variants that skip some of the run's scenarios (skipped, not failed: the variant table says so)."""
    notes = []
    for name in settings.variants:
        note = known_variants()[name].unsupported_note(settings.scenarios)
        if note is not None:
            notes.append(f"{name}: {note}")
    return notes
