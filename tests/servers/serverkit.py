"""Helpers for the servers tests: real mock and server processes on loopback, and a lean HTTP client.

(A module of its own with a unique name: `from conftest import` is ambiguous across test directories.)
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.processes import LOOPBACK, ManagedProcess, free_port, python_module_argv

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
        for key in list(self._procs):
            self.stop(key)


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


def mock_stats(port: int) -> dict[str, Any]:
    answer = request(port, "GET", "/mock/stats", token=None)
    assert answer.status == 200, answer
    return dict(answer.json())


def mock_reset(port: int) -> None:
    assert request(port, "POST", "/mock/reset", token=None).status == 200
