"""Helpers for the servers tests: real mock and server processes on loopback, and a lean HTTP client.

(A module of its own with a unique name: `from conftest import` is ambiguous across test directories.)
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from loadtests.driver.processes import LOOPBACK, ManagedProcess, free_port, python_module_argv

TOKEN = "tok-main"
OTHER_TOKEN = "tok-other"
RATE_TOKEN = "tok-rate"
TOKENS = f"{TOKEN},{OTHER_TOKEN},{RATE_TOKEN}"


@dataclass(frozen=True, kw_only=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    token: str | None = TOKEN,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    timeout: float = 30.0,
) -> Answer:
    """One request on a fresh connection (so a multi-worker server spreads them across workers)."""
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    if json_body is not None:
        body = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return Answer(status=resp.status, headers={k.lower(): v for k, v in resp.getheaders()}, body=data)
    finally:
        conn.close()


def raw_request(port: int, data: bytes, *, method: str, timeout: float = 30.0) -> Answer:
    """Exactly these bytes on a fresh connection (repeated headers, bad framing and all), one answer back."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)  # a server may answer (413) and close before reading all of a large body
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        body = resp.read()
        return Answer(status=resp.status, headers={k.lower(): v for k, v in resp.getheaders()}, body=body)


def mock_argv(port: int, *extra: str) -> list[str]:
    return python_module_argv("mock_llm", "--host", LOOPBACK, "--port", str(port), *extra)


@contextlib.contextmanager
def running_mock(log_dir: Path, name: str, *extra: str) -> Iterator[int]:
    port = free_port()
    proc = ManagedProcess(
        f"mock-{name}",
        mock_argv(port, *extra),
        log_path=log_dir / f"mock-{name}.log",
        ready_url=f"http://{LOOPBACK}:{port}/health",
    )
    proc.start(ready_timeout=60)
    try:
        yield port
    finally:
        proc.stop()


@dataclass(frozen=True, kw_only=True)
class ServerSpec:
    variant: str
    upstream_port: int
    env: Mapping[str, str] | None = None
    workers: int | None = None


