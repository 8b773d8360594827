"""Unit tests of the upstream calls and error mapping, with respx in place of the network."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import respx
from serverkit import running_mock

from servers import upstream
from servers.errors import ApiError
from servers.models import AnalyseRequest
from servers.prompts import analysis_params
from servers.settings import Settings, load_settings

# tests/conftest.py aliases httpx to httpx2 before anything imports httpx; respx needs that to see the SDK.
assert sys.modules["httpx"] is sys.modules["httpx2"], "httpx was imported before httpx2.alias_httpx()"

BASE = "http://upstream.test"
ANSWER = (
    '{"summary": "A summary.", "findings": ['
    + ", ".join(f'{{"title": "t{i}", "detail": "d{i}", "severity": "low"}}' for i in range(6))
    + "]}"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "BENCH_UPSTREAM_URL": BASE,
            "BENCH_UPSTREAM_MAX_RETRIES": "0",
            "BENCH_UPSTREAM_TIMEOUT_S": "2",
            "BENCH_JOB_DB": str(tmp_path / "j.db"),
        }
    )


def _message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 22},
    }


def _error(status: int, kind: str) -> httpx.Response:
    body = {"type": "error", "error": {"type": kind, "message": "nope"}, "request_id": "req_1"}
    return httpx.Response(status, json=body)


REQ = AnalyseRequest(text="some text to analyse", analysis_type="summary", max_findings=3)


def test_analyse_sync_builds_request_and_truncates(settings: Settings) -> None:
    with respx.mock(base_url=BASE) as router:
        route = router.post("/v1/messages").mock(return_value=httpx.Response(200, json=_message(ANSWER)))
        result = upstream.analyse_sync(upstream.sync_client(settings), REQ, settings)
    sent = route.calls.last.request
    payload = __import__("json").loads(sent.content)
    assert "JSON" in payload["system"] and payload["model"] == settings.model
    assert "temperature" not in payload
    assert [f.title for f in result.findings] == ["t0", "t1", "t2"]
    assert result.usage.input_tokens == 11 and result.model == "claude-test"


async def _analyse_async(settings: Settings, req: AnalyseRequest) -> Any:
    async with upstream.async_client(settings) as client:
        return await upstream.analyse_async(client, req, settings)


def test_analyse_async_markdown(settings: Settings) -> None:
    import asyncio

    req = REQ.model_copy(update={"output_format": "markdown"})
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(return_value=httpx.Response(200, json=_message(ANSWER)))
        result = asyncio.run(_analyse_async(settings, req))
    assert result.markdown is not None and result.markdown.startswith("## Summary")
    assert len(result.findings) == 3


@pytest.mark.parametrize(
    ("response", "status", "code"),
    [
        (_error(429, "rate_limit_error"), 503, "upstream_rate_limited"),
        (_error(529, "overloaded_error"), 503, "upstream_overloaded"),
        (_error(500, "api_error"), 502, "upstream_error"),
        (_error(400, "invalid_request_error"), 502, "upstream_error"),
        (httpx.Response(200, json=_message("not json")), 502, "upstream_bad_answer"),
    ],
    ids=["429", "529", "500", "400", "bad-answer"],
)
def test_upstream_errors_map(settings: Settings, response: httpx.Response, status: int, code: str) -> None:
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(return_value=response)
        with pytest.raises(ApiError) as info:
            upstream.analyse_sync(upstream.sync_client(settings), REQ, settings)
    assert (info.value.status, info.value.error) == (status, code)


def test_timeout_maps_to_504(settings: Settings) -> None:
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(ApiError) as info:
            upstream.analyse_sync(upstream.sync_client(settings), REQ, settings)
    assert info.value.status == 504


def test_connection_refused_maps_to_502(settings: Settings) -> None:
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(ApiError) as info:
            upstream.analyse_sync(upstream.sync_client(settings), REQ, settings)
    assert (info.value.status, info.value.error) == (502, "upstream_unreachable")


def _sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    import json

    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def _stream_events(pieces: list[str], *, fail: bool = False) -> bytes:
    msg = _message("")
    msg["content"] = []
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": msg}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ("ping", {"type": "ping"}),
    ]
    for piece in pieces:
        events.append(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
        )
    if fail:
        events.append(
            ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        )
        return _sse(events)
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 3}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return _sse(events)


def test_stream_sync_yields_text_and_marks_midstream_errors(settings: Settings) -> None:
    client = upstream.sync_client(settings)
    params = analysis_params(REQ, settings)
    ok = httpx.Response(
        200, content=_stream_events(["Hel", "lo"]), headers={"content-type": "text/event-stream"}
    )
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(return_value=ok)
        assert "".join(upstream.stream_sync(client, params, settings)) == "Hello"
    broken = httpx.Response(
        200, content=_stream_events(["Hel"], fail=True), headers={"content-type": "text/event-stream"}
    )
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(return_value=broken)
        chunks = list(upstream.stream_sync(client, params, settings))
    assert chunks[0] == "Hel"
    assert isinstance(chunks[-1], upstream.StreamFailure)
    assert chunks[-1].error.status == 503 and chunks[-1].startswith(upstream.STREAM_ERROR_PREFIX)


def test_stream_open_failure_raises_before_any_byte(settings: Settings) -> None:
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(return_value=_error(429, "rate_limit_error"))
        with pytest.raises(ApiError) as info:
            upstream.stream_sync(upstream.sync_client(settings), analysis_params(REQ, settings), settings)
    assert info.value.status == 503


def test_client_settings_are_shared(settings: Settings) -> None:
    sync, asyn = upstream.sync_client(settings), upstream.async_client(settings)
    assert isinstance(sync, anthropic.Anthropic) and isinstance(asyn, anthropic.AsyncAnthropic)
    assert sync.max_retries == asyn.max_retries == 0
    assert sync.timeout == asyn.timeout


def _retry_settings(tmp_path: Path, *, retries: int, deadline_s: float) -> Settings:
    return load_settings(
        {
            "BENCH_UPSTREAM_URL": BASE,
            "BENCH_UPSTREAM_MAX_RETRIES": str(retries),
            "BENCH_UPSTREAM_DEADLINE_S": str(deadline_s),
            "BENCH_JOB_DB": str(tmp_path / "j.db"),
        }
    )


def _limited(retry_after: str, ms: str | None = None) -> httpx.Response:
    response = _error(429, "rate_limit_error")
    response.headers["retry-after"] = retry_after
    if ms is not None:
        response.headers["retry-after-ms"] = ms
    return response


def test_a_retry_that_fits_the_deadline_is_made_and_counted(tmp_path: Path) -> None:
    settings = _retry_settings(tmp_path, retries=2, deadline_s=5)
    with respx.mock(base_url=BASE) as router:
        route = router.post("/v1/messages").mock(
            side_effect=[_limited("1", ms="50"), httpx.Response(200, json=_message(ANSWER))]
        )
        result = upstream.analyse_sync(upstream.sync_client(settings), REQ, settings)
    assert result.summary == "A summary."
    assert [c.request.headers["x-stainless-retry-count"] for c in route.calls] == ["0", "1"]


def test_a_retry_after_past_the_deadline_is_a_503_carrying_it(tmp_path: Path) -> None:
    """The SDK would sleep the hour; the server answers at once and passes the wait on."""
    import time

    settings = _retry_settings(tmp_path, retries=5, deadline_s=3)
    with respx.mock(base_url=BASE) as router:
        route = router.post("/v1/messages").mock(return_value=_limited("3600"))
        started = time.monotonic()
        with pytest.raises(ApiError) as info:
            upstream.analyse_sync(upstream.sync_client(settings), REQ, settings)
    assert time.monotonic() - started < 1.0 and route.call_count == 1
    assert (info.value.status, info.value.error) == (503, "upstream_rate_limited")
    assert info.value.headers["Retry-After"] == "3600"


def test_async_retries_follow_the_same_rule(tmp_path: Path) -> None:
    import asyncio

    settings = _retry_settings(tmp_path, retries=1, deadline_s=3)
    with respx.mock(base_url=BASE) as router:
        route = router.post("/v1/messages").mock(return_value=_error(529, "overloaded_error"))
        with pytest.raises(ApiError) as info:
            asyncio.run(_analyse_async(settings, REQ))
    assert route.call_count == 2 and info.value.status == 503  # one backoff (~0.5 s) fits in 3 s


def test_an_upstream_answer_that_is_not_json_is_a_502(settings: Settings) -> None:
    garbage = httpx.Response(
        200, content=b"<html>gateway</html>", headers={"content-type": "application/json"}
    )
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(return_value=garbage)
        with pytest.raises(ApiError) as info:
            upstream.analyse_sync(upstream.sync_client(settings), REQ, settings)
    assert info.value.status == 502


def test_a_malformed_event_mid_stream_ends_with_the_marker(settings: Settings) -> None:
    content = _stream_events(["Hel"])[:-40] + b"event: content_block_delta\ndata: {not json\n\n"
    broken = httpx.Response(200, content=content, headers={"content-type": "text/event-stream"})
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(return_value=broken)
        chunks = list(
            upstream.stream_sync(upstream.sync_client(settings), analysis_params(REQ, settings), settings)
        )
    assert isinstance(chunks[-1], upstream.StreamFailure) and chunks[-1].error.status == 502


class _BreaksOff(httpx.SyncByteStream):
    """A stream's body that sends ``head`` and then fails with ``error`` (what the transport or the SDK
    raises mid-answer)."""

    def __init__(self, head: bytes, error: Exception) -> None:
        self.head, self.error = head, error

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        raise self.error


class _AsyncBreaksOff(httpx.AsyncByteStream):
    def __init__(self, head: bytes, error: Exception) -> None:
        self.head, self.error = head, error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        raise self.error


_REQUEST = httpx.Request("POST", f"{BASE}/v1/messages")
_NO_BLOCK = {"type": "content_block_delta", "index": 5, "delta": {"type": "text_delta", "text": "lo"}}
SDK_RUNTIME_ERROR = b"the SDK raises RuntimeError at the second delta"
# What can end a stream after it started, and the one answer each must end it with: a connection dropped
# or stalled mid-answer (anthropic 2.15+ raises APIConnectionError / APITimeoutError for these, earlier
# versions the transport's own errors), and events the SDK cannot follow (an IndexError for a delta of a
# block that never started; a RuntimeError, as 2.14 raised for an event out of order).
MIDSTREAM_FAILURES: dict[str, tuple[Exception | bytes, int, str]] = {
    "transport-dropped": (httpx.RemoteProtocolError("peer closed connection"), 502, "upstream_broke_off"),
    "transport-stalled": (httpx.ReadTimeout("timed out"), 504, "upstream_timeout"),
    "sdk-dropped": (anthropic.APIConnectionError(request=_REQUEST), 502, "upstream_broke_off"),
    "sdk-stalled": (anthropic.APITimeoutError(request=_REQUEST), 504, "upstream_timeout"),
    "delta-of-no-block": (_sse([("content_block_delta", _NO_BLOCK)]), 502, "upstream_bad_answer"),
    "sdk-runtime-error": (SDK_RUNTIME_ERROR, 502, "upstream_bad_answer"),
}  # fmt: skip


def _broken_stream(failure: Exception | bytes, *, asynchronous: bool = False) -> httpx.Response:
    """A stream that sends 'Hel' and then fails: its connection, or (bytes) with these events."""
    headers = {"content-type": "text/event-stream"}
    if failure is SDK_RUNTIME_ERROR:
        return httpx.Response(200, content=_stream_events(["Hel", "lo"]), headers=headers)
    head = _stream_events(["Hel"])[: -len(_sse([("message_stop", {"type": "message_stop"})]))]
    if isinstance(failure, bytes):
        return httpx.Response(200, content=head + failure, headers=headers)
    body = _AsyncBreaksOff(head, failure) if asynchronous else _BreaksOff(head, failure)
    return httpx.Response(200, stream=body, headers=headers)


@pytest.fixture
def sdk_raises_at_second_delta(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's own event accumulator raising RuntimeError mid-answer."""
    from anthropic.lib.streaming import _messages

    accumulate = _messages.accumulate_event
    seen: list[str] = []

    def failing(*, event: Any, **kwargs: Any) -> Any:
        if getattr(event, "type", None) == "content_block_delta":
            seen.append(event.type)
            if len(seen) == 2:
                raise RuntimeError('Unexpected event order, got content_block_delta before "message_start"')
        return accumulate(event=event, **kwargs)

    monkeypatch.setattr(_messages, "accumulate_event", failing)


