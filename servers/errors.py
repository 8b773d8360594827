"""Errors as HTTP answers, and the mapping from upstream (anthropic SDK) failures to them.

Every non-422 error body is ``{"detail": "<sentence>", "error": "<code>"}``. Upstream mapping:
Claude rate-limited (429) or overloaded (529) -> 503, upstream timeout -> 504, any other upstream
failure (5xx, connection refused, a mid-stream error event, an answer we cannot parse) -> 502.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2

from servers.jsonio import render


# Not frozen: Python sets __traceback__/__cause__ on exceptions as they propagate.
@dataclass(eq=False, kw_only=True)
class ApiError(Exception):
    status: int
    error: str
    detail: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.detail}"

    def body(self) -> bytes:
        return render({"detail": self.detail, "error": self.error})

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "detail": self.detail}


@dataclass(eq=False, kw_only=True)
class ValidationFailed(Exception):
    """422: ``errors`` is already in FastAPI's ``detail`` list shape."""

    errors: list[dict[str, Any]]

    def body(self) -> bytes:
        return render({"detail": self.errors})


def unauthorized() -> ApiError:
    return ApiError(
        status=401,
        error="unauthorized",
        detail="Missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def rate_limited(retry_after_s: int, limit_text: str) -> ApiError:
    return ApiError(
        status=429,
        error="rate_limited",
        detail=f"Rate limit exceeded ({limit_text}); retry after {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


def websocket_unsupported() -> ApiError:
    """A WebSocket handshake on a server that cannot upgrade the connection (granian's WSGI)."""
    return ApiError(
        status=501,
        error="websocket_unsupported",
        detail="This server cannot upgrade the connection to a WebSocket",
    )


def job_not_found() -> ApiError:
    return ApiError(status=404, error="job_not_found", detail="Job not found")


_HTTP_CODES = {
    400: ("bad_request", "There was an error parsing the body"),
    404: ("not_found", "Not Found"),
    405: ("method_not_allowed", "Method Not Allowed"),
    413: ("payload_too_large", "Request body too large"),
}


def http_error(status: int, detail: str | None = None, headers: Mapping[str, str] | None = None) -> ApiError:
    """A plain HTTP error (unknown route, wrong method, unparseable body) in the common body shape."""
    code, default_detail = _HTTP_CODES.get(status, ("http_error", "HTTP error"))
    return ApiError(status=status, error=code, detail=detail or default_detail, headers=dict(headers or {}))


def _upstream_error_type(exc: anthropic.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("type"), str):
            return str(inner["type"])
    return None


def upstream_retry_after(exc: BaseException) -> float | None:
    """The upstream's ``retry-after-ms`` or ``retry-after`` (seconds), when it sent a number."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name)) * scale
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and value >= 0:
            return value
    return None


def _retry_after(exc: BaseException) -> dict[str, str]:
    wait = upstream_retry_after(exc)
    return {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None else {}


_TIMEOUT = ("upstream_timeout", "The model did not answer in time")
logger = logging.getLogger("servers.upstream")


def answer_broke_off() -> ApiError:
    """A started answer that did not reach its end: dropped, or ended without the protocol's last event."""
    return ApiError(status=502, error="upstream_broke_off", detail="The model's answer broke off")


def _bad_answer() -> ApiError:
    return ApiError(status=502, error="upstream_bad_answer", detail="The model's answer was malformed")


def map_upstream_error(exc: BaseException) -> ApiError:
    """The one place an upstream failure becomes an HTTP status, identical for every variant.

    Anything an upstream call can raise maps: SDK errors, raw transport errors from a stream already
    open (a dropped or stalled connection), the deadline, and an answer that is not what the protocol
    says (a malformed event); only a bug in this code is re-raised.
    """
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException | TimeoutError):
        return ApiError(status=504, error=_TIMEOUT[0], detail=_TIMEOUT[1])
    if isinstance(exc, httpx2.HTTPError):
        return answer_broke_off()
    if isinstance(exc, anthropic.APIConnectionError):
        return ApiError(status=502, error="upstream_unreachable", detail="Could not connect to the model")
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        kind = _upstream_error_type(exc)
        # A mid-stream `event: error` arrives on a 200 response; its body type says what happened.
        if status == 429 or kind == "rate_limit_error":
            return ApiError(
                status=503,
                error="upstream_rate_limited",
                detail="The model is rate limited",
                headers=_retry_after(exc),
            )
        if status == 529 or kind == "overloaded_error":
            return ApiError(
                status=503,
                error="upstream_overloaded",
                detail="The model is overloaded",
                headers=_retry_after(exc),
            )
        if status in (408, 504) or kind == "timeout_error":
            return ApiError(status=504, error="upstream_timeout", detail="The model did not answer in time")
        return ApiError(
            status=502, error="upstream_error", detail=f"The model failed (upstream status {status})"
        )
    if isinstance(exc, anthropic.APIResponseValidationError | ValueError | KeyError | TypeError):
        return _bad_answer()
    if isinstance(exc, anthropic.AnthropicError):
        return ApiError(status=502, error="upstream_error", detail="The model call failed")
    raise exc


def map_midstream_error(exc: Exception) -> ApiError:
    """A failure after a stream started (its 200 is sent): whatever it is, the stream must end with the
    error marker, so nothing is re-raised. A connection error there is a connection that broke off, not
    one that could not be made (anthropic 2.15+ raises APIConnectionError for a drop mid-answer, where
    earlier versions let the transport's error through). Anything the mapping does not know (the SDK's
    RuntimeError for an event out of order, an IndexError for a delta of a block that never started) is
    an answer the SDK could not follow: 502, and logged, in case it is a bug of ours."""
    if isinstance(exc, anthropic.APIConnectionError) and not isinstance(exc, anthropic.APITimeoutError):
        return answer_broke_off()
    try:
        return map_upstream_error(exc)
    except Exception:
        logger.warning("a stream failed mid-answer on an unexpected error", exc_info=exc)
        return _bad_answer()
