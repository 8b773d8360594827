"""gunicorn's own protocol errors (a repeated Content-Type, an over-long request line) in the JSON
error shape every other answer has, instead of its HTML page: a client parses one kind of error body."""

from __future__ import annotations

import socket

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
