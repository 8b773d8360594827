"""uvicorn's HTTP protocol (httptools), handing it a WebSocket upgrade only for what can be a handshake.

uvicorn passes every request with ``Upgrade: websocket`` and ``Connection: upgrade`` to its WebSocket
protocol, whatever its method or body; the WebSocket parser (websockets' sans-I/O server) refuses a request
with a body and then sends nothing, so the connection hung until the client gave up (a POST with a body
stayed open past 120 s; without a body it got a plain-text 405). Here only a GET without a body is a
handshake; anything else stays an HTTP request, which the gate (:mod:`servers.asgi_gate`) answers with the
same JSON 400 as every other server.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from servers.gate import asks_for_websocket, has_body


class HandshakeOnlyHttpToolsProtocol(HttpToolsProtocol):
    def _could_be_handshake(self) -> bool:
        fields = {name.decode("latin-1"): value.decode("latin-1") for name, value in self.headers}
        return self.scope.get("method") == "GET" and not has_body(
            fields.get("content-length"), fields.get("transfer-encoding")
        )

    def _should_upgrade(self) -> bool:
        return super()._should_upgrade() and self._could_be_handshake()

    def _unsupported_upgrade_warning(self) -> None:
        fields = {name.decode("latin-1"): value.decode("latin-1") for name, value in self.headers}
        if asks_for_websocket(fields.get("upgrade"), fields.get("connection")):
            return  # refused by the gate as an HTTP request: nothing to warn about
        super()._unsupported_upgrade_warning()
