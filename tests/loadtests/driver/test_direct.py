"""HTTP to the harness's own processes never goes through a proxy the environment names."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loadtests.driver import mockapi
from loadtests.driver.processes import LOOPBACK, free_port, http_ok


class _Stats(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"in_flight": 3}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def stats_server() -> Iterator[str]:
    server = ThreadingHTTPServer((LOOPBACK, free_port()), _Stats)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_proxy_in_the_environment_is_not_used_for_loopback(
    stats_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that refuses every connection: a call sent through it fails.
    dead = f"http://{LOOPBACK}:{free_port()}"
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert mockapi.in_flight(stats_server) == 3
    assert http_ok(f"{stats_server}/health")
