"""The request id that ties a client's request to the upstream call it caused (``x-request-id``).

The load generator sends ``x-request-id``; a middleware (WSGI or ASGI, so both adapters share it) puts it in
a context variable for the length of the request, and :func:`with_request_id` adds it to the SDK's extra
headers, so the mock can record each upstream call under the id of the request that made it. A context
variable follows the request into worker threads (anyio copies the context), greenlets and asgiref's loops.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any

HEADER = "x-request-id"
# Printable, header-safe and short: anything else is ignored (a request id is a label, never an error).
_VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")  # fullmatch: `$` would let a final newline through
_current: ContextVar[str | None] = ContextVar("bench_request_id", default=None)


def valid_request_id(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return text if _VALID.fullmatch(text) else None


def current_request_id() -> str | None:
    return _current.get()


def with_request_id(params: dict[str, Any]) -> dict[str, Any]:
    """SDK call parameters plus ``extra_headers`` carrying this request's id, when it has one."""
    rid = _current.get()
    if rid is None:
        return params
    return {**params, "extra_headers": {**params.get("extra_headers", {}), HEADER: rid}}


class TracingWSGI:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        token = _current.set(valid_request_id(environ.get("HTTP_X_REQUEST_ID")))
        try:
            return self.app(environ, start_response)
        finally:
            _current.reset(token)  # a worker thread serves many requests: never leak an id to the next


class TracingASGI:
    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        token = _current.set(valid_request_id(rid))
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
