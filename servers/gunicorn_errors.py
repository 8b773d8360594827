"""gunicorn's own protocol errors (a repeated Content-Type, an over-long request line) in the JSON
error shape every other answer has, instead of its HTML page: a client parses one kind of error body."""

from __future__ import annotations

import socket
from typing import Any

from servers.errors import ApiError, http_error

_CODES = {403: "forbidden", 414: "uri_too_long", 431: "headers_too_large"}


def _write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    from gunicorn import util

    code = _CODES.get(status_int) or http_error(status_int).error
    body = ApiError(status=status_int, error=code, detail=f"{reason}: {mesg}" if mesg else reason).body()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    """Replace gunicorn.util.write_error (called by every worker class as ``util.write_error``)."""
    from gunicorn import util

    util.write_error = _write_error


def install_asgi() -> None:
    """The same for gunicorn's asgi worker, whose protocol writes its own errors (text/plain) through
    ``ASGIProtocol._send_error_response``."""
    from gunicorn.asgi import protocol

    def send_error_response(
        self: protocol.ASGIProtocol, status: int, message: str, extra_headers: Any = ()
    ) -> None:
        reason = protocol._REASON_PHRASES.get(status) or "Error"
        code = _CODES.get(status) or http_error(status).error
        body = ApiError(
            status=status, error=code, detail=f"{reason}: {message}" if message else reason
        ).body()
        extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
        )
        self._safe_write(head.encode("latin-1") + body)

    protocol.ASGIProtocol._send_error_response = send_error_response  # type: ignore[method-assign]
