"""The request gate (``servers.gate``) as pure ASGI middleware in front of the FastAPI app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from servers.errors import ApiError
from servers.gate import (
    BodyBuffer,
    bad_handshake,
    has_body,
    joined_headers,
    not_a_handshake,
    screen_json_body,
    screen_request,
)
from servers.jsonio import JSON_MEDIA_TYPE
from servers.validation import is_json_content_type

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
WS_DENIAL_EXTENSION = "websocket.http.response"  # ASGI's WebSocket Denial Response extension


async def send_error(send: Send, error: ApiError) -> None:
    body = error.body()
    headers = [(b"content-type", JSON_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AsgiGate:
    def __init__(self, app: App, *, extra_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.extra_paths = extra_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and _carries_a_body(scope):
                await refuse_handshake(scope, receive, send, not_a_handshake())
                return
            await self.app(scope, receive, send)
            return
        try:
            headers = list(
                joined_headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
            )
            fields = dict(headers)
            refused = bad_handshake(
                method=scope["method"], upgrade=fields.get("upgrade"), connection=fields.get("connection"),
                content_length=fields.get("content-length"),
                transfer_encoding=fields.get("transfer-encoding"),
            )  # fmt: skip
            if refused is not None:
                raise refused
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
            query: bytes = scope.get("query_string", b"")
            admitted = screen_request(
                method=scope["method"],
                path=scope["path"],
                target_bytes=len(raw_path) + (len(query) + 1 if query else 0),
                content_length=fields.get("content-length"),
                extra_paths=self.extra_paths,
            )
            body = b""
            if admitted.reads_body:
                read = await _read_body(receive)
                if read is None:
                    return  # the client left mid-body: no one to answer, and half a body is no request
                body = read
                if is_json_content_type(fields.get("content-type")):
                    body = screen_json_body(body)
        except ApiError as exc:
            await send_error(send, exc)
            return
        if admitted.reads_body:
            headers = [(k, v) for k, v in headers if k not in ("content-length", "transfer-encoding")]
            headers.append(("content-length", str(len(body))))
        # HEAD is served as GET; the server (uvicorn) leaves out the body of a HEAD answer itself.
        inner = {
            **scope,
            "method": admitted.method,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
        await self.app(inner, _replay(body, receive) if admitted.reads_body else receive, send)


def _carries_a_body(scope: Scope) -> bool:
    """A handshake some servers (granian: for any method; hypercorn: a GET) upgrade although it has a body;
    the scope has no method, but the framing headers say it."""
    fields = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    return has_body(fields.get("content-length"), fields.get("transfer-encoding"))


async def refuse_handshake(scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
    """The error as the handshake's HTTP answer (ASGI's denial response), or, on a server without that
    extension, a close before accept (which the server answers with 403)."""
    await receive()  # websocket.connect
    if WS_DENIAL_EXTENSION not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = error.body()
    headers = [(b"content-type", JSON_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send({"type": "websocket.http.response.start", "status": error.status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client disconnects before sending all of it."""
    buffer = BodyBuffer()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        buffer.add(message.get("body", b""))
        if not message.get("more_body", False):
            return buffer.value()


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the disconnect, as streaming responses do

    return replay
