"""Jobs end: a job whose worker process is killed (a gunicorn worker running it in a thread, a Celery pool
process) is reported failed by the next poll, and background work is bounded (503 with Retry-After when a
process's slots are taken)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
from serverkit import ServerSpec, fleet, request, server_process

STALL = {"text": "A report to analyse at length. mock-fault:stall_midstream", "analysis_type": "summary"}
PLAIN = {"text": "A report to analyse, with nothing wrong.", "analysis_type": "summary"}


def _poll(port: int, job_id: str, until: tuple[str, ...], timeout_s: float = 30.0) -> dict[str, object]:
    end = time.monotonic() + timeout_s
    while True:
        answer = request(port, "GET", f"/jobs/{job_id}", timeout=10)
        if answer.status == 200 and answer.json()["status"] in until:
            return dict(answer.json())
        assert time.monotonic() < end, answer
        time.sleep(0.05)


def test_killed_worker_fails_its_job_and_slots_bound_the_work(servers_log_dir: Path) -> None:
    env = {
        "BENCH_MAX_BACKGROUND_JOBS": "1",
        "BENCH_UPSTREAM_DEADLINE_S": "60",
        "BENCH_UPSTREAM_TIMEOUT_S": "60",
    }
    with fleet(servers_log_dir) as group:
        mock = group.mock("jobs", "--profile", "instant")
        group.wait_ready()
        proc, port = server_process(
            servers_log_dir, ServerSpec(variant="flask-sync", upstream_port=mock, env=env, workers=1)
        )
        with proc:
            stuck = request(port, "POST", "/analyse/async", json_body=STALL).json()["job_id"]
            assert _poll(port, stuck, ("running",))["status"] == "running"
            busy = request(port, "POST", "/analyse/async", json_body=PLAIN)
            assert busy.status == 503 and busy.json()["error"] == "jobs_busy", busy
            assert busy.headers["retry-after"] == "1"

            workers = [
                p
                for p in psutil.Process(proc.pid).children(recursive=True)
                if "gunicorn" in " ".join(p.cmdline())
            ]
            worker = next(
                p for p in workers if p.parent() is not None and p.parent().pid in {w.pid for w in workers}
            )
            os.kill(worker.pid, signal.SIGKILL)  # the job's thread dies with its process
            started = time.monotonic()
            failed = _poll(port, stuck, ("failed", "done"))  # answered by the worker gunicorn starts anew
            assert failed["status"] == "failed" and failed["error"]["error"] == "worker_lost", failed  # type: ignore[index]
            assert time.monotonic() - started < 20

            fresh = request(port, "POST", "/analyse/async", json_body=PLAIN)  # the new process has its slot
            assert fresh.status == 202, fresh
            assert _poll(port, fresh.json()["job_id"], ("done", "failed"))["status"] == "done"


def _celery_pool(run_pid: int) -> list[psutil.Process]:
    """The prefork pool processes: the children of the Celery worker `run` started."""
    worker = next(
        p for p in psutil.Process(run_pid).children() if "servers.celery_app" in " ".join(p.cmdline())
    )
    return list(worker.children())


def test_a_celery_job_whose_pool_process_is_killed_is_failed_and_the_worker_recovers(
    servers_log_dir: Path,
) -> None:
    """flask-celery: the job is watched from the moment a pool process marks it running (while queued in
    the broker nothing is), so killing that process fails it at the next poll, from any web worker."""
    env = {"BENCH_UPSTREAM_DEADLINE_S": "60", "BENCH_UPSTREAM_TIMEOUT_S": "60"}
    with fleet(servers_log_dir) as group:
        mock = group.mock("celery-jobs", "--profile", "instant")
        group.wait_ready()
        proc, port = server_process(
            servers_log_dir, ServerSpec(variant="flask-celery", upstream_port=mock, env=env)
        )
        with proc:
            stuck = request(port, "POST", "/analyse/async", json_body=STALL).json()["job_id"]
            assert _poll(port, stuck, ("running",))["status"] == "running"
            pool = _celery_pool(proc.pid)
            assert pool, "no prefork pool processes"
            for process in pool:  # the one running the job among them
                process.kill()
            started = time.monotonic()
            failed = _poll(port, stuck, ("failed", "done"))
            assert failed["status"] == "failed" and failed["error"]["error"] == "worker_lost", failed  # type: ignore[index]
            assert time.monotonic() - started < 20

            fresh = request(port, "POST", "/analyse/async", json_body=PLAIN)  # billiard starts new ones
            assert fresh.status == 202, fresh
            assert _poll(port, fresh.json()["job_id"], ("done", "failed"))["status"] == "done"
