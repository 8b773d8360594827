"""The job store behind POST /analyse/async and GET /jobs/{id}, shared by all worker processes.

Ids are 128-bit ``secrets.token_urlsafe`` strings; each job records a hash of the token that made it
and is only returned for that token (anyone else gets the same 404 as for an unknown id). Finished
jobs expire ``ttl_s`` seconds after they finish; expired rows are deleted when new jobs are created.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from servers.sqlite_db import SharedDb


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
    def __init__(self, db: SharedDb, *, ttl_s: float) -> None:
        self.db = db
        self.ttl_s = ttl_s

    def create(self, owner: str) -> str:
        job_id = secrets.token_urlsafe(16)
        now = time.time()

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM jobs WHERE finished IS NOT NULL AND finished < ?", (now - self.ttl_s,))
            conn.execute(
                "INSERT INTO jobs (id, owner, status, created) VALUES (?, ?, 'queued', ?)",
                (job_id, owner, now),
            )

        self.db.run(insert)
        return job_id

    def mark_running(self, job_id: str) -> None:
        self.db.run(lambda c: c.execute("UPDATE jobs SET status = 'running' WHERE id = ?", (job_id,)))

    def finish(self, job_id: str, result_json: bytes) -> None:
        self.db.run(
            lambda c: c.execute(
                "UPDATE jobs SET status = 'done', result = ?, finished = ? WHERE id = ?",
                (result_json.decode(), time.time(), job_id),
            )
        )

    def fail(self, job_id: str, error: dict[str, Any]) -> None:
        self.db.run(
            lambda c: c.execute(
                "UPDATE jobs SET status = 'failed', error = ?, finished = ? WHERE id = ?",
                (json.dumps(error), time.time(), job_id),
            )
        )

    def get(self, job_id: str, owner: str) -> JobRecord | None:
        row = self.db.run(
            lambda c: c.execute(
                "SELECT status, result, error, finished FROM jobs WHERE id = ? AND owner = ?", (job_id, owner)
            ).fetchone()
        )
        if row is None:
            return None
        status, result, error, finished = row
        if finished is not None and finished < time.time() - self.ttl_s:
            return None
        return JobRecord(
            job_id=job_id,
            status=status,
            result=json.loads(result) if result else None,
            error=json.loads(error) if error else None,
        )
