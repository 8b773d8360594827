"""The WSGI-to-ASGI adapter variants on real uvicorn, over a kept-alive connection as a load generator
holds it (``serverkit.request`` opens a fresh connection per request, which hides what follows)."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from pathlib import Path

from serverkit import TOKEN, ServerSpec, running_mock, running_server

from loadtests.driver.processes import LOOPBACK

REQUESTS = 40
BODY = json.dumps({"text": "One request after another on one connection.", "analysis_type": "summary"})


def _statuses_on_one_connection(port: int, count: int) -> Counter[int]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    statuses: Counter[int] = Counter()
    try:
        for _ in range(count):
            conn.request("POST", "/analyse", body=BODY, headers=headers)
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
    finally:
        conn.close()
    return statuses


def test_flask_asgiref_answers_a_kept_alive_client_without_500(servers_log_dir: Path) -> None:
    # Without the front's own context for `send`, asgiref 3.13 answered 500 ("CurrentThreadExecutor
    # already quit or is broken") to about a fifth of these: 0.8 ** 40 leaves a passing chance of 1e-4.
    with (
        running_mock(servers_log_dir, "keepalive", "--profile", "article", "--time-scale", "0.2") as mock,
        running_server(servers_log_dir, ServerSpec(variant="flask-asgiref", upstream_port=mock)) as port,
    ):
        statuses = _statuses_on_one_connection(port, REQUESTS)
    assert statuses == Counter({200: REQUESTS}), statuses