def _check_failed_stream(chunks: list[str], failure: str) -> None:
    _, status, code = MIDSTREAM_FAILURES[failure]
    assert chunks[0] == "Hel", chunks
    last = chunks[-1]
    assert isinstance(last, upstream.StreamFailure) and last.startswith(upstream.STREAM_ERROR_PREFIX)
    assert (last.error.status, last.error.error) == (status, code)


@pytest.mark.parametrize("failure", list(MIDSTREAM_FAILURES))
def test_every_midstream_failure_ends_the_stream_with_the_marker(
    settings: Settings, failure: str, request: pytest.FixtureRequest
) -> None:
    if failure == "sdk-runtime-error":
        request.getfixturevalue("sdk_raises_at_second_delta")
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(return_value=_broken_stream(MIDSTREAM_FAILURES[failure][0]))
        with upstream.sync_client(settings) as client:
            chunks = list(upstream.stream_sync(client, analysis_params(REQ, settings), settings))
    _check_failed_stream(chunks, failure)


@pytest.mark.parametrize("failure", list(MIDSTREAM_FAILURES))
def test_every_midstream_failure_ends_the_async_stream_with_the_marker(
    settings: Settings, failure: str, request: pytest.FixtureRequest
) -> None:
    if failure == "sdk-runtime-error":
        request.getfixturevalue("sdk_raises_at_second_delta")

    async def collect() -> list[str]:
        async with upstream.async_client(settings) as client:
            chunks = await upstream.stream_async(client, analysis_params(REQ, settings), settings)
            return [chunk async for chunk in chunks]

    broken = _broken_stream(MIDSTREAM_FAILURES[failure][0], asynchronous=True)
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(return_value=broken)
        chunks = asyncio.run(collect())
    _check_failed_stream(chunks, failure)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_loopback_upstream_is_called_directly_whatever_the_proxy_settings(
    servers_log_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job's http_proxy (set for its package downloads) must not carry the calls to the mock: through a
    proxy they would fail, or be measured through it."""
    with running_mock(servers_log_dir, "proxy", "--profile", "instant") as port:
        # Set after the mock is up: the harness's own readiness poll (urllib) honours these too.
        dead_proxy = f"http://127.0.0.1:{_closed_port()}"
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, dead_proxy)
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        settings = load_settings(
            {"BENCH_UPSTREAM_URL": f"http://127.0.0.1:{port}", "BENCH_JOB_DB": str(tmp_path / "j.db")}
        )
        with upstream.sync_client(settings) as client:
            assert upstream.analyse_sync(client, REQ, settings).summary
        assert asyncio.run(_analyse_async(settings, REQ)).summary
