"""Calling the model through the official anthropic SDK, with one set of client settings for all variants.

Sync and async flavours of the same three operations (one analysis, a streamed analysis, a streamed chat
answer). Failures become :class:`ApiError` via :func:`map_upstream_error`. A stream is opened (request
sent, response status checked) before the first byte goes to our client, so an upstream 429 still gets a
proper 503; a failure after that ends the stream with :data:`STREAM_ERROR_PREFIX` and a JSON error body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2

from servers.errors import ApiError, map_upstream_error
from servers.jsonio import render
from servers.models import AnalyseRequest, AnalyseResponse
from servers.parsing import build_response
from servers.prompts import analysis_params
from servers.settings import Settings
from servers.tracing import with_request_id

STREAM_ERROR_PREFIX = "\n[error] "
CONNECT_TIMEOUT_S = 5.0


def client_options(settings: Settings) -> dict[str, Any]:
    """Identical for every variant; the SDK's own connection pool (1000 connections) unless
    ``BENCH_UPSTREAM_MAX_CONNECTIONS`` sets another size (a pool is a real concurrency cap)."""
    return {
        "base_url": settings.upstream_url,
        "api_key": settings.upstream_api_key,
        "timeout": httpx2.Timeout(
            settings.upstream_timeout_s, connect=min(CONNECT_TIMEOUT_S, settings.upstream_timeout_s)
        ),
        "max_retries": settings.upstream_max_retries,
    }


def _limits(settings: Settings) -> httpx2.Limits | None:
    size = settings.upstream_max_connections
    if size is None:
        return None
    keepalive = anthropic.DEFAULT_CONNECTION_LIMITS.max_keepalive_connections or size
    return httpx2.Limits(max_connections=size, max_keepalive_connections=min(size, keepalive))


def sync_client(settings: Settings) -> anthropic.Anthropic:
    limits = _limits(settings)
    pool = {} if limits is None else {"http_client": anthropic.DefaultHttpxClient(limits=limits)}
    return anthropic.Anthropic(**client_options(settings), **pool)


def async_client(settings: Settings) -> anthropic.AsyncAnthropic:
    limits = _limits(settings)
    pool = {} if limits is None else {"http_client": anthropic.DefaultAsyncHttpxClient(limits=limits)}
    return anthropic.AsyncAnthropic(**client_options(settings), **pool)


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
    try:
        message = client.messages.create(**with_request_id(analysis_params(req, settings)))
    except anthropic.AnthropicError as exc:
        raise map_upstream_error(exc) from None
    return _response(req, message)


async def analyse_async(
    client: anthropic.AsyncAnthropic, req: AnalyseRequest, settings: Settings
) -> AnalyseResponse:
    try:
        message = await client.messages.create(**with_request_id(analysis_params(req, settings)))
    except anthropic.AnthropicError as exc:
        raise map_upstream_error(exc) from None
    return _response(req, message)


def stream_sync(client: anthropic.Anthropic, params: dict[str, Any]) -> Iterator[str]:
    """Open the stream now (raising ApiError on failure); the returned iterator yields text chunks."""
    manager = client.messages.stream(**with_request_id(params))
    try:
        stream = manager.__enter__()
    except anthropic.AnthropicError as exc:
        raise map_upstream_error(exc) from None

    def chunks() -> Iterator[str]:
        try:
            yield from stream.text_stream
        except anthropic.AnthropicError as exc:
            yield StreamFailure(map_upstream_error(exc))
        finally:
            manager.__exit__(None, None, None)

    return chunks()


async def stream_async(client: anthropic.AsyncAnthropic, params: dict[str, Any]) -> AsyncIterator[str]:
    manager = client.messages.stream(**with_request_id(params))
    try:
        stream = await manager.__aenter__()
    except anthropic.AnthropicError as exc:
        raise map_upstream_error(exc) from None

    async def chunks() -> AsyncIterator[str]:
        try:
            async for text in stream.text_stream:
                yield text
        except anthropic.AnthropicError as exc:
            yield StreamFailure(map_upstream_error(exc))
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