def server_process(log_dir: Path, spec: ServerSpec) -> tuple[ManagedProcess, int]:
    port = free_port()
    argv = python_module_argv(
        "servers", "run", spec.variant, "--host", LOOPBACK, "--port", str(port),
        "--upstream", f"http://{LOOPBACK}:{spec.upstream_port}", "--log-level", "warning",
    )  # fmt: skip
    if spec.workers is not None:
        argv += ["--workers", str(spec.workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update({"BENCH_API_TOKENS": TOKENS, "BENCH_UPSTREAM_MAX_RETRIES": "0", "BENCH_RATE_LIMIT": "off"})
    env.update(spec.env or {})
    proc = ManagedProcess(
        f"server-{spec.variant}",
        argv,
        log_path=log_dir / f"server-{spec.variant}-{port}.log",
        ready_url=f"http://{LOOPBACK}:{port}/health",
        env=env,
    )
    return proc, port


class Fleet:
    """Mocks and servers started all at once (start-up is CPU-bound imports; two cores overlap them),
    each stoppable on its own, all stopped by :meth:`stop_all`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: dict[str, ManagedProcess] = {}
        self._ready: dict[str, str] = {}

    def _launch(self, key: str, proc: ManagedProcess) -> None:
        assert key not in self._procs, f"duplicate fleet key {key!r}"
        assert proc.ready_url is not None
        self._ready[key], proc.ready_url = proc.ready_url, None
        proc.start()
        proc.ready_url = self._ready[key]
        self._procs[key] = proc

    def mock(self, key: str, *extra: str) -> int:
        port = free_port()
        proc = ManagedProcess(
            f"mock-{key}",
            mock_argv(port, *extra),
            log_path=self.log_dir / f"mock-{key}-{port}.log",
            ready_url=f"http://{LOOPBACK}:{port}/health",
        )
        self._launch(key, proc)
        return port

    def server(self, key: str, spec: ServerSpec) -> int:
        proc, port = server_process(self.log_dir, spec)
        self._launch(key, proc)
        return port

    def wait_ready(self, timeout: float = 120.0) -> None:
        for proc in self._procs.values():
            proc.wait_ready(timeout=timeout)

    def stop(self, key: str) -> None:
        proc = self._procs.pop(key, None)
        if proc is not None:
            proc.stop()

    def stop_all(self) -> None:
        # In parallel: each server takes its graceful second to stop, and a fleet holds up to 20 of them.
        procs = list(self._procs.values())
        self._procs.clear()
        with ThreadPoolExecutor(max_workers=max(1, len(procs))) as pool:
            list(pool.map(lambda proc: proc.stop(), procs))


@contextlib.contextmanager
def fleet(log_dir: Path) -> Iterator[Fleet]:
    group = Fleet(log_dir)
    try:
        yield group
    finally:
        group.stop_all()


@contextlib.contextmanager
def running_servers(log_dir: Path, *specs: ServerSpec) -> Iterator[list[int]]:
    with fleet(log_dir) as group:
        ports = [group.server(f"s{i}", spec) for i, spec in enumerate(specs)]
        group.wait_ready()
        yield ports


@contextlib.contextmanager
def running_server(log_dir: Path, spec: ServerSpec) -> Iterator[int]:
    with running_servers(log_dir, spec) as ports:
        yield ports[0]


@dataclass(frozen=True, kw_only=True)
class AllVariants:
    mock_port: int
    ports: dict[str, int]  # variant name -> port
    deadline_s: float


def mock_stats(port: int) -> dict[str, Any]:
    answer = request(port, "GET", "/mock/stats", token=None)
    assert answer.status == 200, answer
    return dict(answer.json())


def mock_reset(port: int) -> None:
    assert request(port, "POST", "/mock/reset", token=None, headers={"x-mock-control": "1"}).status == 200


VALID = {"text": "The quarterly report shows revenue growth and rising costs.", "analysis_type": "summary"}
JSON_CT = {"Content-Type": "application/json"}
TEXT_CT = {"Content-Type": "text/plain"}
BASIC = {"Authorization": "Basic eDp5"}
MARKDOWN = {**VALID, "output_format": "markdown", "max_findings": 2}
ENTITIES = {**VALID, "analysis_type": "entities", "max_findings": 1}

# Requests both frameworks (and every variant) must answer identically.
# (name, method, path, kwargs, expected status)
CORPUS: list[tuple[str, str, str, dict[str, Any], int]] = [
    ("valid", "POST", "/analyse", {"json_body": VALID}, 200),
    ("markdown", "POST", "/analyse", {"json_body": MARKDOWN}, 200),
    ("entities-1", "POST", "/analyse", {"json_body": ENTITIES}, 200),
    ("short", "POST", "/analyse", {"json_body": {**VALID, "text": "too short"}}, 422),
    ("blank", "POST", "/analyse", {"json_body": {**VALID, "text": " " * 20}}, 422),
    ("bad-enum", "POST", "/analyse", {"json_body": {**VALID, "analysis_type": "poem"}}, 422),
    ("bad-max", "POST", "/analyse", {"json_body": {**VALID, "max_findings": 51}}, 422),
    ("missing", "POST", "/analyse", {"json_body": {}}, 422),
    ("list", "POST", "/analyse", {"json_body": [1, 2]}, 422),
    ("bad-json", "POST", "/analyse", {"body": b"{nope", "headers": JSON_CT}, 422),
    ("no-body", "POST", "/analyse", {}, 422),
    ("text-plain", "POST", "/analyse", {"body": json.dumps(VALID).encode(), "headers": TEXT_CT}, 422),
    ("bad-utf8", "POST", "/analyse", {"body": b'{"text": "\xff\xfe"}', "headers": JSON_CT}, 422),
    ("no-token", "POST", "/analyse", {"json_body": VALID, "token": None}, 401),
    ("bad-token", "POST", "/analyse", {"json_body": VALID, "token": "nope"}, 401),
    ("basic-auth", "POST", "/analyse", {"json_body": VALID, "token": None, "headers": BASIC}, 401),
    ("no-token-invalid", "POST", "/analyse", {"json_body": {}, "token": None}, 401),
    ("no-token-bad-json", "POST", "/analyse", {"body": b"{", "headers": JSON_CT, "token": None}, 422),
    ("stream-invalid", "POST", "/analyse/stream", {"json_body": {**VALID, "max_findings": 0}}, 422),
    ("async-invalid", "POST", "/analyse/async", {"json_body": {"text": 1}}, 422),
    ("async-no-token", "POST", "/analyse/async", {"json_body": VALID, "token": None}, 401),
    ("unknown-job", "GET", "/jobs/does-not-exist", {}, 404),
    ("job-no-token", "GET", "/jobs/does-not-exist", {"token": None}, 401),
    ("get-analyse", "GET", "/analyse", {}, 405),
    ("post-health", "POST", "/health", {"token": None}, 405),
    ("put-job", "PUT", "/jobs/x", {}, 405),
    ("unknown-route", "GET", "/nope", {"token": None}, 404),
    ("ws-over-http", "GET", "/ws/chat", {}, 404),
]  # fmt: skip


def ws_exchange(port: int, messages: list[str], **connect_kwargs: Any) -> list[list[str]]:
    answers: list[list[str]] = []
    with connect(f"ws://{LOOPBACK}:{port}/ws/chat", open_timeout=10, **connect_kwargs) as ws:
        for message in messages:
            ws.send(message)
            frames: list[str] = []
            while True:
                frame = str(ws.recv(timeout=15))
                frames.append(frame)
                if frame.startswith("{") and json.loads(frame).get("type") in ("done", "error"):
                    break
            answers.append(frames)
    return answers
