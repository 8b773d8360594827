"""The job store behind POST /analyse/async and GET /jobs/{id}, shared by all worker processes.

Ids are 128-bit ``secrets.token_urlsafe`` strings; each job records a hash of the token that made it
and is only returned for that token (anyone else gets the same 404 as for an unknown id). A job never
stays queued or running past its deadline: a poll after it, or after the worker process that runs the
job has gone (identified by pid and start time, so a reused pid is no alibi), marks it failed. Finished
jobs expire ``ttl_s`` seconds after they finish and are deleted, as are jobs that never finished, at most
once a second per process when jobs are created or polled. :class:`JobSlots` bounds the background work
one process runs at a time.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil

from servers.sqlite_db import SharedDb

PURGE_EVERY_S = 1.0
NO_WORKER = 0  # the worker_pid of a job queued for another process (Celery): nothing to watch yet
JOB_TIMEOUT = {"status": 504, "error": "job_timeout", "detail": "The job did not finish within its deadline"}
WORKER_LOST = {"status": 503, "error": "worker_lost", "detail": "The worker process running the job stopped"}


def _this_process() -> tuple[int, float]:
    pid = os.getpid()
    return pid, psutil.Process(pid).create_time()


def process_alive(pid: int, started: float) -> bool:
    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - started) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


class JobSlots:
    """At most ``limit`` background jobs at once in this process (threads, greenlets or tasks)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self._used >= self.limit:
                return False
            self._used += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._used -= 1


@dataclass(frozen=True, kw_only=True)
class JobRecord:
    job_id: str
    status: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"job_id": self.job_id, "status": self.status}
        if self.result is not None:
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error
        return out


class JobStore:
    def __init__(
        self, db: SharedDb, *, ttl_s: float, deadline_s: float = 3600.0, purge_every_s: float = PURGE_EVERY_S
    ) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.purge_every_s = purge_every_s
        self.deadline_s = deadline_s  # from creation: time queued counts
        self._process: tuple[int, float] | None = None
        self._next_purge = 0.0

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + self.purge_every_s
        cutoff = now - self.ttl_s
        conn.execute(
            "DELETE FROM jobs WHERE (finished IS NOT NULL AND finished < ?)"
            " OR (finished IS NULL AND deadline < ?)",
            (cutoff, cutoff),
        )

    def _worker(self) -> tuple[int, float]:
        if self._process is None or self._process[0] != os.getpid():  # once per (forked) process
            self._process = _this_process()
        return self._process

    def create(self, owner: str, *, runs_here: bool = True) -> str:
        """A new queued job. ``runs_here=False``: another process (a Celery worker) will run it, so no
        process is watched until one marks it running."""
        job_id = secrets.token_urlsafe(16)
        now = time.time()
        pid, started = self._worker() if runs_here else (NO_WORKER, 0.0)

        def insert(conn: sqlite3.Connection) -> None:
            self._purge(conn, now)
            conn.execute(
                "INSERT INTO jobs (id, owner, status, created, deadline, worker_pid, worker_started)"
                " VALUES (?, ?, 'queued', ?, ?, ?, ?)",
                (job_id, owner, now, now + self.deadline_s, pid, started),
            )

        self.db.run(insert)
        return job_id

    # A job failed by a poll (deadline, lost worker) stays failed: the worker's late word is ignored.
    def mark_running(self, job_id: str) -> bool:
        """False when the job is no longer queued (a poll failed it while it waited): then skip it.
        The process that runs it is the one watched from now on (the creator, but for Celery's)."""
        pid, started = self._worker()
        cursor = self.db.run(
            lambda c: c.execute(
                "UPDATE jobs SET status = 'running', worker_pid = ?, worker_started = ?"
                " WHERE id = ? AND status = 'queued'",
                (pid, started, job_id),
            )
        )
        return bool(cursor.rowcount == 1)

    def finish(self, job_id: str, result_json: bytes) -> None:
        self.db.run(
            lambda c: c.execute(
                "UPDATE jobs SET status = 'done', result = ?, finished = ? WHERE id = ? AND finished IS NULL",
                (result_json.decode(), time.time(), job_id),
            )
        )

    def fail(self, job_id: str, error: dict[str, Any]) -> None:
        self.db.run(
            lambda c: c.execute(
                "UPDATE jobs SET status = 'failed', error = ?, finished = ?"
                " WHERE id = ? AND finished IS NULL",
                (json.dumps(error), time.time(), job_id),
            )
        )

    def get(self, job_id: str, owner: str) -> JobRecord | None:
        now = time.time()

        def select(conn: sqlite3.Connection) -> Any:
            self._purge(conn, now)
            return conn.execute(
                "SELECT status, result, error, finished, deadline, worker_pid, worker_started FROM jobs"
                " WHERE id = ? AND owner = ?",
                (job_id, owner),
            ).fetchone()

        row = self.db.run(select)
        if row is None:
            return None
        status, result, error, finished, deadline, pid, started = row
        if finished is None:
            lost = None
            if now > deadline:
                lost = JOB_TIMEOUT
            elif pid != NO_WORKER and not process_alive(pid, started):
                lost = WORKER_LOST
            if lost is not None:
                self.fail(job_id, lost)
                return self.get(job_id, owner)
        elif finished < now - self.ttl_s:
            return None
        return JobRecord(
            job_id=job_id,
            status=status,
            result=json.loads(result) if result else None,
            error=json.loads(error) if error else None,
        )
