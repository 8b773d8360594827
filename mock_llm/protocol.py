"""The real API's wire format: headers, error envelopes, message bodies and SSE events, as bytes.

Bodies are built once per distinct request and cached, with only the ids filled in per call, so a call
costs the mock little more than the HTTP parsing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from mock_llm.content import Completion, split_pieces

JSON_TYPE = (b"content-type", b"application/json")
SSE_TYPE = (b"content-type", b"text/event-stream; charset=utf-8")
NO_CACHE = (b"cache-control", b"no-cache")

MODELS: tuple[tuple[str, str], ...] = (
    ("claude-opus-5-5", "Claude Opus 5.5"),
    ("claude-sonnet-5-5", "Claude Sonnet 5.5"),
    ("claude-haiku-5-5", "Claude Haiku 5.5"),
)
_MODELS_CREATED = "2025-10-01T00:00:00Z"
_ID_PLACEHOLDER = "msg_\x00"


class IdMaker:
    """Unique ``req_...`` and ``msg_...`` ids: a random per-process prefix and a counter (cheap)."""

    def __init__(self) -> None:
        self._prefix = "mock" + os.urandom(4).hex()
        self._n = 0

    def next(self) -> str:
        self._n += 1
        return f"{self._prefix}{self._n:010x}"


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    envelope = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    return json.dumps(envelope).encode()


def json_bytes(data: Any) -> bytes:
    return json.dumps(data).encode()


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _usage(completion: Completion, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": completion.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _split_on_id(payload: bytes) -> tuple[bytes, bytes]:
    marker = json.dumps(_ID_PLACEHOLDER).encode()[1:-1]
    prefix, suffix = payload.split(marker)
    return prefix, suffix


@dataclass(kw_only=True)
class Answer:
    """Everything about one distinct request's answer that does not change from call to call."""

    model: str
    streams: bool  # the request asked for stream: true
    completion: Completion
    message_prefix: bytes  # the non-streaming body up to the message id
    message_suffix: bytes
    start_prefix: bytes  # message_start + content_block_start + ping, up to the message id
    start_suffix: bytes
    finish: bytes  # content_block_stop + message_delta + message_stop
    pieces: list[str]
    _deltas: dict[tuple[int, ...], list[bytes]] = field(default_factory=dict)

    def held_bytes(self) -> int:
        """About what this answer keeps in memory: its wire pieces, the model name, and its text three times
        over (the completion, its pieces, a cached grouping of deltas)."""
        wire = (self.message_prefix, self.message_suffix, self.start_prefix, self.start_suffix, self.finish)
        return sum(map(len, wire)) + len(self.model) + 3 * len(self.completion.text)

    def message_body(self, message_id: str) -> bytes:
        """The non-streaming body; ``message_id`` is the whole id, ``msg_`` included."""
        return self.message_prefix + message_id.encode() + self.message_suffix

    def stream_start(self, message_id: str) -> bytes:
        return self.start_prefix + message_id.encode() + self.start_suffix

    # The interface mock_llm.app serves every endpoint's answers through (see openai_protocol too).
    id_prefix = "msg_"

    def stream_deltas(self, groups: list[int], call_id: str) -> list[bytes]:
        return self.deltas(groups)  # no id in a Messages delta: the cached events go out as they are

    def stream_finish(self, call_id: str, n_deltas: int) -> bytes:
        return self.finish

    def stream_error(self, n_sent: int) -> bytes:
        return STREAM_ERROR_EVENT

    def deltas(self, groups: list[int]) -> list[bytes]:
        """One ``content_block_delta`` event per group of pieces (cached per grouping)."""
        key = tuple(groups)
        cached = self._deltas.get(key)
        if cached is not None:
            return cached
        events: list[bytes] = []
        start = 0
        for size in groups:
            text = "".join(self.pieces[start : start + size])
            start += size
            event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
            events.append(sse("content_block_delta", event))
        if len(self._deltas) < 64:
            self._deltas[key] = events
        return events


def build_answer(*, model: str, streams: bool, completion: Completion) -> Answer:
    message = {
        "id": _ID_PLACEHOLDER,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": completion.text}],
        "stop_reason": completion.stop_reason,
        "stop_sequence": completion.stop_sequence,
        "usage": _usage(completion, completion.output_tokens),
    }
    message_prefix, message_suffix = _split_on_id(json.dumps(message).encode())
    started = dict(message, content=[], stop_reason=None, stop_sequence=None, usage=_usage(completion, 1))
    start = (
        sse("message_start", {"type": "message_start", "message": started})
        + sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        + sse("ping", {"type": "ping"})
    )
    start_prefix, start_suffix = _split_on_id(start)
    finish = (
        sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        + sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": completion.stop_reason, "stop_sequence": completion.stop_sequence},
                "usage": {"output_tokens": completion.output_tokens},
            },
        )
        + sse("message_stop", {"type": "message_stop"})
    )
    return Answer(
        model=model,
        streams=streams,
        completion=completion,
        message_prefix=message_prefix,
        message_suffix=message_suffix,
        start_prefix=start_prefix,
        start_suffix=start_suffix,
        finish=finish,
        pieces=split_pieces(completion.text),
    )


STREAM_ERROR_EVENT = sse(
    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
)


def models_page() -> bytes:
    data = [
        {"type": "model", "id": model_id, "display_name": name, "created_at": _MODELS_CREATED}
        for model_id, name in MODELS
    ]
    return json_bytes({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})


def model_info(model_id: str) -> bytes | None:
    for known_id, name in MODELS:
        if known_id == model_id:
            return json_bytes(
                {"type": "model", "id": known_id, "display_name": name, "created_at": _MODELS_CREATED}
            )
    return None
