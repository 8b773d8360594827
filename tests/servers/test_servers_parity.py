"""Parity: the Flask, FastAPI and Quart servers, started with `python -m servers run` against a real mock,
answer every request the same way. Flask's and FastAPI's are 4-process variants, so rate limit and jobs
cross workers; the Celery variants' jobs (run by a Celery worker, polled from any of 4 web workers) too."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from serverkit import (
    CORPUS,
    OTHER_TOKEN,
    RATE_TOKEN,
    TOKEN,
    VALID,
    Answer,
    ServerSpec,
    fleet,
    request,
    ws_exchange,
)
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from mock_llm.faults import FaultConfig, FaultModel
from servers.upstream import STREAM_ERROR_PREFIX

FRAMEWORKS = ("flask", "fastapi", "quart")
PARITY_VARIANTS = {"flask": "flask-sync", "fastapi": "fastapi-workers", "quart": "quart-async"}
CELERY_VARIANTS = ("flask-celery", "flask-celery-threads")
RATE_LIMIT = 100  # per day: the rate-limit test spends RATE_TOKEN's budget; the others never come close


FAULT_KINDS = ("429", "529", "500", "stream_error", "stall")
FAULT_SEED = 30
FAULT_VARIANTS = {"flask": "flask-sync", "fastapi": "fastapi-async", "quart": "quart-async"}


@dataclass(frozen=True, kw_only=True)
class World:
    ports: dict[str, int]  # framework -> parity server (4 processes each, Quart's 1)
    fault_ports: dict[str, int]  # framework -> server whose mock fails every call
    celery_ports: dict[str, int]  # Celery variant -> server, on the parity mock


@pytest.fixture(scope="module")
def world(servers_log_dir: Path) -> Iterator[World]:
    """All servers of this module start together: start-up is CPU-bound imports, so they overlap."""
    with fleet(servers_log_dir) as group:
        mock = group.mock("parity", "--profile", "article", "--time-scale", "0.05", "--seed", "3")
        ports = {
            fw: group.server(
                f"parity-{fw}",
                ServerSpec(variant=v, upstream_port=mock, env={"BENCH_RATE_LIMIT": f"{RATE_LIMIT}/day"}),
            )
            for fw, v in PARITY_VARIANTS.items()
        }
        celery_ports = {
            v: group.server(v, ServerSpec(variant=v, upstream_port=mock)) for v in CELERY_VARIANTS
        }
        fault_args = (
            "--profile",
            "instant",
            "--seed",
            str(FAULT_SEED),
            "--error-rate",
            "1",
            "--errors",
            ",".join(FAULT_KINDS),
        )
        fault_ports = {}
        for fw, v in FAULT_VARIANTS.items():
            fault_mock = group.mock(f"faults-mock-{fw}", *fault_args)
            spec = ServerSpec(
                variant=v, upstream_port=fault_mock, env={"BENCH_UPSTREAM_TIMEOUT_S": "1"}, workers=1
            )
            fault_ports[fw] = group.server(f"faults-{fw}", spec)
        group.wait_ready()
        yield World(ports=ports, fault_ports=fault_ports, celery_ports=celery_ports)


@pytest.fixture(scope="module")
def ports(world: World) -> dict[str, int]:
    return world.ports


def both(ports: dict[str, int], method: str, path: str, **kwargs: Any) -> dict[str, Answer]:
    return {fw: request(port, method, path, **kwargs) for fw, port in ports.items()}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_health(ports: dict[str, int], framework: str) -> None:
    answer = request(ports[framework], "GET", "/health", token=None)
    assert answer.status == 200
    assert answer.json() == {"status": "ok", "framework": framework, "variant": PARITY_VARIANTS[framework]}


@pytest.mark.parametrize(("name", "method", "path", "kwargs", "status"), CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_identical(
    ports: dict[str, int], name: str, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    answers = both(ports, method, path, **kwargs)
    for fw, answer in answers.items():
        assert answer.status == status, (fw, answer)
        assert answer.headers["content-type"].startswith("application/json"), (fw, answer.headers)
    flask, fastapi = answers["flask"].json(), answers["fastapi"].json()
    assert flask == fastapi  # the mock is deterministic per input, so even 200 bodies match exactly
    assert answers["quart"].json() == fastapi
    if status == 200:
        limit = kwargs["json_body"].get("max_findings", 10)
        assert 1 <= len(flask["findings"]) <= limit
        assert (flask.get("markdown") is not None) == (kwargs["json_body"].get("output_format") == "markdown")
    elif status == 422:
        assert isinstance(flask["detail"], list) and {"loc", "msg", "type"} <= set(flask["detail"][0])
    else:
        assert set(flask) == {"detail", "error"}
    if status == 401:
        assert all(a.headers.get("www-authenticate") == "Bearer" for a in answers.values())
    if status == 405:
        assert all("allow" in a.headers for a in answers.values())


def test_stream_same_text(ports: dict[str, int]) -> None:
    answers = both(ports, "POST", "/analyse/stream", json_body=VALID)
    for fw, answer in answers.items():
        assert answer.status == 200, (fw, answer)
        assert answer.headers["content-type"].startswith("text/plain"), fw
        assert answer.headers.get("transfer-encoding") == "chunked", (fw, answer.headers)
    assert answers["flask"].body == answers["fastapi"].body == answers["quart"].body
    parsed = json.loads(answers["flask"].body)  # the streamed text is the model's whole JSON answer
    assert set(parsed) == {"summary", "findings"}


def _poll(port: int, job_id: str, *, token: str = TOKEN, deadline_s: float = 20.0) -> Answer:
    end = time.monotonic() + deadline_s
    while True:
        answer = request(port, "GET", f"/jobs/{job_id}", token=token)
        if answer.status != 200 or answer.json()["status"] in ("done", "failed") or time.monotonic() > end:
            return answer
        time.sleep(0.05)


def test_jobs_across_workers_and_isolated(world: World) -> None:
    ports = world.ports
    direct = both(ports, "POST", "/analyse", json_body=VALID)
    for name in CELERY_VARIANTS:  # flask-sync's web tier; the jobs run in the Celery worker
        direct[name] = direct["flask"]
    for fw, port in {**ports, **world.celery_ports}.items():
        # Several jobs and concurrent polls on fresh connections: answers come from different workers.
        submitted = [request(port, "POST", "/analyse/async", json_body=VALID) for _ in range(4)]
        assert all(a.status == 202 for a in submitted), (fw, submitted)
        ids = [a.json()["job_id"] for a in submitted]
        assert all(a.json()["status"] == "queued" for a in submitted)
        assert len(set(ids)) == 4 and all(len(i) >= 20 for i in ids)
        with ThreadPoolExecutor(max_workers=4) as pool:
            finals = list(pool.map(lambda i: _poll(port, i), ids))  # noqa: B023
        for job_id, final in zip(ids, finals, strict=True):
            assert final.status == 200, (fw, final)
            assert final.json() == {"job_id": job_id, "status": "done", "result": direct[fw].json()}
        assert request(port, "GET", f"/jobs/{ids[0]}", token=OTHER_TOKEN).json() == {
            "detail": "Job not found",
            "error": "job_not_found",
        }
        assert request(port, "GET", f"/jobs/{ids[0]}", token=OTHER_TOKEN).status == 404


def test_websocket_round_trip(ports: dict[str, int]) -> None:
    results = {}
    for fw, port in ports.items():
        by_header = ws_exchange(
            port,
            ["Explain backpressure briefly.", "   "],
            additional_headers={"Authorization": f"Bearer {TOKEN}"},
        )
        answer, blank = by_header
        assert json.loads(answer[-1]) == {"type": "done"}, fw
        assert len(answer) >= 2 and "".join(answer[:-1]).strip(), fw
        assert json.loads(blank[-1])["status"] == 422, fw
        results[fw] = answer
    assert results["flask"] == results["fastapi"] == results["quart"]  # same frames, chunk for chunk


def test_websocket_query_token_and_refusal(ports: dict[str, int]) -> None:
    for fw, port in ports.items():
        with connect(f"ws://127.0.0.1:{port}/ws/chat?token={TOKEN}", open_timeout=10) as ws:
            ws.send("Say hello.")
            frames = []
            while not frames or frames[-1] != '{"type":"done"}':
                frames.append(str(ws.recv(timeout=15)))
        for url in (f"ws://127.0.0.1:{port}/ws/chat", f"ws://127.0.0.1:{port}/ws/chat?token=wrong"):
            with pytest.raises(InvalidStatus) as info:
                connect(url, open_timeout=10).close()
            assert info.value.response.status_code == 401, fw


def test_rate_limit_holds_across_workers(ports: dict[str, int]) -> None:
    for fw, port in ports.items():
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(lambda _: request(port, "GET", "/jobs/x", token=RATE_TOKEN), range(RATE_LIMIT + 5))  # noqa: B023
            )
        counts = Counter(a.status for a in answers)
        assert counts == {404: RATE_LIMIT, 429: 5}, (fw, counts)
        limited = next(a for a in answers if a.status == 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"] == "rate_limited"
        assert request(port, "GET", "/jobs/x").status == 404  # other tokens are unaffected


N_REQUESTS = 8
FAULT_BODY = {"text": "Some text that the model will fail to analyse.", "analysis_type": "detailed"}
EXPECTED = {
    "429": (503, "upstream_rate_limited"),
    "529": (503, "upstream_overloaded"),
    "500": (502, "upstream_error"),
    "stall": (504, "upstream_timeout"),
}


def test_faults_map_identically(world: World) -> None:
    """Each framework has its own mock failing every call with the same seed, so both meet the same
    faults in the same order; replaying the seeded draws tells which fault each request met."""
    model = FaultModel(FaultConfig(error_rate=1.0, kinds=FAULT_KINDS), seed=FAULT_SEED)
    draws = [model.draw() for _ in range(N_REQUESTS + 1)]
    seen: dict[str, list[tuple[int, bytes]]] = {}
    for fw, port in world.fault_ports.items():
        answers = []
        for i in range(N_REQUESTS):
            path = "/analyse/stream" if i % 2 == 0 else "/analyse"
            started = time.monotonic()
            answer = request(port, "POST", path, json_body=FAULT_BODY, timeout=20)
            assert time.monotonic() - started < 10, (fw, i, "took too long")
            kind = draws[i]
            assert kind is not None
            if kind == "stream_error":
                assert answer.status == 200, (fw, i, kind, answer)
                if path == "/analyse/stream":
                    text = answer.body.decode()
                    assert STREAM_ERROR_PREFIX in text, (fw, text[-200:])
                    error = json.loads(text.rsplit(STREAM_ERROR_PREFIX, 1)[1])
                    assert error == {
                        "detail": "The model is overloaded",
                        "error": "upstream_overloaded",
                        "status": 503,
                    }
            else:
                assert (answer.status, answer.json()["error"]) == EXPECTED[kind], (fw, i, kind, answer)
                assert set(answer.json()) == {"detail", "error"}
            answers.append((answer.status, answer.body))
        # A job meets the next fault and ends failed (or done, for a stream-only fault), never stuck.
        job_id = request(port, "POST", "/analyse/async", json_body=FAULT_BODY).json()["job_id"]
        deadline = time.monotonic() + 10
        while (job := request(port, "GET", f"/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, (fw, job)
            time.sleep(0.05)
        last = draws[N_REQUESTS]
        if last == "stream_error":
            assert job["status"] == "done"
        else:
            assert job["status"] == "failed"
            status, code = EXPECTED[str(last)]
            assert job["error"]["status"] == status and job["error"]["error"] == code
        seen[fw] = answers
    assert seen["flask"] == seen["fastapi"] == seen["quart"]
    assert {d for d in draws[:N_REQUESTS]} == set(FAULT_KINDS)  # every kind was exercised
