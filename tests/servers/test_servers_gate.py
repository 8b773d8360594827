"""Unit tests of the request gate's pieces (the corpus test drives it end to end through every variant)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from timingkit import OverBudget, best_time, watchdog

from servers.asgi_gate import AsgiGate
from servers.errors import ApiError
from servers.flask_app import create_app as create_flask
from servers.gate import (
    MAX_JSON_DEPTH,
    joined_headers,
    read_limited,
    screen_json_body,
    too_deep,
    too_large,
)
from servers.limits import MAX_BODY_BYTES
from servers.settings import load_settings
from servers.wsgi_gate import WsgiGate


def test_depth_counts_brackets_outside_strings_only() -> None:
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    at_limit = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert too_deep(deep) and not too_deep(at_limit)
    assert not too_deep(b"[" + b"[1]," * 500 + b"[2]]")  # many brackets, shallow
    assert not too_deep(json.dumps({"text": "[" * 500}).encode())
    assert not too_deep(json.dumps({"text": 'quote \\" then [[[[' * 20}).encode())
    with pytest.raises(ApiError) as info:
        screen_json_body(b"[" * (MAX_JSON_DEPTH + 1))
    assert info.value.status == 400


# Enough brackets to pass the screen's cheap count, then a string that never closes.
OPEN = b"[]" * (MAX_JSON_DEPTH + 1) + b'"'


def escaped_quotes(size: int, *, tail: bytes = b"") -> bytes:
    """The quadratic case of a backtracking screen: a string that never closes, full of escaped quotes
    (each one a place a rescan could start)."""
    return OPEN + b'\\"' * ((size - len(OPEN) - len(tail)) // 2) + tail


# Bodies at the size limit, each in a shape a screen could be slow on; all of them shallow.
WORST_BODIES = {
    "escaped-quotes": escaped_quotes(MAX_BODY_BYTES),
    "escaped-quotes-then-backslash": escaped_quotes(MAX_BODY_BYTES, tail=b"\\"),
    "backslashes": OPEN + b"\\" * (MAX_BODY_BYTES - len(OPEN)),
    "quotes": b'"' * (MAX_BODY_BYTES - len(OPEN) + 1) + OPEN[:-1],
    "bracket-pairs": b"[]" * (MAX_BODY_BYTES // 2),
    "short-lists": b"[" + b"[1]," * (MAX_BODY_BYTES // 4 - 1) + b"]",
}
SCREEN_BUDGET_S = 2.0  # about 0.1 s here for the slowest shape; a quadratic screen needs hours


@pytest.mark.parametrize("shape", list(WORST_BODIES))
def test_the_largest_body_is_screened_within_a_time_budget(shape: str) -> None:
    body = WORST_BODIES[shape]
    assert len(body) <= MAX_BODY_BYTES
    try:
        with watchdog(SCREEN_BUDGET_S):
            assert screen_json_body(body) == body  # shallow: passed on unchanged
    except OverBudget:
        pytest.fail(f"screening {len(body)} bytes of {shape} took over {SCREEN_BUDGET_S} s")
    with watchdog(SCREEN_BUDGET_S), pytest.raises(ApiError) as info:
        screen_json_body(b"[" * MAX_BODY_BYTES)
    assert info.value.status == 400


# 8x the body may take at most 8 x GROWTH_SLACK the time: linear with room for a busy machine's noise,
# where a quadratic screen takes 64x (measured: 4 KB 0.13 s, 32 KB 7.3 s before the screen was linear).
SIZES_KB = (4, 32, 256)
GROWTH_SLACK = 3.0


@pytest.mark.parametrize("tail", [b"", b"\\"], ids=["unterminated", "ends-in-a-backslash"])
def test_screen_time_grows_linearly_with_the_body(tail: bytes) -> None:
    times: list[float] = []
    for kb in SIZES_KB:
        body = escaped_quotes(kb * 1024, tail=tail)
        took = best_time(lambda body=body: too_deep(body), runs=30, within_s=1.0, budget_s=60.0)
        if times:
            ratio = took / times[-1]
            limit = SIZES_KB[len(times)] / SIZES_KB[len(times) - 1] * GROWTH_SLACK
            assert ratio <= limit, f"{kb} KB took {ratio:.1f}x the time of the last size, over {limit:g}x"
        times.append(took)


def test_after_an_unterminated_string_every_bracket_counts() -> None:
    """The former screen's answers, kept: it could not match a string that never closes, so it counted
    every bracket after its opening quote (the decoder fails at that string either way)."""
    assert too_deep(b'"' + b"[" * (MAX_JSON_DEPTH + 1))
    assert too_deep(b'{"a": "b", "c": "never closed \\" ' + b"{" * (MAX_JSON_DEPTH + 1))
    assert not too_deep(b'"' + b"[" * MAX_JSON_DEPTH)
    assert not too_deep(b'["closed \\" ' + b"[" * 100 + b'"]')  # the escaped quote does not end it
    assert not too_deep(escaped_quotes(64 * 1024))


def test_undecodable_bytes_become_escaped_lone_surrogates() -> None:
    fixed = screen_json_body(b'{"text": "a\xffb\xed\xa0\x80c", "n": "\xc3\xa9"}')
    assert json.loads(fixed) == {"text": "a\udcffb\udced\udca0\udc80c", "n": "é"}
    assert screen_json_body(b'{"ok": "\xc3\xa9"}') == b'{"ok": "\xc3\xa9"}'  # valid UTF-8 is left alone


def test_repeated_fields_are_joined_and_singletons_refused() -> None:
    joined = dict(
        joined_headers([("Authorization", "Bearer a"), ("X-A", "1"), ("authorization", "Bearer b")])
    )
    assert joined == {"authorization": "Bearer a,Bearer b", "x-a": "1"}
    with pytest.raises(ApiError, match="Content-Type"):
        list(joined_headers([("content-type", "a/b"), ("Content-Type", "a/b")]))


def test_body_limit_counts_chunks() -> None:
    assert read_limited([b"a" * 10, b"b"]) == b"a" * 10 + b"b"
    with pytest.raises(ApiError) as info:
        read_limited([b"x" * MAX_BODY_BYTES, b"y"])
    assert info.value.status == 413 and info.value.headers["Connection"] == "close"


def test_a_client_that_leaves_mid_body_reaches_no_app() -> None:
    called: list[Any] = []
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    messages = iter(
        [{"type": "http.request", "body": b'{"te', "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> Any:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/analyse", "raw_path": b"/analyse",
             "query_string": b"", "headers": [(b"content-type", b"application/json")]}  # fmt: skip
    asyncio.run(AsgiGate(app)(scope, receive, send))
    assert called == [] and sent == []


def _wsgi_environ(method: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    return environ


def _through_wsgi_gate(environ: dict[str, Any]) -> tuple[str | None, bool]:
    """(the gate's own status line or None, whether the app behind it was reached)."""
    reached: list[bool] = []
    statuses: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        reached.append(True)
        return []

    WsgiGate(app)(environ, lambda status, headers: statuses.append(status))
    return (statuses[0] if statuses else None), bool(reached)


UPGRADE = {"Upgrade": "websocket"}
HANDSHAKE = {"Upgrade": "websocket", "Connection": "keep-alive, Upgrade", "Sec-WebSocket-Version": "13"}


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/analyse", UPGRADE),  # Werkzeug: no WebSocket without Connection: upgrade
        ("POST", "/analyse", HANDSHAKE),  # no handshake is a POST
        ("POST", "/ws/chat", HANDSHAKE),
        ("GET", "/ws/chat", {**HANDSHAKE, "Connection": "close"}),
        ("GET", "/ws/chat", {**HANDSHAKE, "Upgrade": "h2c"}),
    ],
)
def test_only_a_real_websocket_handshake_skips_the_wsgi_gate(
    method: str, path: str, headers: dict[str, str]
) -> None:
    deep = b"[" * 100_000
    status, reached = _through_wsgi_gate(_wsgi_environ(method, path, deep, headers))
    assert not reached and status is not None and status[:3] in ("400", "404", "405"), status


