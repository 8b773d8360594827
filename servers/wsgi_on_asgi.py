"""A WSGI app served by an ASGI server through a WSGI-to-ASGI adapter, with the adapter's defaults.

flask-asgiref and flask-a2wsgi put the unchanged Flask app behind ``asgiref.wsgi.WsgiToAsgi`` or
``a2wsgi.WSGIMiddleware`` on uvicorn. In front of the adapter sits only what an ASGI server needs and no
adapter provides, so every variant answers the same:
- the request gate every ASGI variant has (``servers.asgi_gate``): asgiref reads the whole body before it
  calls the app, so a request that declares a body over the limit and never sends it would wait forever,
  and uvicorn hands repeated ``Content-Type`` fields to the adapter, which joins them;
- the lifespan protocol, answered (asgiref raises on it);
- the WebSocket handshake, served to the WSGI app as the plain GET it arrived as: the Flask app refuses it
  itself (401 for a bad token, else 501 ``websocket_unsupported``), as it does on granian's WSGI interface,
  through ASGI's WebSocket denial response (asgiref raises on a WebSocket; a2wsgi closes it, which uvicorn
  sends as a 403 even for a good token);
- for asgiref, the server's ``send`` run in the request's own context. asgiref calls ``send`` through
  ``AsyncToSync`` from its worker thread, in a task that carries that thread's ``CurrentThreadExecutor``
  (a context variable). uvicorn's ``send`` resumes reading the keep-alive connection from there, so the
  transport, and with it the next request on that connection, inherits the executor after it has quit:
  asgiref 3.8-3.13 then answers 500 ("CurrentThreadExecutor already quit or is broken"; 3.8: "Single
  thread executor already being used") to 17-25 % of a keep-alive client's requests, even one at a
  time. The thread, its one-call limit and the adapter's code are unchanged.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, Literal

from a2wsgi import WSGIMiddleware
from asgiref.wsgi import WsgiToAsgi

from servers.asgi_gate import App, AsgiGate, Message, Receive, Scope, Send
from servers.limits import WS_POLICY_CLOSE_CODE

Adapter = Literal["asgiref", "a2wsgi"]
WS_DENIAL_EXTENSION = "websocket.http.response"


def wsgi_on_asgi(wsgi_app: Any, adapter: Adapter) -> App:
    """The WSGI app behind the named adapter, constructed with its defaults."""
    if adapter == "asgiref":
        return AsgiGate(_AdapterFront(WsgiToAsgi(wsgi_app), isolate_send=True))
    return AsgiGate(_AdapterFront(WSGIMiddleware(wsgi_app), isolate_send=False))


class _AdapterFront:
    def __init__(self, app: App, *, isolate_send: bool) -> None:
        self.app = app
        self.isolate_send = isolate_send

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "websocket":
            await _handshake_as_http(self.app, scope, receive, send)
        elif self.isolate_send:
            await self.app(scope, receive, _in_this_context(send))
        else:
            await self.app(scope, receive, send)


def _in_this_context(send: Send) -> Send:
    """``send``, run in a copy of the caller's context as it is now, whatever context the adapter
    later calls it from (why: the module docstring)."""
    context = contextvars.copy_context()

    async def send_in_context(message: Message) -> None:
        await asyncio.create_task(send(message), context=context)

    return send_in_context


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _handshake_as_http(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    if WS_DENIAL_EXTENSION not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": WS_POLICY_CLOSE_CODE})  # the server answers 403
        return
    http_scope = {
        **scope,
        "type": "http",
        "method": "GET",
        "scheme": "https" if scope.get("scheme") == "wss" else "http",
        "http_version": scope.get("http_version", "1.1"),
    }
    http_scope.pop("subprotocols", None)
    requested = False

    async def http_receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def denial_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            await send({**message, "type": "websocket.http.response.start"})
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            await send(
                {
                    "type": "websocket.http.response.body",
                    "body": body,
                    "more_body": bool(message.get("more_body")),
                }
            )

    await app(http_scope, http_receive, denial_send)
