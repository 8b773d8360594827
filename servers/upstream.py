"""Calling the model through the official anthropic SDK, with one set of client settings for all variants.

Sync and async flavours of the same three operations (one analysis, a streamed analysis, a streamed chat
answer). Failures become :class:`ApiError` via :func:`map_upstream_error`. A stream is opened (request
sent, response status checked) before the first byte goes to our client, so an upstream 429 still gets a
proper 503; any failure after that (an error event, a dropped or stalled connection, a malformed event, a
body that ends before ``message_stop``, the deadline, any exception at all: :func:`map_midstream_error`)
ends the stream with :data:`STREAM_ERROR_PREFIX` and a JSON error body. Each call has one overall
deadline (``BENCH_UPSTREAM_DEADLINE_S``, see :mod:`servers.deadline`) that its retries
(:mod:`servers.retry`) must fit in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import anthropic
import httpx2

from servers.deadline import Deadline, async_http_client, sync_http_client, within
from servers.errors import ApiError, answer_broke_off, map_midstream_error
from servers.jsonio import render
from servers.models import AnalyseRequest, AnalyseResponse
from servers.parsing import build_response
from servers.pools import split_async, split_sync
from servers.prompts import analysis_params
from servers.retry import attempt_headers, wait_before_retry
from servers.settings import Settings
from servers.tracing import with_request_id

T = TypeVar("T")

STREAM_ERROR_PREFIX = "\n[error] "
CONNECT_TIMEOUT_S = 5.0


def client_options(settings: Settings) -> dict[str, Any]:
    """Identical for every variant; the SDK's own connection pool (1000 connections) unless
    ``BENCH_UPSTREAM_MAX_CONNECTIONS`` sets another size (a pool is a real concurrency cap). The SDK does
    not retry: :func:`_retrying` does, within the call's deadline."""
    return {
        "base_url": settings.upstream_url,
        "api_key": settings.upstream_api_key,
        "timeout": httpx2.Timeout(
            settings.upstream_timeout_s, connect=min(CONNECT_TIMEOUT_S, settings.upstream_timeout_s)
        ),
        "max_retries": 0,
    }


def _limits(settings: Settings) -> httpx2.Limits | None:
    size = settings.upstream_max_connections
    if size is None:
        return None
    keepalive = anthropic.DEFAULT_CONNECTION_LIMITS.max_keepalive_connections or size
    return httpx2.Limits(max_connections=size, max_keepalive_connections=min(size, keepalive))


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _trust_env(settings: Settings) -> bool:
    """Calls to a loopback upstream (the mock) never go through a proxy from the environment (an
    ``http_proxy`` set for a job's downloads would carry, or break, every measured call)."""
    return not is_loopback(settings.upstream_url)


def sync_client(settings: Settings) -> anthropic.Anthropic:
    """One client; its connections in ``BENCH_UPSTREAM_POOLS`` pools (1: the SDK's single pool)."""
    limits, trust_env = _limits(settings), _trust_env(settings)
    clients = [sync_http_client(limits, trust_env=trust_env) for _ in range(settings.upstream_pools)]
    http_client = split_sync(clients[0], clients[1:])
    return anthropic.Anthropic(**client_options(settings), http_client=http_client)


def async_client(settings: Settings) -> anthropic.AsyncAnthropic:
    limits, trust_env = _limits(settings), _trust_env(settings)
    clients = [async_http_client(limits, trust_env=trust_env) for _ in range(settings.upstream_pools)]
    http_client = split_async(clients[0], clients[1:])
    return anthropic.AsyncAnthropic(**client_options(settings), http_client=http_client)


def _attempt_options(deadline: Deadline, attempt: int, settings: Settings) -> dict[str, Any]:
    """Per-attempt SDK options: no wait (pool, connect, read) is allowed past the deadline."""
    left = max(deadline.remaining(), 0.001)
    timeout = httpx2.Timeout(min(settings.upstream_timeout_s, left), connect=min(CONNECT_TIMEOUT_S, left))
    return with_request_id({"timeout": timeout, "extra_headers": attempt_headers(attempt)})


def _retrying(settings: Settings, deadline: Deadline, call: Callable[[dict[str, Any]], T]) -> T:
    attempt = 0
    while True:
        try:
            with within(deadline):
                return call(_attempt_options(deadline, attempt, settings))
        except Exception as exc:
            wait = wait_before_retry(
                exc, attempt, max_retries=settings.upstream_max_retries, deadline=deadline
            )
        time.sleep(wait)
        attempt += 1