def test_a_real_websocket_handshake_goes_to_flask_sock() -> None:
    status, reached = _through_wsgi_gate(_wsgi_environ("GET", "/ws/chat", b"", HANDSHAKE))
    assert reached and status is None


def test_flask_without_its_gate_still_answers_400_and_413_never_500(tmp_path: Path) -> None:
    """The second line behind the gate: Flask's own body limit, worded as the gate's 413, and input
    nested past the interpreter's recursion limit answered as FastAPI answers a body it cannot parse."""
    app = create_flask(load_settings({"BENCH_JOB_DB": str(tmp_path / "j.db"), "BENCH_API_TOKENS": "t"}))
    app.wsgi_app = app.wsgi_app.app  # type: ignore[attr-defined]  # the gate peeled off
    client = app.test_client()
    json_type = {"Content-Type": "application/json"}
    deep = client.post("/analyse", data=b"[" * 100_000, headers={**json_type, "Authorization": "Bearer t"})
    assert deep.status_code == 400, deep.data
    assert deep.get_json() == {"detail": "There was an error parsing the body", "error": "bad_request"}
    big = client.post("/analyse", data=b"x" * (MAX_BODY_BYTES + 1), headers=json_type)
    assert big.status_code == 413, big.data
    assert big.data == too_large().body()
