"""A pass-through proxy that writes each generation call's timings in the replay format (mock_llm.replay).

Every request goes to the upstream unchanged (its path, query, headers and body; ``accept-encoding`` is
set to ``identity`` so the proxy can read what it forwards) and the answer comes back byte for byte as it
arrives. For each call to ``/v1/messages``, ``/v1/chat/completions`` or ``/v1/responses`` that ends with a
complete 200 answer, one record: ``ttft_s`` from sending the request to the first text (a stream's first
text delta, or a whole body's first byte), ``total_s`` to its last byte, ``output_tokens`` from the usage
the answer reports, ``tokens_per_s`` over the streamed part, plus the endpoint and whether it streamed.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from time import perf_counter
from typing import IO, Any
from urllib.parse import urlsplit

import httpx2

from mock_llm.replay import FIELDS

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

RECORDED_PATHS = ("/v1/messages", "/v1/chat/completions", "/v1/responses")
COLUMNS = (*FIELDS, "endpoint", "stream")
# Hop-by-hop headers (RFC 9110) and the ones the proxy sets itself.
_NOT_FORWARDED = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade",
                  b"proxy-connection", b"accept-encoding", b"content-length"}  # fmt: skip
_NOT_RETURNED = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"proxy-connection"}
logger = logging.getLogger("mock_llm.record")


class TimingProbe:
    """Reads one answer as it passes: when its first text came, how many tokens it says it produced, and
    whether it ended complete."""

    def __init__(self, *, endpoint: str, streams: bool, started: float) -> None:
        self.endpoint = endpoint
        self.streams = streams
        self.started = started
        self.first_text: float | None = None
        self.output_tokens: int | None = None
        self.complete = False
        self._buffer = b""

    def feed(self, chunk: bytes, now: float) -> None:
        if not chunk:
            return
        if not self.streams:
            if self.first_text is None:
                self.first_text = now
            self._buffer += chunk
            return
        self._buffer += chunk.replace(b"\r\n", b"\n")
        *events, self._buffer = self._buffer.split(b"\n\n")
        for event in events:
            self._event(event, now)

    def _event(self, block: bytes, now: float) -> None:
        data = b"\n".join(line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:"))
        if data == b"[DONE]":
            self.complete = True
            return
        try:
            payload = json.loads(data)
        except ValueError:
            return
        if isinstance(payload, dict):
            self._payload(payload, now)

    def _payload(self, payload: dict[str, Any], now: float) -> None:
        kind = payload.get("type")
        text = False
        if kind == "content_block_delta":  # Messages API
            text = payload.get("delta", {}).get("type") == "text_delta"
        elif kind == "message_delta":
            self.output_tokens = payload.get("usage", {}).get("output_tokens", self.output_tokens)
        elif kind == "message_stop":
            self.complete = True
        elif kind == "response.output_text.delta":  # Responses API
            text = bool(payload.get("delta"))
        elif kind == "response.completed":
            self.output_tokens = (payload.get("response", {}).get("usage") or {}).get("output_tokens")
            self.complete = True
        elif payload.get("object") == "chat.completion.chunk":  # Chat Completions
            choices = payload.get("choices") or [{}]
            text = bool(choices[0].get("delta", {}).get("content"))
            usage = payload.get("usage") or {}
            self.output_tokens = usage.get("completion_tokens", self.output_tokens)
        if text and self.first_text is None:
            self.first_text = now

    def record(self, now: float) -> dict[str, Any] | None:
        """The row for a complete answer; None for anything else (an error, a cut stream)."""
        if not self.streams:
            try:
                usage = json.loads(self._buffer).get("usage") or {}
            except (ValueError, AttributeError):
                return None
            self.output_tokens = usage.get("output_tokens", usage.get("completion_tokens"))
            self.complete = True
        if not self.complete or self.first_text is None:
            return None
        ttft, total = self.first_text - self.started, now - self.started
        tokens = self.output_tokens if isinstance(self.output_tokens, int) else None
        rate = tokens / (total - ttft) if self.streams and tokens and total > ttft else None
        return {
            "ttft_s": round(ttft, 6),
            "total_s": round(total, 6),
            "tokens_per_s": None if rate is None else round(rate, 3),
            "output_tokens": tokens,
            "endpoint": self.endpoint,
            "stream": self.streams,
        }


class TraceWriter:
    """Appends records to a CSV (a ``.csv`` name) or JSONL file, flushed after each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._handle: IO[str] = path.open("w", newline="", encoding="utf-8")
        self._csv: csv.DictWriter[str] | None = None
        if path.suffix.lower() == ".csv":
            self._csv = csv.DictWriter(self._handle, fieldnames=COLUMNS)
            self._csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self._csv is not None:
            self._csv.writerow({k: "" if v is None else v for k, v in row.items()})
        else:
            self._handle.write(json.dumps(row) + "\n")
        self._handle.flush()
        self.count += 1

    def close(self) -> None:
        self._handle.close()


def _streams(headers: httpx2.Headers) -> bool:
    return headers.get("content-type", "").startswith("text/event-stream")


class RecordingProxy:
    """The ASGI app of ``python -m mock_llm record``."""

    def __init__(self, *, upstream: str, writer: TraceWriter) -> None:
        self.upstream = upstream.rstrip("/")
        self.writer = writer
        self._client: httpx2.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._proxy(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                local = urlsplit(self.upstream).hostname in ("127.0.0.1", "localhost", "::1")
                timeout = httpx2.Timeout(600.0, connect=10.0)
                # An upstream on loopback is reached directly, never through a proxy from the environment.
                self._client = httpx2.AsyncClient(timeout=timeout, trust_env=not local)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                self.writer.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        query = scope.get("query_string", b"")
        url = self.upstream + scope["path"] + ("?" + query.decode("latin-1") if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k not in _NOT_FORWARDED]
        headers.append((b"accept-encoding", b"identity"))
        assert self._client is not None
        request = self._client.build_request(scope["method"], url, headers=headers, content=body)
        started = perf_counter()
        try:
            response = await self._client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            await _bad_gateway(send, f"record: upstream {self.upstream} failed: {exc.__class__.__name__}")
            return
        try:
            await self._relay(scope["path"], response, send, started)
        finally:
            await response.aclose()

    async def _relay(self, path: str, response: httpx2.Response, send: Send, started: float) -> None:
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _NOT_RETURNED]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        probe = None
        if path in RECORDED_PATHS and response.status_code == 200:
            probe = TimingProbe(endpoint=path, streams=_streams(response.headers), started=started)
        async for chunk in response.aiter_raw():
            if probe is not None:
                probe.feed(chunk, perf_counter())
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        row = probe.record(perf_counter()) if probe is not None else None
        if row is not None:
            self.writer.write(row)


async def _bad_gateway(send: Send, message: str) -> None:
    body = json.dumps({"type": "error", "error": {"type": "api_error", "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 502, "headers": headers})
    await send({"type": "http.response.body", "body": body})
