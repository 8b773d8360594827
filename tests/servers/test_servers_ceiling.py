"""Concurrency ceilings: hold C requests open against each variant and read the mock's peak in flight.

The mock's peak_in_flight is ground truth for how many upstream calls the server really had open at
once. Each request is a raw socket that sends its POST and is never read: the cheapest possible load
generator, so the client cannot be the bottleneck. The server is stopped after the measurement, which
abandons the held requests; nothing waits for 128 calls to finish through a ceiling of 4.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serverkit import (
    CORPUS,
    TOKEN,
    VALID,
    Fleet,
    ServerSpec,
    fleet,
    mock_reset,
    mock_stats,
    request,
    ws_exchange,
)

from loadtests.driver.processes import LOOPBACK
from servers.variants import get_variant

CALL_S = 1.5  # the article profile's 2 s per call x time scale 0.75: long enough for 128 to pile up
SETTLE_S = 0.6  # after the expected peak is reached, watch this long more for overshoot
# Longer calls where starting every call takes a loaded 2-core machine more than CALL_S (measured: 512
# granian threads reach the mock over about 3 s; gunicorn's Python ASGI protocol starts 128 in over 1 s).
CALL_S_OF = {
    "flask-granian": 8.0,
    "fastapi-granian": 4.0,
    "fastapi-gunicorn-asgi": 4.0,
    "flask-sync-64": 4.0,
    "quart-async": 4.0,  # hypercorn parses HTTP in Python (h11), like gunicorn's asgi worker
}

# variant -> (concurrent requests, lowest acceptable peak, highest acceptable peak)
CASES: dict[str, tuple[int, int, int]] = {
    "flask-sync": (128, 4, 4),
    "flask-async-views": (128, 4, 4),
    "fastapi-def": (48, 40, 40),
    "fastapi-blocking": (16, 1, 1),
    "fastapi-async": (128, 120, 128),
    "flask-gevent": (128, 120, 128),
    # 4 x 32 threads, but a burst of new connections spreads unevenly: one worker accepts more than its
    # 32 threads can serve (observed peaks 36..81). At least one full worker of threads is guaranteed.
    "flask-gthread": (128, 32, 128),
    "fastapi-workers": (128, 120, 128),
    # granian's default WSGI pool: 512 blocking threads in its one worker, exactly.
    "flask-granian": (600, 512, 512),
    "fastapi-granian": (128, 120, 128),
    "fastapi-gunicorn-asgi": (128, 120, 128),
    # uvicorn --limit-concurrency 64 counts the arriving connection too: 63 served, the rest shed (503).
    "fastapi-shedding": (96, 63, 63),
    "flask-sync-64": (96, 64, 64),
    "quart-async": (128, 120, 128),
    # asgiref: every WSGI call on one shared thread (no ThreadSensitiveContext under uvicorn).
    "flask-asgiref": (16, 1, 1),
    "flask-a2wsgi": (32, 10, 10),  # a2wsgi's default ThreadPoolExecutor(max_workers=10)
    # The Celery variants' web tier is flask-sync's: /analyse holds its 4 workers (jobs: further down).
    "flask-celery": (128, 4, 4),
    "flask-celery-threads": (128, 4, 4),
}

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = json.dumps(
    {"text": "Measure how many upstream calls this server keeps open.", "analysis_type": "summary"}
)


@pytest.fixture(scope="module")
def ceiling_fleet(servers_log_dir: Path) -> Iterator[tuple[Fleet, dict[str, tuple[int, int]]]]:
    """Every variant with a mock of its own, all started together; each test stops its pair when done
    (the abandoned requests would otherwise keep its mock and CPU busy)."""
    with fleet(servers_log_dir) as group:
        ports: dict[str, tuple[int, int]] = {}
        for variant in CASES:
            scale = CALL_S_OF.get(variant, CALL_S) / 2.0
            mock = group.mock(f"mock-{variant}", "--profile", "article", "--time-scale", str(scale))
            spec = ServerSpec(variant=variant, upstream_port=mock, env={"BENCH_RATE_LIMIT": "1000000/minute"})
            ports[variant] = (group.server(variant, spec), mock)
        group.wait_ready()
        yield group, ports


def _job_result(port: int) -> object:
    job_id = request(port, "POST", "/analyse/async", json_body=VALID).json()["job_id"]
    deadline = time.monotonic() + 30
    while (job := request(port, "GET", f"/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job["result"]


def _behaviour(variant: str, port: int) -> dict[str, object]:
    """Everything observable about one variant: the corpus, one of each upstream call, one job, one chat."""
    out: dict[str, object] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:  # the upstream calls overlap (1.5 s each)
        analyse = pool.submit(request, port, "POST", "/analyse", json_body=VALID)
        stream = pool.submit(request, port, "POST", "/analyse/stream", json_body=VALID)
        job = pool.submit(_job_result, port)
        chat = (
            pool.submit(ws_exchange, port, ["Explain backpressure briefly."], additional_headers=AUTH)
            if get_variant(variant).supports("chat")
            else None
        )
        for name, method, path, kwargs, _status in CORPUS:
            if _status != 200:
                answer = request(port, method, path, **kwargs)
                out[name] = (answer.status, answer.json())
        out["analyse"] = (analyse.result().status, analyse.result().json())
        out["stream"] = (stream.result().status, stream.result().body)
        out["job"] = job.result()
        if chat is not None:
            # The answer's text and its final frame: where frames break depends on the upstream's
            # timing (these mocks' time scales differ), not on the server.
            out["chat"] = [("".join(frames[:-1]), frames[-1]) for frames in chat.result()]
    return out


@pytest.mark.slow
def test_every_variant_answers_alike(ceiling_fleet: tuple[Fleet, dict[str, tuple[int, int]]]) -> None:
    """Parity across every variant (each mock has the same seed, so even the content matches), on what
    each supports (the registry says which scenarios a variant cannot serve)."""
    _, ports = ceiling_fleet
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        behaviours = dict(zip(ports, pool.map(lambda v: _behaviour(v, ports[v][0]), ports), strict=True))
    reference = behaviours["fastapi-async"]
    assert reference["analyse"][0] == 200 and reference["stream"][0] == 200  # type: ignore[index]
    for variant, behaviour in behaviours.items():
        for key, value in reference.items():
            if key == "chat" and not get_variant(variant).supports("chat"):
                assert key not in behaviour, variant
            elif key == "job":
                assert behaviour[key] == reference["analyse"][1], (variant, key)  # type: ignore[index]
            else:
                assert behaviour[key] == value, (variant, key)


def _open_requests(port: int, count: int) -> list[socket.socket]:
    raw = (
        f"POST /analyse HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\nConnection: close\r\n\r\n{BODY}"
    ).encode()
    socks = []
    for _ in range(count):
        sock = socket.create_connection((LOOPBACK, port), timeout=10)
        sock.sendall(raw)
        socks.append(sock)
    return socks


def _statuses(socks: list[socket.socket], wait_s: float) -> dict[str, int]:
    """The status line of every held request that has been answered within ``wait_s`` ("pending" for
    the rest): a shed request's 503 comes at once, a served one's only after its upstream call."""
    out: dict[str, int] = {}
    end = time.monotonic() + wait_s
    for sock in socks:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            head = sock.recv(12)
            key = head.decode("latin-1").removeprefix("HTTP/1.1 ") if head else "closed"  # "503"
        except TimeoutError:
            key = "pending"
        out[key] = out.get(key, 0) + 1
    return out


def _peak_while_holding(
    server_port: int, mock_port: int, count: int, expected_low: int, call_s: float, *, answers: bool
) -> tuple[int, dict[str, int]]:
    mock_reset(mock_port)
    socks: list[socket.socket] = []
    try:
        socks = _open_requests(server_port, count)
        started = time.monotonic()
        reached_at: float | None = None
        peak = 0
        while time.monotonic() - started < 2 * call_s + 2.0:
            peak = int(mock_stats(mock_port)["peak_in_flight"])
            if reached_at is None and peak >= expected_low:
                reached_at = time.monotonic()
            if reached_at is not None and time.monotonic() - reached_at >= SETTLE_S:
                break
            time.sleep(0.1)
        peak = int(mock_stats(mock_port)["peak_in_flight"])
        # Still within the first upstream period for most: the shed are answered, the served pending.
        return peak, _statuses(socks, 0.5) if answers else {}
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(CASES))
def test_ceiling(ceiling_fleet: tuple[Fleet, dict[str, tuple[int, int]]], variant: str) -> None:
    group, ports = ceiling_fleet
    count, low, high = CASES[variant]
    assert high <= get_variant(variant).predicted_ceiling
    port, mock = ports[variant]
    try:
        call_s = CALL_S_OF.get(variant, CALL_S)
        limit = get_variant(variant).limit_concurrency
        peak, statuses = _peak_while_holding(port, mock, count, low, call_s, answers=bool(limit))
    finally:
        group.stop(variant)
        group.stop(f"mock-{variant}")
    print(f"{variant}: {count} held, mock peak in flight {peak}, answers {statuses}")
    assert low <= peak <= high, f"{variant}: peak {peak} not in [{low}, {high}]"
    if limit:
        # Shedding, not queueing: every request that did not get an upstream call was answered 503 at
        # once; none a 500, none dropped; the served ones are waiting on their calls or just answered.
        assert set(statuses) <= {"503", "200", "pending"}, statuses
        assert statuses.get("503", 0) == count - peak, statuses


# The Celery variants' jobs in flight: many jobs queued at once (each POST is answered 202 at once by the
# web tier), then the mock's peak while the worker runs what its pool allows and the rest wait in Redis.
# variant -> (jobs submitted, the one call duration L in seconds, the peak expected). prefork's count is
# Celery's documented default, one process per CPU (os.cpu_count(), as billiard counts them), measured here.
JOB_CASES: dict[str, tuple[int, float, int]] = {
    "flask-celery": (16, 1.5, os.cpu_count() or 1),
    # 100 threads start their calls while the jobs are still arriving: L long enough on a loaded machine.
    "flask-celery-threads": (140, 6.0, 100),
}


@pytest.fixture(scope="module")
def jobs_fleet(servers_log_dir: Path) -> Iterator[tuple[Fleet, dict[str, tuple[int, int]]]]:
    """The Celery pair, each with a mock of its own; `servers run` starts each one's Redis and worker."""
    with fleet(servers_log_dir) as group:
        ports: dict[str, tuple[int, int]] = {}
        for variant, (_count, call_s, _peak) in JOB_CASES.items():
            mock = group.mock(
                f"jobs-mock-{variant}", "--profile", "article", "--time-scale", str(call_s / 2.0)
            )
            spec = ServerSpec(variant=variant, upstream_port=mock, env={"BENCH_RATE_LIMIT": "1000000/minute"})
            ports[variant] = (group.server(f"jobs-{variant}", spec), mock)
        group.wait_ready()
        yield group, ports


