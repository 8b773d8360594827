"""Size limits shared by the gate, both adapters and the server command lines (no heavy imports here)."""

from __future__ import annotations

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB: a 50,000-character text is at most 200 KB of UTF-8
MAX_WS_MESSAGE_BYTES = MAX_BODY_BYTES  # a larger chat message closes the WebSocket with 1009
WS_IDLE_CLOSE_CODE = 1000  # a normal closure, with the reason "idle timeout"
WS_TOO_BIG_CLOSE_CODE = 1009  # RFC 6455: message too big
WS_POLICY_CLOSE_CODE = 1008  # RFC 6455: policy violation (a refused handshake, where no 401 can be sent)


def ws_message_too_big(message: str | bytes) -> bool:
    """Whether a whole chat message is over the limit, counted in UTF-8 bytes as the servers count it
    (encoded only when it could be: at most 4 bytes a character)."""
    if isinstance(message, bytes):
        return len(message) > MAX_WS_MESSAGE_BYTES
    if len(message) * 4 <= MAX_WS_MESSAGE_BYTES:
        return False
    return len(message.encode("utf-8", "surrogatepass")) > MAX_WS_MESSAGE_BYTES
