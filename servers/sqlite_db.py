"""One SQLite connection per process to the file every worker process of a run shares.

WAL mode with synchronous=NORMAL: readers never block the writer and a commit does not fsync, so the
rate-limit check and the job writes cost tens of microseconds. The connection is opened lazily and
re-opened after a fork (gunicorn and uvicorn start workers by forking or spawning). One lock per
process serialises its threads (gthread threads, the anyio pool, job threads, gevent greenlets; a
greenlet never yields inside a SQLite call, so the lock is held only for the call itself).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rate (key TEXT PRIMARY KEY, tat REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    created REAL NOT NULL,
    finished REAL,
    deadline REAL NOT NULL,
    worker_pid INTEGER NOT NULL,
    worker_started REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished);
CREATE INDEX IF NOT EXISTS jobs_deadline ON jobs (deadline) WHERE finished IS NULL;
"""


class SharedDb:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, so each statement is its own short transaction.
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(_SCHEMA)
        return conn

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._conn is None or self._pid != os.getpid():
                self._conn = self._connect()
                self._pid = os.getpid()
            return fn(self._conn)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
