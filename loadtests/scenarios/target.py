"""Your own app's request, from its target file: the sweep passes the rendered request template in
``BENCH_TARGET_REQUEST`` (JSON: method, path, headers, body, expect_status) and the scenario it stands for
in ``BENCH_TARGET_SCENARIO`` (``analyse``: one answer; ``stream``: a streamed body, timed to its first
piece). A request succeeds when it gets the status the file expects (and, streamed, its whole body).
"""

from __future__ import annotations

import json
import os
import time

from geventhttpclient import HTTPClient

from loadtests.scenarios.loadgen import BenchUser, Outcome
from loadtests.scenarios.stream import read_streamed

TEMPLATE = json.loads(os.environ.get("BENCH_TARGET_REQUEST") or "{}")
SCENARIO = os.environ.get("BENCH_TARGET_SCENARIO", "analyse")


class TargetUser(BenchUser):
    scenario = SCENARIO

    def on_start(self) -> None:
        super().on_start()
        self.method = TEMPLATE.get("method", "GET")
        self.path = TEMPLATE.get("path", "/")
        self.template_headers = dict(TEMPLATE.get("headers", {}))
        self.template_body = str(TEMPLATE.get("body", "")).encode()
        self.expect_status = int(TEMPLATE.get("expect_status", 200))

    def call(self, http: HTTPClient, request_id: str) -> Outcome:
        started = time.perf_counter()
        headers = {**self.template_headers, "x-request-id": request_id}
        response = http.request(self.method, self.path, body=self.template_body or None, headers=headers)
        status = response.status_code
        if SCENARIO == "stream":
            read = read_streamed(response, started)
            ok = status == self.expect_status and read.complete
            return Outcome(
                status=str(status) if read.complete else "truncated", ok=ok,
                total_s=time.perf_counter() - started, first_s=read.first_s, n=read.size,
            )  # fmt: skip
        body = response.read()
        ok = status == self.expect_status
        return Outcome(
            status=str(status), ok=ok, total_s=time.perf_counter() - started, n=len(body),
            error="" if ok else body[:80].decode(errors="replace"),
        )  # fmt: skip
