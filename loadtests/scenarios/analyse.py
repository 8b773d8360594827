"""``POST /analyse``: the headline scenario (one upstream call per request).

Standalone: ``locust -f loadtests/scenarios/analyse.py --headless -u 16 -r 16 -t 30s --host http://127.0.0.1:8000``
(add ``--bench-raw PREFIX`` for exact per-request records, ``--bench-spread 2`` to spread user starts).
"""

from __future__ import annotations

import time

from geventhttpclient import HTTPClient

from loadtests.scenarios.loadgen import BenchUser, Outcome


class AnalyseUser(BenchUser):
    scenario = "analyse"

    def call(self, http: HTTPClient, request_id: str) -> Outcome:
        started = time.perf_counter()
        response = http.request("POST", "/analyse", body=self.body, headers=self.headers_for(request_id))
        body = response.read()
        elapsed = time.perf_counter() - started
        status = response.status_code
        ok = status == 200 and body[:1] == b"{"
        return Outcome(
            status=str(status),
            ok=ok,
            total_s=elapsed,
            n=len(body),
            error="" if ok else body[:80].decode(errors="replace"),
        )
