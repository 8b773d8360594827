"""The request id reaches the upstream call (every adapter: Flask, FastAPI, Quart, and Flask behind a2wsgi's
reused threads), and the SDK's pool size is a real cap."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import TOKEN, VALID, ServerSpec, fleet, mock_reset, mock_stats, request

from loadtests.driver.processes import LOOPBACK
from servers.tracing import valid_request_id

POOL = 3
BODY = b'{"text": "Measure how many upstream calls this server keeps open.", "analysis_type": "summary"}'


@pytest.fixture(scope="module")
def traced(servers_log_dir: Path) -> Iterator[dict[str, tuple[int, int]]]:
    """variant -> (server port, its mock's port): the adapters, and two variants with a small pool."""
    with fleet(servers_log_dir) as group:
        ports: dict[str, tuple[int, int]] = {}
        for key, variant, env in (
            ("flask-sync", "flask-sync", {}),
            ("fastapi-async", "fastapi-async", {}),
            ("quart-async", "quart-async", {}),
            ("flask-a2wsgi", "flask-a2wsgi", {}),
            ("fastapi-async-pool", "fastapi-async", {"BENCH_UPSTREAM_MAX_CONNECTIONS": str(POOL)}),
            ("flask-gevent-pool", "flask-gevent", {"BENCH_UPSTREAM_MAX_CONNECTIONS": str(POOL)}),
        ):
            mock = group.mock(f"mock-{key}", "--profile", "article", "--time-scale", "0.5")
            ports[key] = (group.server(key, ServerSpec(variant=variant, upstream_port=mock, env=env)), mock)
        group.wait_ready()
        yield ports


def _calls(mock: int, since: float) -> dict[str, list[object]]:
    answer = request(mock, "GET", f"/mock/calls?since={since}", token=None)
    assert answer.status == 200
    return {str(call[0]): call for call in answer.json()["calls"]}


@pytest.mark.parametrize("variant", ["flask-sync", "fastapi-async", "quart-async", "flask-a2wsgi"])
def test_the_request_id_travels_to_the_upstream_call(
    traced: dict[str, tuple[int, int]], variant: str
) -> None:
    port, mock = traced[variant]
    mock_reset(mock)
    before = time.monotonic()
    assert request(port, "POST", "/analyse", json_body=VALID, headers={"x-request-id": "t-1.a"}).status == 200
    assert (
        request(port, "POST", "/analyse/stream", json_body=VALID, headers={"x-request-id": "t-2"}).status
        == 200
    )
    # Not a header-safe id: the server does not forward it (and still answers).
    assert request(port, "POST", "/analyse", json_body=VALID, headers={"x-request-id": "a b"}).status == 200
    after = time.monotonic()
    calls = _calls(mock, before)
    assert {"t-1.a", "t-2"} <= set(calls) and "a b" not in calls
    for rid in ("t-1.a", "t-2"):
        _, arrival, end, status = calls[rid]
        # The mock's clock is this process's monotonic clock: the call sits inside the client's timing.
        assert before <= float(arrival) <= float(end) <= after, (rid, calls[rid])  # type: ignore[arg-type]
        assert float(end) - float(arrival) >= 0.95  # type: ignore[arg-type]  # the 1 s upstream call
        assert status == "200"
    # A request after them carries no stale id from the worker that served them.
    later = time.monotonic()
    assert request(port, "POST", "/analyse", json_body=VALID).status == 200
    assert set(_calls(mock, later)) == {""}


@pytest.mark.parametrize("variant", ["fastapi-async-pool", "flask-gevent-pool"])
def test_the_sdk_pool_size_caps_the_calls_in_flight(traced: dict[str, tuple[int, int]], variant: str) -> None:
    port, mock = traced[variant]
    mock_reset(mock)
    raw = (
        f"POST /analyse HTTP/1.1\r\nHost: {LOOPBACK}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
    ).encode() + BODY
    socks = [socket.create_connection((LOOPBACK, port), timeout=10) for _ in range(4 * POOL)]
    try:
        for sock in socks:
            sock.sendall(raw)
        time.sleep(2.5)  # more than two upstream calls of 1 s: the pool has turned over
        stats = mock_stats(mock)
        assert stats["peak_in_flight"] == POOL, stats
        assert stats["requests"] >= 2 * POOL  # queued requests get the freed connections
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("req-42.a:b_C", "req-42.a:b_C"),
        (b"abc", "abc"),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        ("abc\n", None),  # `$` matches before a final newline: a header-breaking id must not pass
        ("abc\r\n", None),
        ("", None),
        ("a b", None),
    ],
)
def test_only_a_whole_valid_request_id_is_kept(value: str | bytes, kept: str | None) -> None:
    assert valid_request_id(value) == kept
