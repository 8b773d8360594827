"""Check a running variant against the server contract before measuring it (TechEmpower-style).

A variant that answers /health but gets the contract wrong would produce numbers that mean nothing, so it
is reported with the first broken rule and not measured.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from loadtests.driver.direct import open_direct
from loadtests.scenarios.wsclient import WebSocket

VALID_BODY = {
    "text": "Quarterly revenue grew while churn rose in the enterprise segment.",
    "analysis_type": "summary",
    "output_format": "json",
    "max_findings": 3,
}


class ContractError(Exception):
    """The variant broke a rule of the contract; the message names it."""


@dataclass(frozen=True, kw_only=True)
class Verified:
    analyse_latency_s: float  # one /analyse call at no load: L plus the server's own overhead


def _call(
    url: str, *, method: str = "GET", body: Any = None, token: str | None = None, timeout: float = 60.0
) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with open_direct(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)
    except (urllib.error.URLError, OSError) as exc:
        raise ContractError(f"{method} {urlsplit(url).path} failed: {exc}") from None


def _json(payload: bytes, what: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        raise ContractError(f"{what} did not return JSON: {payload[:80]!r}") from None


def verify_variant(base_url: str, *, variant: str, token: str, scenarios: Sequence[str]) -> Verified:
    """Raise ContractError on the first broken rule."""
    status, payload, _ = _call(f"{base_url}/health")
    health = _json(payload, "GET /health")
    if status != 200 or not isinstance(health, dict) or health.get("variant") != variant:
        raise ContractError(
            f"GET /health answered {status} {payload[:120]!r}, expected 200 naming {variant!r}"
        )

    started = time.perf_counter()
    status, payload, _ = _call(f"{base_url}/analyse", method="POST", body=VALID_BODY, token=token)
    latency = time.perf_counter() - started
    result = _json(payload, "POST /analyse")
    if status != 200 or not isinstance(result, dict) or "summary" not in result or "findings" not in result:
        raise ContractError(
            f"POST /analyse answered {status} {payload[:120]!r}, expected 200 with an analysis"
        )

    status, payload, _ = _call(f"{base_url}/analyse", method="POST", body=VALID_BODY)
    if status != 401:
        raise ContractError(f"POST /analyse without a token answered {status}, expected 401")

    status, payload, _ = _call(f"{base_url}/analyse", method="POST", body={"text": "short"}, token=token)
    detail = _json(payload, "POST /analyse with bad input").get("detail") if status == 422 else None
    if status != 422 or not isinstance(detail, list) or not detail:
        raise ContractError(
            f"POST /analyse with bad input answered {status}, expected 422 with a detail list"
        )

    status, payload, headers = _call(
        f"{base_url}/analyse/stream", method="POST", body=VALID_BODY, token=token
    )
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if status != 200 or not payload.strip() or not content_type.startswith("text/plain"):
        raise ContractError(
            f"POST /analyse/stream answered {status} ({content_type}), expected streamed text"
        )

    if "jobs" in scenarios:
        _verify_jobs(base_url, token)
    if "chat" in scenarios:
        _verify_chat(base_url, token)
    return Verified(analyse_latency_s=latency)


def _verify_jobs(base_url: str, token: str) -> None:
    status, payload, _ = _call(f"{base_url}/analyse/async", method="POST", body=VALID_BODY, token=token)
    created = _json(payload, "POST /analyse/async")
    if status != 202 or not isinstance(created, dict) or "job_id" not in created:
        raise ContractError(
            f"POST /analyse/async answered {status} {payload[:120]!r}, expected 202 with job_id"
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, payload, _ = _call(f"{base_url}/jobs/{created['job_id']}", token=token)
        view = _json(payload, "GET /jobs/{id}")
        if status != 200:
            raise ContractError(f"GET /jobs/{{id}} answered {status}, expected 200")
        if view.get("status") == "done":
            return
        if view.get("status") == "failed":
            raise ContractError(f"a job failed: {view.get('error')}")
        time.sleep(0.05)
    raise ContractError("a job did not finish within 120 s")


def _verify_chat(base_url: str, token: str) -> None:
    parts = urlsplit(base_url)
    try:
        ws = WebSocket(parts.hostname or "127.0.0.1", parts.port or 80, f"/ws/chat?token={token}", timeout=60)
    except (OSError, ConnectionError) as exc:
        raise ContractError(f"WS /ws/chat: {exc}") from None
    try:
        ws.send_text("Summarise the quarter in one line.")
        frames = 0
        while True:
            _opcode, payload = ws.recv()
            if payload[:1] == b"{" and b'"done"' in payload:
                break
            frames += 1
        if frames == 0:
            raise ContractError("WS /ws/chat sent the done frame without any answer frame")
    except (OSError, ConnectionError) as exc:
        raise ContractError(f"WS /ws/chat: {exc}") from None
    finally:
        ws.close()


def verify_target(base_url: str, *, name: str, health: str, requests: dict[str, dict[str, Any]]) -> None:
    """Your own app's contract is its target file's: the health path answers 200, and each scenario's
    request gets the status the file expects (a streamed one, its whole body). Raise ContractError."""
    status, payload, _ = _call(f"{base_url}{health}")
    if status != 200:
        raise ContractError(f"target {name}: GET {health} answered {status} {payload[:120]!r}, expected 200")
    for scenario, req in requests.items():
        request = urllib.request.Request(
            f"{base_url}{req['path']}",
            data=req["body"].encode() if req["body"] else None,
            method=req["method"],
            headers=req["headers"],
        )
        try:
            with open_direct(request, timeout=60.0) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise ContractError(f"target {name}: {req['method']} {req['path']} failed: {exc}") from None
        if status != req["expect_status"]:
            raise ContractError(
                f"target {name}: scenario {scenario}: {req['method']} {req['path']} answered {status} "
                f"{payload[:120]!r}, the target file expects {req['expect_status']} (expect_status)"
            )
