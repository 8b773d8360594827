"""The verdict on real measurements: a sweep through real processes, with the SDK's pool cut to 8 in the
sweep's own environment (which it passes to the servers), so fastapi-async really holds only 8 calls.

Nothing predicted decides: the registry still says 1000 for fastapi-async and 40 for fastapi-def, the
warm-ups are detected from the data, and the verdict must report what the mock's gauge measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.results import Point, RunResults, load_results
from loadtests.verdict import compute_verdict

REPO = Path(__file__).resolve().parents[2]
TIME_SCALE = 0.05
L = 2.0 * TIME_SCALE
POOL = 8
USERS = (80,)  # one level is enough for every claim here: above each cap, short of 100


@pytest.fixture(scope="module")
def pooled_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunResults]:
    run_dir = tmp_path_factory.mktemp("pooled") / "run"
    env = {**os.environ, "BENCH_UPSTREAM_MAX_CONNECTIONS": str(POOL)}
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "sweep", "--variants", "flask-sync,fastapi-async,fastapi-def",
         "--scenarios", "analyse", "--users", ",".join(map(str, USERS)), "--time-scale", str(TIME_SCALE),
         "--duration", "1", "--seed", "5", "--out", str(run_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    yield load_results(run_dir)


def _point(run: RunResults, variant: str, users: int) -> Point:
    return next(p for p in run.points if p.variant == variant and p.users == users)


def _harness_reasons(point: Point) -> list[str]:
    # Other test suites may share this machine: only a noisy neighbour may invalidate a point.
    return [r for r in point.invalid_reasons if not r.startswith("other processes used")]


def test_every_point_is_valid_although_the_prediction_is_wrong(pooled_run: RunResults) -> None:
    for point in pooled_run.points:
        assert _harness_reasons(point) == [], (point.variant, point.users, point.invalid_reasons)
        assert point.steady_state is not None and point.steady_state["detected"]


def test_the_pool_is_the_ceiling_the_mock_measures(pooled_run: RunResults) -> None:
    point = _point(pooled_run, "fastapi-async", 80)
    assert point.predicted_ceiling > POOL  # the registry predicts more than the pool allows
    assert point.upstream_peak_in_flight == POOL
    big_l = point.upstream_latency_s or L
    # About 8/L: each pooled call is L plus the server's few ms, a visible share of a 0.1 s L.
    assert 0.8 * POOL / big_l <= point.throughput_rps <= 1.02 * POOL / big_l
    # The wait for a pooled connection happens before the upstream call: 80 users share 8, so about
    # 9 upstream periods pass before a request's call reaches the mock.
    assert point.breakdown_ms is not None and point.breakdown_ms["matched"] >= point.completed
    before = point.breakdown_ms["before_upstream"]["p50"]
    assert 0.8 * (80 / POOL - 1) * big_l * 1000 <= before <= 1.2 * (80 / POOL) * big_l * 1000


def test_a_saturated_queue_is_waited_out_before_the_window(pooled_run: RunResults) -> None:
    point = _point(pooled_run, "flask-sync", 80)
    big_l = point.upstream_latency_s or L
    queue_s = 80 / 4 * big_l  # each request waits for 20 upstream periods in steady state
    assert point.warmup_s >= queue_s  # the data, not a prediction, said when the queue had filled
    assert point.latency_ms is not None
    assert 0.95 * queue_s * 1000 <= point.latency_ms.p50 <= 1.15 * queue_s * 1000
    assert point.littles_law is not None and abs(point.littles_law.ratio - 1) <= 0.1
    assert point.breakdown_ms is not None
    assert point.breakdown_ms["before_upstream"]["p50"] >= 0.9 * (queue_s - big_l) * 1000
    assert point.overhead_ms is not None and point.overhead_ms.p50 >= 0.9 * (queue_s - big_l) * 1000


def test_the_verdict_follows_the_measurement(pooled_run: RunResults) -> None:
    claims = {c.id: c for c in compute_verdict(pooled_run).claims}
    assert claims["flask-sync-holds-4"].status == "reproduced", claims["flask-sync-holds-4"].evidence
    fastapi = claims["fastapi-async-holds-100"]
    assert fastapi.status == "not_reproduced", fastapi.evidence
    assert f"measured ceiling {POOL} in flight" in fastapi.evidence
    # Both bounds: a `def` endpoint that holds 8 (its pool) does not "hold at most 40".
    capped = claims["fastapi-def-caps-40"]
    assert capped.status == "not_reproduced", capped.evidence
    assert (
        f"measured ceiling {POOL} in flight" in capped.evidence and "below the claimed 40" in capped.evidence
    )
