"""A per-token rate limit that holds across every worker process of a variant.

GCRA (the generic cell rate algorithm) on the shared SQLite file: one row per token holding its
"theoretical arrival time". A request is admitted when pushing that time one interval forward keeps it
within one period of now, which allows a burst of ``limit`` and then one request per interval. The
check is one atomic UPSERT ... RETURNING statement, so four workers can never grant four times the
limit, and it costs one short write transaction (tens of microseconds; measured in the unit tests).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from servers.settings import RateLimit
from servers.sqlite_db import SharedDb

_ADMIT = """
INSERT INTO rate (key, tat) VALUES (:key, :now + :interval)
ON CONFLICT (key) DO UPDATE SET tat = max(tat, :now) + :interval
    WHERE max(tat, :now) + :interval - :now <= :period
RETURNING tat
"""


@dataclass(frozen=True, kw_only=True)
class Decision:
    allowed: bool
    retry_after_s: int  # 0 when allowed


class RateLimiter:
    def __init__(self, db: SharedDb, limit: RateLimit) -> None:
        self.db = db
        self.limit = limit

    def check(self, key: str, *, now: float | None = None) -> Decision:
        at = time.time() if now is None else now  # wall clock: the same in every process
        params = {"key": key, "now": at, "interval": self.limit.interval_s, "period": self.limit.period_s}

        def admit(conn):  # type: ignore[no-untyped-def]
            row = conn.execute(_ADMIT, params).fetchone()
            if row is not None:
                return None
            return conn.execute("SELECT tat FROM rate WHERE key = ?", (key,)).fetchone()[0]

        tat = self.db.run(admit)
        if tat is None:
            return Decision(allowed=True, retry_after_s=0)
        wait = max(tat, at) + self.limit.interval_s - at - self.limit.period_s
        return Decision(allowed=False, retry_after_s=max(1, math.ceil(wait)))
