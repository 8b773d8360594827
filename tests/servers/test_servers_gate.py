"""Unit tests of the request gate's pieces (the corpus test drives it end to end through every variant)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from servers.asgi_gate import AsgiGate
from servers.errors import ApiError
from servers.gate import MAX_JSON_DEPTH, joined_headers, read_limited, screen_json_body, too_deep
from servers.limits import MAX_BODY_BYTES


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