def _submit(port: int) -> str:
    answer = request(port, "POST", "/analyse/async", json_body=VALID)
    assert answer.status == 202, answer
    return str(answer.json()["job_id"])


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(JOB_CASES))
def test_jobs_in_flight(jobs_fleet: tuple[Fleet, dict[str, tuple[int, int]]], variant: str) -> None:
    group, ports = jobs_fleet
    count, call_s, expected = JOB_CASES[variant]
    predicted = get_variant(variant).predicted_jobs_ceiling
    port, mock = ports[variant]
    try:
        mock_reset(mock)
        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = list(pool.map(lambda _: _submit(port), range(count)))
        started = time.monotonic()
        reached_at: float | None = None
        peak = 0
        while time.monotonic() - started < 2 * call_s + 2.0:
            peak = int(mock_stats(mock)["peak_in_flight"])
            if reached_at is None and peak >= expected:
                reached_at = time.monotonic()
            if reached_at is not None and time.monotonic() - reached_at >= SETTLE_S:
                break
            time.sleep(0.1)
        peak = int(mock_stats(mock)["peak_in_flight"])
        # The last job submitted still waits in the broker: the pool, not the web tier, is the limit.
        last = request(port, "GET", f"/jobs/{ids[-1]}").json()
    finally:
        group.stop(f"jobs-{variant}")
        group.stop(f"jobs-mock-{variant}")
    took = "never" if reached_at is None else f"{reached_at - started:.1f} s after the last 202"
    print(
        f"{variant}: {count} jobs queued, mock peak in flight {peak} (predicted {predicted}), reached {took}"
    )
    assert peak == expected, f"{variant}: {peak} jobs in flight, expected {expected}"
    assert predicted == peak, f"{variant}: the registry predicts {predicted} jobs in flight, measured {peak}"
    assert last["status"] == "queued", last
