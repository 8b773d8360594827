"""``WS /ws/chat``: per message, time to the first frame and to the end-of-answer frame.

Closed loop: each user keeps one WebSocket open and sends its next message when the answer is done.
Open loop: each arrival opens its own connection (the connection time is then part of the latency).
"""

from __future__ import annotations

import json
import time
from typing import Any

from geventhttpclient import HTTPClient

from loadtests.scenarios.loadgen import BenchUser, Outcome, make_text
from loadtests.scenarios.wsclient import WebSocket

MESSAGE = make_text(200, 7)


class ChatUser(BenchUser):
    scenario = "chat"
    ws: WebSocket | None = None

    def _connect(self) -> WebSocket:
        return WebSocket(self.hostname, self.port, f"/ws/chat?token={self.token}", timeout=self.timeout)

    def call(self, http: HTTPClient, request_id: str) -> Outcome:
        started = time.perf_counter()
        if self.open_loop:
            ws = self._connect()
            try:
                return self._exchange(ws, started)
            finally:
                ws.close()
        if self.ws is None:
            self.ws = self._connect()
        try:
            return self._exchange(self.ws, started)
        except BaseException:
            self.ws.close()
            self.ws = None
            raise

    def _exchange(self, ws: WebSocket, started: float) -> Outcome:
        ws.send_text(MESSAGE)
        first: float | None = None
        frames = 0
        while True:
            _opcode, payload = ws.recv()
            if first is None:
                first = time.perf_counter() - started
            frames += 1
            if payload[:1] == b"{":
                done = _parse(payload)
                if done is not None and done.get("type") == "done":
                    elapsed = time.perf_counter() - started
                    return Outcome(status="200", ok=frames > 1, total_s=elapsed, first_s=first, n=frames - 1)
                if done is not None and done.get("type") == "error":
                    elapsed = time.perf_counter() - started
                    return Outcome(
                        status=str(done.get("status", "ws-error")),
                        ok=False,
                        total_s=elapsed,
                        first_s=first,
                        n=frames - 1,
                        error=str(done.get("detail", ""))[:80],
                    )

    def on_stop(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        super().on_stop()


def _parse(payload: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
