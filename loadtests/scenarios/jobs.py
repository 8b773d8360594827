"""``POST /analyse/async`` then ``GET /jobs/{id}`` until done: the job's whole cycle and the polling cost.

Recorded per job: total cycle time (latency), time to the 202 (``ttft_ms`` column), polls (``n``).
The poll interval is ``--bench-poll-interval`` seconds.
"""

from __future__ import annotations

import json
import time

import gevent
from geventhttpclient import HTTPClient

from loadtests.scenarios.loadgen import BenchUser, Outcome


class JobsUser(BenchUser):
    scenario = "jobs"

    def call(self, http: HTTPClient, request_id: str) -> Outcome:
        started = time.perf_counter()
        response = http.request(
            "POST", "/analyse/async", body=self.body, headers=self.headers_for(request_id)
        )
        body = response.read()
        accepted = time.perf_counter() - started
        if response.status_code != 202:
            return Outcome(status=str(response.status_code), ok=False, total_s=accepted, first_s=accepted)
        job_id = json.loads(body)["job_id"]
        polls = 0
        while True:
            gevent.sleep(self.poll_interval)
            polls += 1
            poll = http.request("GET", f"/jobs/{job_id}", headers=self.auth_headers)
            view = poll.read()
            if poll.status_code != 200:
                return Outcome(
                    status=str(poll.status_code),
                    ok=False,
                    total_s=time.perf_counter() - started,
                    first_s=accepted,
                    n=polls,
                )
            state = json.loads(view).get("status")
            if state in ("done", "failed"):
                elapsed = time.perf_counter() - started
                status = "200" if state == "done" else "job-failed"
                return Outcome(status=status, ok=state == "done", total_s=elapsed, first_s=accepted, n=polls)
