"""``POST /analyse/stream``: time to the first byte of the body, total time and the bytes received.

A stream is a success only when it is complete and does not end with the server's error marker
(``\n[error] {json}``, written when the upstream failed after the first byte went out).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPParseError

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
                n=read.size,
                error=error,
            )
        ok = status == 200 and read.size > 0 and read.complete
        label = str(status) if read.complete or status != 200 else "truncated"
        return Outcome(status=label, ok=ok, total_s=elapsed, first_s=read.first_s, n=read.size)


@dataclass(slots=True)
class Streamed:
    first_s: float | None  # time to the first byte of the body
    size: int  # bytes of body received
    tail: bytes  # the end of the body: enough to find a marker split across two reads
    complete: bool


def read_streamed(response: Any, started: float) -> Streamed:
    """Read the body with geventhttpclient's public reads: ``read(1)`` returns as soon as one byte is
    there (already parsed with the headers, or the first receive), so the first byte is timed as it
    arrives; iterating reads the rest until the message is complete. A connection closed mid-body
    raises in the parser: the stream is incomplete, never silently short (its size then leaves out the
    block the parser was filling; a failed request's size is not used)."""
    try:
        head = response.read(1)
    except HTTPParseError:
        return Streamed(first_s=None, size=0, tail=b"", complete=False)
    first = time.perf_counter() - started if head else None
    size, tail = len(head), head
    try:
        for block in response:
            size += len(block)
            tail = (tail + block)[-4096:]
    except HTTPParseError:
        return Streamed(first_s=first, size=size, tail=tail, complete=False)
    return Streamed(first_s=first, size=size, tail=tail, complete=bool(response.message_complete))
