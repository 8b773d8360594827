"""The WebSocket client of the chat scenario (inside Locust, where gevent has patched ``socket``) and of the
sweep's contract check: websocket-client, behind the three calls they make.

websocket-client checks the handshake's accept key, reassembles continuation frames and answers pings; a
refused handshake and a close frame become ``ConnectionError`` so callers record them as failures.
"""

from __future__ import annotations

import contextlib

import websocket

CONNECT_TIMEOUT_S = 30.0


class WebSocket:
    """One connection: ``send_text``, ``recv`` (one whole message) and ``close``."""

    def __init__(self, host: str, port: int, path: str, *, timeout: float) -> None:
        try:
            # Never through a proxy (the target is on this machine or this network); no per-byte UTF-8
            # check in Python on every frame (load-generator CPU): the scenario parses what it needs.
            self.conn = websocket.create_connection(
                f"ws://{host}:{port}{path}",
                timeout=CONNECT_TIMEOUT_S,
                enable_multithread=False,
                http_no_proxy=["*"],
                skip_utf8_validation=True,
            )
        except websocket.WebSocketBadStatusException as exc:
            raise ConnectionError(f"websocket handshake refused: HTTP {exc.status_code}") from None
        except websocket.WebSocketException as exc:
            raise ConnectionError(f"websocket handshake failed: {exc}") from None
        self.conn.settimeout(timeout)
        self.status = "101"

    def send_text(self, text: str) -> None:
        try:
            self.conn.send(text)
        except websocket.WebSocketException as exc:
            raise ConnectionError(f"websocket send failed: {exc}") from None

    def recv(self) -> tuple[int, bytes]:
        """One whole message: (opcode, payload). A close frame raises."""
        try:
            opcode, payload = self.conn.recv_data()
        except websocket.WebSocketTimeoutException:
            raise TimeoutError("websocket: no frame within the timeout") from None
        except websocket.WebSocketException as exc:
            raise ConnectionError(f"websocket closed: {exc}") from None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise ConnectionError("websocket closed by the server")
        return opcode, payload if isinstance(payload, bytes) else payload.encode()

    def close(self) -> None:
        # close() waits for the server's reply, and returns at once without closing the socket once the
        # server closed first: shut it down either way.
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self.conn.close(timeout=0.2)
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self.conn.shutdown()
