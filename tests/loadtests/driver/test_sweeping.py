"""The sweep's loop over a group with a fake measurement: a point spoilt by a transient reason alone is
measured once more (both kept), one invalid for the server's sake is not."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from loadtests.analysis.validity import MOCK_LATE, OTHER_CPU
from loadtests.driver import sweeping
from loadtests.driver.pointspec import PointSpec
from loadtests.driver.schedule import Group
from loadtests.presets import PRESETS
from loadtests.results import Point


def _point(spec: PointSpec, reasons: list[str]) -> Point:
    return Point(
        variant=spec.variant, scenario=spec.scenario, load_model="closed", users=spec.users, rate=None,
        repeat=spec.repeat, duration_s=5.0, completed=50, failed=0, unfinished=0, throughput_rps=8.0,
        latency_ms=None, ttft_ms=None, upstream_peak_in_flight=8, upstream_requests=50, littles_law=None,
        cpu=None, valid=not reasons, invalid_reasons=reasons, warmup_s=2.0, failures_by_status={},
        predicted_ceiling=4, server_cpu_ms_per_request=1.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("first", "measured_again"),
    [
        ([f"{OTHER_CPU} used 88% of a core"], True),
        ([f"{MOCK_LATE} by 32 ms at p99"], True),
        (["Little's law off by 40%"], False),  # the server's own doing: measuring again would hide it
        ([], False),
    ],
)
def test_a_point_spoilt_only_by_a_transient_reason_is_measured_once_more(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, first: list[str], measured_again: bool
) -> None:
    measured: list[PointSpec] = []

    def fake_measure(session: Any, spec: PointSpec, settings: Any, run_dir: Path) -> Point:
        measured.append(spec)
        return _point(spec, first if len(measured) == 1 else [])

    monkeypatch.setattr(sweeping, "measure_point", fake_measure)
    settings = dataclasses.replace(PRESETS["quick"], repeat=2)
    saved: list[int] = []
    run = SimpleNamespace(results=SimpleNamespace(points=[]), run_dir=tmp_path, save=lambda: saved.append(1))
    sweep = sweeping.Sweep(settings=settings, run=run, console=Console(file=io.StringIO()))  # type: ignore[arg-type]
    sweep.progress = sweeping._progress(sweep.console)
    sweep.task = sweep.progress.add_task("t", total=1.0, done=0, points=1)
    spec = PointSpec(
        variant="flask-sync", scenario="analyse", load_model="closed", users=8, rate=None, repeat=1
    )
    sweep._measure_group(Group(variant="flask-sync", mock_profile="article", specs=[spec]), session=None)  # type: ignore[arg-type]
    points = run.results.points
    if measured_again:
        assert [s.repeat for s in measured] == [1, 3]  # the next unused index: repeats 0 and 1 are the plan's
        assert [p.valid for p in points] == [False, True]
        assert points[1].extra["measured_again"].startswith("the first measurement was invalid: ")
    else:
        assert [s.repeat for s in measured] == [1] and len(points) == 1
