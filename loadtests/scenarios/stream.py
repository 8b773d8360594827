"""``POST /analyse/stream``: time to the first chunk, total time and the number of chunks received.

A stream is a success only when it is complete and does not end with the server's error marker
(``\n[error] {json}``, written when the upstream failed after the first byte went out).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from geventhttpclient import HTTPClient

from loadtests.scenarios.loadgen import BenchUser, Outcome

ERROR_MARKER = b"\n[error] "


class StreamUser(BenchUser):
    scenario = "stream"

    def call(self, http: HTTPClient, request_id: str) -> Outcome:
        started = time.perf_counter()
        response = http.request(
            "POST", "/analyse/stream", body=self.body, headers=self.headers_for(request_id)
        )
        status = response.status_code
        read = read_streamed(response, started)
        elapsed = time.perf_counter() - started
        marker = read.tail.rfind(ERROR_MARKER)
        if status == 200 and marker >= 0:
            error = read.tail[marker + len(ERROR_MARKER) :][:100].decode(errors="replace")
            return Outcome(
                status="stream-error",
                ok=False,
                total_s=elapsed,
                first_s=read.first_s,
                n=read.chunks,
                error=error,
            )
        ok = status == 200 and read.size > 0 and read.complete
        label = str(status) if read.complete or status != 200 else "truncated"
        return Outcome(status=label, ok=ok, total_s=elapsed, first_s=read.first_s, n=read.chunks)


@dataclass(slots=True)
class Streamed:
    first_s: float | None  # time to the first piece of the body
    chunks: int
    size: int
    tail: bytes  # the end of the body: enough to find a marker split across two reads
    complete: bool


def read_streamed(response: Any, started: float) -> Streamed:
    """Read whatever the socket delivers, so the first piece of the body is timed as it arrives
    (response.read(n) would wait for n bytes)."""
    first: float | None = None
    chunks = 0
    size = 0
    tail = b""
    while True:
        if response._body_buffer:
            if first is None:
                first = time.perf_counter() - started
            chunks += 1
            size += len(response._body_buffer)
            tail = (tail + bytes(response._body_buffer))[-4096:]
            del response._body_buffer[:]
        if response.message_complete or response._sock is None:
            break
        data = response._sock.recv(65536)
        if not data:
            break
        response.feed(data)
    return Streamed(first_s=first, chunks=chunks, size=size, tail=tail, complete=response.message_complete)
