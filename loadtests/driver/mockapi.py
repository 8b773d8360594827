"""The mock's control plane as the harness calls it: its gauge, stats, per-call records and reset.

One module for every call, so each is made the same way (a timeout on every call, JSON in and out).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from loadtests.driver.direct import open_direct

# The mock refuses a state-changing control call without it: a page in the user's browser cannot send a
# custom header cross-site without a CORS preflight the mock never grants.
CONTROL_HEADER = {"X-Mock-Control": "1"}


def http_json(
    url: str, *, method: str = "GET", timeout: float = 10.0, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    request = urllib.request.Request(
        url, method=method, data=b"" if method == "POST" else None, headers=headers or {}
    )
    with open_direct(request, timeout=timeout) as response:
        return dict(json.loads(response.read()))


def gauge(mock_url: str) -> float:
    """Calls in flight right now (a cheap poll, made every 0.2 s while a point runs)."""
    return float(http_json(f"{mock_url}/mock/gauge", timeout=2.0)["in_flight"])


def stats(mock_url: str) -> dict[str, Any]:
    return http_json(f"{mock_url}/mock/stats")


def api_calls(mock_url: str) -> int:
    """Calls to the mock's API (``/v1/...``) since it started or was last reset."""
    return int(stats(mock_url)["requests"])


def in_flight(mock_url: str) -> int:
    return int(stats(mock_url)["in_flight"])


def reset(mock_url: str) -> None:
    """Zero the mock's counters and peak: the window starts here."""
    http_json(f"{mock_url}/mock/reset", method="POST", headers=CONTROL_HEADER)


def calls_since(mock_url: str, since_monotonic: float) -> list[list[Any]]:
    """The mock's per-call records that ended after ``since_monotonic`` (its monotonic clock)."""
    answer = http_json(f"{mock_url}/mock/calls?since={since_monotonic:.6f}", timeout=30.0)
    return list(answer.get("calls", []))
