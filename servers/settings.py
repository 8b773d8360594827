"""Every server setting, read from the environment into one typed, frozen object.

A bad value is reported with the name of the environment variable it came from, so a misconfigured
benchmark fails at start-up with one clear line instead of at the first request.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TOKEN = "bench-local-token"  # documented local default so `make bench` works out of the box
DEFAULT_UPSTREAM_URL = "http://127.0.0.1:8100"
DEFAULT_UPSTREAM_API_KEY = "sk-bench-local-placeholder"
DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_RATE_LIMIT = "600/minute"
DEFAULT_UPSTREAM_TIMEOUT_S = 30.0
DEFAULT_UPSTREAM_MAX_RETRIES = 2
DEFAULT_UPSTREAM_DEADLINE_S = 60.0  # the whole call, retries and a streamed answer included
DEFAULT_WS_IDLE_TIMEOUT_S = 300.0  # a chat WebSocket with no message for this long is closed
DEFAULT_MAX_BACKGROUND_JOBS = 1000  # per process: as many as the SDK pool has connections
DEFAULT_JOB_TTL_S = 3600.0
DEFAULT_MAX_TOKENS = 1024
DEFAULT_WORK_MS = 0.0  # CPU per request in the core (servers.work); 0: none
MAX_WORK_MS = 10_000.0  # a per-request busy loop longer than 10 s is a typo, not a benchmark

_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")


class SettingsError(ValueError):
    """A setting has a bad value; the message names the environment variable."""


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """``limit`` requests per ``period_s`` seconds per token (a burst of ``limit`` is allowed)."""

    limit: int
    period_s: float
    text: str

    @property
    def interval_s(self) -> float:
        return self.period_s / self.limit


@dataclass(frozen=True, kw_only=True)
class Settings:
    # Secrets never show in a repr (a log line, a traceback, a test failure).
    api_tokens: tuple[str, ...] = field(repr=False)
    rate_limit: RateLimit | None  # None: rate limiting off
    upstream_url: str
    upstream_api_key: str = field(repr=False)
    upstream_timeout_s: float
    upstream_max_retries: int
    upstream_max_connections: int | None  # the SDK's connection pool size; None: the SDK's own (1000)
    upstream_pools: int = 1  # BENCH_UPSTREAM_POOLS: the client's connections split over this many pools
    upstream_deadline_s: float
    model: str
    max_tokens: int
    work_ms: float = DEFAULT_WORK_MS  # BENCH_WORK_MS: CPU milliseconds per request (servers.work)
    job_db: Path
    job_ttl_s: float
    variant: str
    ws_idle_timeout_s: float = DEFAULT_WS_IDLE_TIMEOUT_S
    max_background_jobs: int = DEFAULT_MAX_BACKGROUND_JOBS

    @property
    def worst_case_upstream_s(self) -> float:
        """Longest one request can wait on the upstream: the deadline bounds every attempt and backoff."""
        return self.upstream_deadline_s


def parse_rate_limit(value: str, *, key: str = "BENCH_RATE_LIMIT") -> RateLimit | None:
    if value.strip().lower() in {"off", "none", "0", ""}:
        return None
    match = _RATE_RE.match(value.lower())
    if match is None or int(match.group(1)) < 1:
        raise SettingsError(f"{key}={value!r}: expected N/second|minute|hour|day (N >= 1) or 'off'")
    return RateLimit(limit=int(match.group(1)), period_s=_PERIODS[match.group(2)], text=value.strip())


def _float(env: Mapping[str, str], key: str, default: float, *, minimum: float) -> float:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{key}={raw!r}: expected a number") from None
    if not math.isfinite(value):
        raise SettingsError(f"{key}={raw!r}: expected a finite number")
    if not value >= minimum:
        raise SettingsError(f"{key}={raw!r}: must be >= {minimum}")
    return value


def _int(env: Mapping[str, str], key: str, default: int, *, minimum: int) -> int:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{key}={raw!r}: expected an integer") from None
    if value < minimum:
        raise SettingsError(f"{key}={raw!r}: must be >= {minimum}")
    return value


def _optional_int(env: Mapping[str, str], key: str, *, minimum: int) -> int | None:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return None
    return _int(env, key, 0, minimum=minimum)


def default_job_db() -> Path:
    """A fresh path per server run: parallel runs never share jobs, all workers of one run do.

    The CLI calls this once in the parent and passes the result to every worker via BENCH_JOB_DB.
    """
    return Path(tempfile.mkdtemp(prefix="bench-jobs-")) / "jobs.sqlite3"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    tokens = tuple(t.strip() for t in env.get("BENCH_API_TOKENS", DEFAULT_TOKEN).split(",") if t.strip())
    if not tokens:
        raise SettingsError("BENCH_API_TOKENS: at least one non-empty token is required")
    url = env.get("BENCH_UPSTREAM_URL", DEFAULT_UPSTREAM_URL).strip()
    if not url.startswith(("http://", "https://")):
        raise SettingsError(f"BENCH_UPSTREAM_URL={url!r}: expected an http:// or https:// URL")
    model = env.get("BENCH_MODEL", DEFAULT_MODEL).strip()
    if not model:
        raise SettingsError("BENCH_MODEL: must not be empty")
    job_db_raw = env.get("BENCH_JOB_DB", "").strip()
    return Settings(
        api_tokens=tokens,
        rate_limit=parse_rate_limit(env.get("BENCH_RATE_LIMIT", DEFAULT_RATE_LIMIT)),
        upstream_url=url.rstrip("/"),
        upstream_api_key=env.get("BENCH_UPSTREAM_API_KEY", DEFAULT_UPSTREAM_API_KEY),
        upstream_timeout_s=_float(env, "BENCH_UPSTREAM_TIMEOUT_S", DEFAULT_UPSTREAM_TIMEOUT_S, minimum=0.01),
        upstream_max_retries=_int(env, "BENCH_UPSTREAM_MAX_RETRIES", DEFAULT_UPSTREAM_MAX_RETRIES, minimum=0),
        upstream_max_connections=_optional_int(env, "BENCH_UPSTREAM_MAX_CONNECTIONS", minimum=1),
        upstream_pools=_pools(env),
        upstream_deadline_s=_float(
            env, "BENCH_UPSTREAM_DEADLINE_S", DEFAULT_UPSTREAM_DEADLINE_S, minimum=0.01
        ),
        model=model,
        max_tokens=_int(env, "BENCH_MAX_TOKENS", DEFAULT_MAX_TOKENS, minimum=1),
        work_ms=_work_ms(env),
        job_db=Path(job_db_raw) if job_db_raw else default_job_db(),
        job_ttl_s=_float(env, "BENCH_JOB_TTL_S", DEFAULT_JOB_TTL_S, minimum=0.0),
        variant=env.get("BENCH_VARIANT", "dev").strip() or "dev",
        ws_idle_timeout_s=_float(env, "BENCH_WS_IDLE_TIMEOUT_S", DEFAULT_WS_IDLE_TIMEOUT_S, minimum=0.1),
        max_background_jobs=_int(env, "BENCH_MAX_BACKGROUND_JOBS", DEFAULT_MAX_BACKGROUND_JOBS, minimum=1),
    )


def _pools(env: Mapping[str, str]) -> int:
    pools = _int(env, "BENCH_UPSTREAM_POOLS", 1, minimum=1)
    if pools > 1 and _optional_int(env, "BENCH_UPSTREAM_MAX_CONNECTIONS", minimum=1) is not None:
        # Each pool would get the whole cap: the cap would silently become pools x size.
        raise SettingsError(
            f"BENCH_UPSTREAM_POOLS={pools} with BENCH_UPSTREAM_MAX_CONNECTIONS: a capped pool is not split; "
            "set one of them"
        )
    return pools


def _work_ms(env: Mapping[str, str]) -> float:
    value = _float(env, "BENCH_WORK_MS", DEFAULT_WORK_MS, minimum=0.0)
    if not value <= MAX_WORK_MS:  # also refuses inf and nan
        raise SettingsError(f"BENCH_WORK_MS={env.get('BENCH_WORK_MS')!r}: must be at most {MAX_WORK_MS:g}")
    return value
