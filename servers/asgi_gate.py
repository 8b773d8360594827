"""The request gate (``servers.gate``) as pure ASGI middleware in front of the FastAPI app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from servers.errors import ApiError
from servers.gate import BodyBuffer, joined_headers, screen_json_body, screen_request
from servers.jsonio import JSON_MEDIA_TYPE
from servers.validation import is_json_content_type

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


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
            await self.app(scope, receive, send)
            return
        try:
            headers = list(
                joined_headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
            )
            fields = dict(headers)
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
