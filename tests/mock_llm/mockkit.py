"""Helpers shared by the mock_llm tests (a uniquely named module: every test directory has a conftest)."""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.driver.processes import LOOPBACK, ManagedProcess, free_port, python_module_argv

API_HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01", "content-type": "application/json"}
CONTROL = {"x-mock-control": "1"}  # what POST /mock/reset needs
# article x 0.05: 100 ms per call; a stream's first delta at 25 ms and its last byte at 100 ms.
FAST_SCALE = 0.05
# article x 0.5: 1 s per call; first delta at 250 ms. Long enough to watch the in-flight gauge.
SLOW_SCALE = 0.5


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Mock:
    port: int
    process: ManagedProcess

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        return http_request(self.port, method, path, body=body, headers=headers, timeout=timeout)

    def stats(self) -> dict[str, Any]:
        reply = self.request("GET", "/mock/stats")
        assert reply.status == 200
        return dict(reply.json())

    def reset(self) -> dict[str, Any]:
        reply = self.request("POST", "/mock/reset", headers=CONTROL)
        assert reply.status == 200
        return dict(reply.json())


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    payload = json.dumps(body).encode() if isinstance(body, dict) else body
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=payload, headers=dict(headers or {}))
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def mock_argv(port: int, *extra: str) -> list[str]:
    return python_module_argv("mock_llm", "--host", LOOPBACK, "--port", str(port), *extra)


@contextlib.contextmanager
def running_mock(log_dir: Path, name: str, *extra: str) -> Iterator[Mock]:
    port = free_port()
    process = ManagedProcess(
        name,
        mock_argv(port, *extra),
        log_path=log_dir / f"{name}.log",
        ready_url=f"http://{LOOPBACK}:{port}/health",
    )
    process.start(ready_timeout=60.0)
    try:
        yield Mock(port, process)
    finally:
        process.stop()


def messages_body(text: str = "Explain event loops.", **fields: Any) -> dict[str, Any]:
    return {
        "model": "claude-haiku-5-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}],
    } | fields


_OPEN_CLIENTS: list[Any] = []


def sdk_client(base_url: str, *, api_key: str = "test-key", **options: Any) -> Any:
    """An anthropic.Anthropic client that the conftest closes after the test (no leaked sockets)."""
    import anthropic

    client = anthropic.Anthropic(base_url=base_url, api_key=api_key, **options)
    _OPEN_CLIENTS.append(client)
    return client


def openai_client(base_url: str, *, api_key: str = "test-key", **options: Any) -> Any:
    """An openai.OpenAI client on the mock's /v1, closed after the test like the anthropic ones."""
    import openai

    client = openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, **options)
    _OPEN_CLIENTS.append(client)
    return client


def close_sdk_clients() -> None:
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()
