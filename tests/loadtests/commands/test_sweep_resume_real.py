"""A time-scaled sweep through real processes, interrupted with Ctrl-C after its first point and resumed
to the end, with the SDK's pool cut to 8 in the sweep's own environment (which it passes to the servers),
so fastapi-async really holds only 8 calls; then the verdict on those real measurements.

Nothing predicted decides: the registry still says 1000 for fastapi-async, 40 for fastapi-def and 512 for
flask-granian, the warm-ups are detected from the data, and the verdict must report what the mock's gauge
measured.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from loadtests.analysis.verdict import compute_verdict
from loadtests.results import Point, RunResults, load_results

REPO = Path(__file__).resolve().parents[3]
TIME_SCALE = 0.1  # L = 0.2 s: at 0.05, 80 rps through the pool kept a 2-core machine so busy that
# the mock ran late (16 ms at p99), making a point invalid for the machine's sake, not the server's
L = 2.0 * TIME_SCALE
POOL = 8
USERS = (80,)  # one level is enough for every claim here: above each cap, short of 100


# A 3 s window: over 100 pooled calls, so the mock's p99 lateness is a percentile, not the one slowest.
ARGS = ["--variants", "flask-sync,fastapi-async,fastapi-def,flask-granian", "--scenarios", "analyse",
        "--users", ",".join(map(str, USERS)), "--time-scale", str(TIME_SCALE), "--duration", "3",
        "--seed", "5"]  # fmt: skip


@dataclass(frozen=True)
class Interrupted:
    run_dir: Path
    first_output: str
    first_code: int
    kept: int
    second_output: str
    second_code: int
    leftovers: list[str]  # processes still mentioning the run directory after each run


def _sweep(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "loadtests", "sweep", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _processes_using(run_dir: Path) -> list[str]:
    """Any process whose command line or environment mentions the run directory (locust, servers)."""
    needle = str(run_dir)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid == os.getpid():
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            if needle in cmdline or any(needle in v for v in proc.environ().values()):
                found.append(f"{proc.pid} {cmdline[:80]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _points_written(run_dir: Path) -> int:
    try:
        return len(json.loads((run_dir / "results.json").read_text())["points"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Interrupted:
    run_dir = tmp_path_factory.mktemp("pooled") / "run"
    env = {**os.environ, "BENCH_UPSTREAM_MAX_CONNECTIONS": str(POOL)}
    first = _sweep(env, *ARGS, "--out", str(run_dir))
    try:
        deadline = time.monotonic() + 90
        while _points_written(run_dir) < 1 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.1)
        first.send_signal(signal.SIGINT)
        first_output, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    kept = _points_written(run_dir)
    leftovers = _processes_using(run_dir)
    second = _sweep(env, "--resume", str(run_dir))
    second_output, _ = second.communicate(timeout=200)
    return Interrupted(
        run_dir=run_dir, first_output=first_output, first_code=first.returncode, kept=kept,
        second_output=second_output, second_code=second.returncode,
        leftovers=leftovers + _processes_using(run_dir),
    )  # fmt: skip


@pytest.fixture(scope="module")
def pooled_run(interrupted: Interrupted) -> Iterator[RunResults]:
    assert interrupted.second_code == 0, interrupted.second_output[-3000:]
    yield load_results(interrupted.run_dir)


def test_an_interrupted_sweep_resumes_to_a_complete_run(interrupted: Interrupted) -> None:
    assert interrupted.first_code == 130, interrupted.first_output[-2000:]
    assert f"--resume {interrupted.run_dir}" in interrupted.first_output
    assert interrupted.kept == 1
    assert interrupted.leftovers == []  # Ctrl-C and the end of the run both stopped every process
    assert f"{interrupted.kept} points done" in interrupted.second_output
    run_dir = interrupted.run_dir
    results = load_results(run_dir)
    assert sorted(p.variant for p in results.points) == [
        "fastapi-async",
        "fastapi-def",
        "flask-granian",
        "flask-sync",
    ]
    assert all(v.verified for v in results.variants) and len(results.variants) == 4
    meta = results.metadata
    for key in ("python", "packages", "cpu_count", "cpu_model", "git_commit", "command_line", "seed",
                "upstream_latency_s", "mock_profile", "time_scale", "scenarios", "load_models", "preset",
                "started_at", "finished_at", "resumed_at"):  # fmt: skip
        assert key in meta, key
    assert meta["upstream_latency_s"] == pytest.approx(L, rel=0.02) and meta["load_models"] == ["closed"]
    text = (run_dir / "results.json").read_text()
    assert str(run_dir.parent) not in text and str(REPO) not in text  # no absolute paths
    for point in results.points:
        assert point.latency_ms is not None and point.latency_ms.count == point.completed
        assert point.raw_file is not None and (run_dir / point.raw_file).exists()
    assert (run_dir / "logs" / "flask-sync.server.log").exists()
    assert (run_dir / "logs" / "fastapi-async.mock.log").exists()
    assert not (run_dir / "tmp").exists()  # working files cleaned up


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
    # About 8/L: each pooled call is L plus the server's few ms, a visible share of a short L.
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
    # Flask on granian, unchanged, holds what its process's SDK pool allows: the registry's 512 threads
    # never decide; the measured 8 contradicts "100+".
    granian = claims["flask-granian-holds-100"]
    assert granian.status == "not_reproduced", granian.evidence
    assert granian.evidence.startswith("contradicted by the measurement: flask-granian (analyse")
    assert f"measured ceiling {POOL} in flight at 80 users" in granian.evidence
