"""``POST /analyse/stream``: time to the first chunk, total time and the number of chunks received."""

from __future__ import annotations

import time

from geventhttpclient import HTTPClient

from loadtests.loadgen import BenchUser, Outcome


class StreamUser(BenchUser):
    scenario = "stream"

    def call(self, http: HTTPClient) -> Outcome:
        started = time.perf_counter()
        response = http.request("POST", "/analyse/stream", body=self.body, headers=self.auth_headers)
        status = response.status_code
        first: float | None = None
        chunks = 0
        size = 0
        # Read whatever the socket delivers, so the first piece of the body is timed as it arrives;
        # response.read(n) would wait for n bytes.
        while True:
            if response._body_buffer:
                if first is None:
                    first = time.perf_counter() - started
                chunks += 1
                size += len(response._body_buffer)
                del response._body_buffer[:]
            if response.message_complete or response._sock is None:
                break
            data = response._sock.recv(65536)
            if not data:
                break
            response.feed(data)
        elapsed = time.perf_counter() - started
        ok = status == 200 and size > 0 and response.message_complete
        return Outcome(status=str(status), ok=ok, total_s=elapsed, first_s=first, n=chunks)
