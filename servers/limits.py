"""Size limits shared by the gate, both adapters and the server command lines (no heavy imports here)."""

from __future__ import annotations

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB: a 50,000-character text is at most 200 KB of UTF-8
MAX_WS_MESSAGE_BYTES = MAX_BODY_BYTES  # a larger chat message closes the WebSocket with 1009
WS_IDLE_CLOSE_CODE = 1000  # a normal closure, with the reason "idle timeout"
