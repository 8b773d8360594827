"""Retrying upstream calls within their deadline: the SDK's retry rules, but never a sleep that cannot fit.

The SDK itself runs with ``max_retries=0``: its own loop honours a ``retry-after`` of hours and restarts
each attempt's timeouts, so a call could wait far past any deadline. This loop keeps the SDK's rules
(which failures to retry, ``retry-after-ms``/``retry-after`` first, else exponential backoff with
jitter), counts attempts against ``BENCH_UPSTREAM_MAX_RETRIES`` and gives up with the mapped error (a 503
with the upstream's ``Retry-After`` for a rate limit or overload) when the wait would pass the deadline.
"""

from __future__ import annotations

import random

import anthropic

from servers.deadline import Deadline
from servers.errors import ApiError, map_upstream_error, upstream_retry_after

INITIAL_BACKOFF_S = 0.5  # the SDK's INITIAL_RETRY_DELAY and MAX_RETRY_DELAY
MAX_BACKOFF_S = 8.0


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, anthropic.APIStatusError):
        should = exc.response.headers.get("x-should-retry")
        if should in ("true", "false"):
            return should == "true"
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, anthropic.APIConnectionError)  # timeouts included, as in the SDK


def backoff_s(attempt: int) -> float:
    return min(INITIAL_BACKOFF_S * 2.0**attempt, MAX_BACKOFF_S) * (1 - 0.25 * random.random())


def wait_before_retry(exc: BaseException, attempt: int, *, max_retries: int, deadline: Deadline) -> float:
    """Seconds to sleep before attempt ``attempt + 1``; raises the ApiError to answer instead."""
    error: ApiError = map_upstream_error(exc)
    if attempt >= max_retries or not retryable(exc):
        raise error
    wait = upstream_retry_after(exc)
    if wait is None or wait <= 0:
        wait = backoff_s(attempt)
    if wait >= deadline.remaining():
        raise error
    return wait


def attempt_headers(attempt: int) -> dict[str, str]:
    """The SDK marks its own retries so; the mock counts them (``retries_seen``)."""
    return {"x-stainless-retry-count": str(attempt)}
