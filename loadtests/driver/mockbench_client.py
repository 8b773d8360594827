"""A lean HTTP/1.1 keep-alive client for benchmarking the mock: one asyncio Protocol per connection.

No HTTP library on purpose: at 2,000 calls in flight the client must cost far less than the server it
measures, so it only finds the end of the headers, the Content-Length or the chunked terminator, and (for
streams) the arrival of the first text delta.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from time import perf_counter
from typing import cast

_CHUNKED_END = b"0\r\n\r\n"
_FIRST_DELTA = b"event: content_block_delta"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    sent_at: float
    first_delta_at: float | None  # streams only: when the first text delta arrived
    done_at: float
    size: int


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[Reply] | None = None
        self._sent_at = 0.0
        self._first: float | None = None
        self._header_end = -1
        self._need = -1  # total bytes when the body has a Content-Length; -1 for chunked
        self._status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def request(self, data: bytes) -> asyncio.Future[Reply]:
        if self._transport is None:
            raise ConnectionError("not connected")
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._buf.clear()
        self._first = None
        self._header_end = -1
        self._need = -1
        self._sent_at = perf_counter()
        self._transport.write(data)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if self._header_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._header_end = end + 4
            self._status = int(buf[9:12])
            head = bytes(buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                self._need = self._header_end + int(head[at + 17 : stop if stop >= 0 else len(head)])
        if self._need >= 0:
            if len(buf) >= self._need:
                self._finish()
            return
        if self._first is None and _FIRST_DELTA in buf:
            self._first = perf_counter()
        if buf.endswith(_CHUNKED_END):
            self._finish()

    def _finish(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(Reply(self._status, self._sent_at, self._first, perf_counter(), len(self._buf)))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def build_request(*, host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