async def _retrying_async(
    settings: Settings, deadline: Deadline, call: Callable[[dict[str, Any]], Any]
) -> Any:
    attempt = 0
    while True:
        try:
            with within(deadline):
                return await call(_attempt_options(deadline, attempt, settings))
        except Exception as exc:
            wait = wait_before_retry(
                exc, attempt, max_retries=settings.upstream_max_retries, deadline=deadline
            )
        await asyncio.sleep(wait)
        attempt += 1


def _text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if getattr(block, "type", None) == "text")


def _response(req: AnalyseRequest, message: Any) -> AnalyseResponse:
    return build_response(
        req,
        text=_text_of(message),
        model=message.model,
        input_tokens=message.usage.input_tokens,
        output_tokens=message.usage.output_tokens,
    )


def stream_error_text(error: ApiError) -> str:
    return (
        STREAM_ERROR_PREFIX
        + render({"detail": error.detail, "error": error.error, "status": error.status}).decode()
    )


def analyse_sync(client: anthropic.Anthropic, req: AnalyseRequest, settings: Settings) -> AnalyseResponse:
    deadline = Deadline.after(settings.upstream_deadline_s)
    params = analysis_params(req, settings)
    message = _retrying(settings, deadline, lambda opts: client.messages.create(**params, **opts))
    return _response(req, message)


async def analyse_async(
    client: anthropic.AsyncAnthropic, req: AnalyseRequest, settings: Settings
) -> AnalyseResponse:
    deadline = Deadline.after(settings.upstream_deadline_s)
    params = analysis_params(req, settings)
    message = await _retrying_async(settings, deadline, lambda opts: client.messages.create(**params, **opts))
    return _response(req, message)


_END = object()


def _is_text_delta(event: Any) -> bool:
    return bool(event.type == "content_block_delta" and event.delta.type == "text_delta")


def _texts(stream: Any) -> Iterator[str]:
    """The stream's text, as ``text_stream`` gives it, then ApiError when the body ended before
    ``message_stop``: a clean end of the body is no sign the answer is whole. Read to the body's end
    either way, so the connection goes back to the pool."""
    stopped = False
    for event in stream:
        if _is_text_delta(event):
            yield event.delta.text
        stopped = stopped or event.type == "message_stop"
    if not stopped:
        raise answer_broke_off()


async def _texts_async(stream: Any) -> AsyncIterator[str]:
    stopped = False
    async for event in stream:
        if _is_text_delta(event):
            yield event.delta.text
        stopped = stopped or event.type == "message_stop"
    if not stopped:
        raise answer_broke_off()


def stream_sync(client: anthropic.Anthropic, params: dict[str, Any], settings: Settings) -> Iterator[str]:
    """Open the stream now (raising ApiError on failure); the returned iterator yields text chunks."""
    deadline = Deadline.after(settings.upstream_deadline_s)

    def open_stream(opts: dict[str, Any]) -> tuple[Any, Any]:
        manager = client.messages.stream(**params, **opts)
        return manager, manager.__enter__()

    manager, stream = _retrying(settings, deadline, open_stream)

    def chunks() -> Iterator[str]:
        texts = _texts(stream)
        try:
            while True:
                try:
                    with within(deadline):  # set and reset within one step: see servers.deadline
                        deadline.check()
                        text = next(texts, _END)
                except Exception as exc:
                    yield StreamFailure(map_midstream_error(exc))
                    return
                if text is _END:
                    return
                yield text
        finally:
            manager.__exit__(None, None, None)

    return chunks()


async def stream_async(
    client: anthropic.AsyncAnthropic, params: dict[str, Any], settings: Settings
) -> AsyncIterator[str]:
    deadline = Deadline.after(settings.upstream_deadline_s)

    async def open_stream(opts: dict[str, Any]) -> tuple[Any, Any]:
        manager = client.messages.stream(**params, **opts)
        return manager, await manager.__aenter__()

    manager, stream = await _retrying_async(settings, deadline, open_stream)

    async def chunks() -> AsyncIterator[str]:
        texts = _texts_async(stream)
        try:
            while True:
                try:
                    with within(deadline):
                        deadline.check()
                        text = await anext(texts, _END)
                except Exception as exc:
                    yield StreamFailure(map_midstream_error(exc))
                    return
                if text is _END:
                    return
                yield text
        finally:
            await manager.__aexit__(None, None, None)

    return chunks()


class StreamFailure(str):
    """The last chunk of a stream that failed after it started: its text is the error line for HTTP
    clients; WebSocket adapters send ``error`` as the final JSON frame instead."""

    error: ApiError

    def __new__(cls, error: ApiError) -> StreamFailure:
        obj = super().__new__(cls, stream_error_text(error))
        obj.error = error
        return obj
