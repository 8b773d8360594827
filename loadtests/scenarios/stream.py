"""``POST /analyse/stream``: time to the first chunk, total time and the number of chunks received.

A stream is a success only when it is complete and does not end with the server's error marker
(``\n[error] {json}``, written when the upstream failed after the first byte went out).
"""

from __future__ import annotations

import time

from geventhttpclient import HTTPClient

from loadtests.loadgen import BenchUser, Outcome

ERROR_MARKER = b"\n[error] "


class StreamUser(BenchUser):
    scenario = "stream"

    def call(self, http: HTTPClient, request_id: str) -> Outcome:
        started = time.perf_counter()
        response = http.request(
            "POST", "/analyse/stream", body=self.body, headers=self.headers_for(request_id)
        )
        status = response.status_code
        first: float | None = None
        chunks = 0
        size = 0
        tail = b""  # the end of the body so far: enough to find a marker split across two reads
        # Read whatever the socket delivers, so the first piece of the body is timed as it arrives;
        # response.read(n) would wait for n bytes.
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
        elapsed = time.perf_counter() - started
        marker = tail.rfind(ERROR_MARKER)
        if status == 200 and marker >= 0:
            error = tail[marker + len(ERROR_MARKER) :][:100].decode(errors="replace")
            return Outcome(
                status="stream-error", ok=False, total_s=elapsed, first_s=first, n=chunks, error=error
            )
        complete = response.message_complete
        ok = status == 200 and size > 0 and complete
        label = str(status) if complete or status != 200 else "truncated"
        return Outcome(status=label, ok=ok, total_s=elapsed, first_s=first, n=chunks)
