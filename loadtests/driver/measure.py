"""One point on a started variant: wait until the previous point's load has drained (restart the variant
when it does not), then measure it; a point whose measurement broke is kept, invalid, with the reason."""

from __future__ import annotations

import os
from pathlib import Path

from loadtests.driver.loadgen import PointError, RemoteWorkers
from loadtests.driver.pointbuild import failed_point
from loadtests.driver.pointrun import WindowProbe, run_point
from loadtests.driver.pointspec import PointSpec, Target, Timing
from loadtests.driver.rundir import strip_paths
from loadtests.driver.schedule import timing_for
from loadtests.driver.session import VariantSession
from loadtests.errors import ProcessStartError
from loadtests.presets import SweepSettings
from loadtests.results import Point

OPEN_LOOP_CUT_L = 10.0  # an open-loop point whose mean latency rises past this x L is cut short


def measure_point(
    session: VariantSession,
    spec: PointSpec,
    settings: SweepSettings,
    run_dir: Path,
    *,
    slo_latency_ms: float | None = None,
    min_completions: int | None = None,
    min_periods: int | None = None,
    window_probe: WindowProbe | None = None,
) -> Point:
    """One point on a started variant: wait until the previous point's load has drained (restart the
    variant when it does not), then measure. A point whose measurement broke is kept, invalid.
    ``window_probe``: see :data:`loadtests.driver.pointrun.WindowProbe`."""
    timing = timing_for(spec, settings, min_completions=min_completions, min_periods=min_periods)
    latency = timing.latency_s
    if slo_latency_ms is None and spec.load_model == "open" and latency > 0:
        # An offered rate the variant cannot sustain shows as latency rising without end: once its mean
        # passes OPEN_LOOP_CUT_L x L and still rises, the point ends (invalid, and says so) instead of
        # queueing until --max-warmup.
        slo_latency_ms = OPEN_LOOP_CUT_L * latency * 1000.0
    restarted = not session.settle(timeout_s=max(3.0, 2 * latency))
    drained = True
    if restarted:
        session.restart_server()
        drained = session.settle(timeout_s=max(3.0, 2 * latency))
    ceiling = session.spec().ceiling_for(spec.scenario)
    target = session.target(ceiling=ceiling, latency_s=latency, scenario=spec.scenario)
    if not drained:
        point = failed_point(
            spec,
            target,
            timing,
            "the mock still had calls in flight (or stopped answering) after the variant was restarted; "
            "see the mock's log in logs/",
        )
    else:
        point = _measure(spec, target, timing, session, settings, run_dir, slo_latency_ms, window_probe)
    if restarted:
        point.extra["server_restarted_before"] = (
            "the previous point's backlog did not drain; the variant was restarted"
        )
    return point


def _measure(
    spec: PointSpec,
    target: Target,
    timing: Timing,
    session: VariantSession,
    settings: SweepSettings,
    run_dir: Path,
    slo_latency_ms: float | None,
    window_probe: WindowProbe | None = None,
) -> Point:
    for proc in (session.server, session.mock):
        if proc is None or not proc.running():
            name = "the variant" if proc is None else proc.name
            return failed_point(spec, target, timing, f"{name} died before this point; see its log")
    try:
        return run_point(
            spec,
            target,
            timing,
            run_dir=run_dir,
            loadgen_processes=settings.loadgen_processes,
            seed=settings.seed,
            max_in_flight=settings.max_in_flight,
            env=dict(os.environ),
            remote=RemoteWorkers(
                count=settings.remote_workers, bind=settings.master_bind, port=settings.master_port
            ),
            slo_latency_ms=slo_latency_ms,
            window_probe=window_probe,
        )
    except (PointError, ProcessStartError, OSError) as exc:
        return failed_point(spec, target, timing, strip_paths(str(exc), run_dir))
