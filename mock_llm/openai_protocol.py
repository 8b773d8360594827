"""The OpenAI wire format: Chat Completions and Responses bodies, stream chunks and events, the error
envelope, as bytes.

An answer is built once per distinct request and cached, like the Messages API's (mock_llm.protocol),
with the same interface, so the mock serves it with the same latency, faults and streaming code. Its
ids appear in every chunk or event, so the cached bytes hold a marker (``\\u0000`` in JSON) that each call
replaces with its own id: every chunk of one stream carries the same ``chatcmpl-...`` id, every event of
one response the same ``resp_...`` and ``msg_...``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from mock_llm.content import Completion, split_pieces
from mock_llm.openai_validation import OpenAIRequest

_MARK = "\x00"
_MARK_BYTES = json.dumps(_MARK).encode()[1:-1]
DONE = b"data: [DONE]\n\n"
# The mock's error kinds (the Messages API's names) as the OpenAI envelope types them: (type, code).
_ERRORS = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "permission_error": ("invalid_request_error", None),
    "not_found_error": ("invalid_request_error", "unknown_url"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("requests", "rate_limit_exceeded"),
    "rate_limit_tokens": ("tokens", "rate_limit_exceeded"),
    "overloaded_error": ("server_error", "overloaded"),
    "api_error": ("server_error", None),
}
# OpenAI answers an overloaded service with 503 (it has no 529).
OVERLOADED_STATUS = 503


def error_body(error_type: str, message: str) -> bytes:
    kind, code = _ERRORS.get(error_type, ("server_error", None))
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _event(payload: dict[str, Any]) -> bytes:
    return f"event: {payload['type']}\n".encode() + _data(payload)


def _fill(template: bytes, call_id: str) -> bytes:
    return template.replace(_MARK_BYTES, call_id.encode())


@dataclass(kw_only=True)
class _Answer:
    """What the two endpoints' answers share (the interface mock_llm.app serves)."""

    model: str
    streams: bool
    completion: Completion
    pieces: list[str]
    body: bytes  # the non-streaming body, ids marked
    start: bytes  # the stream's opening chunks or events, ids marked
    id_prefix = ""  # the templates carry their own prefixes
    _deltas: dict[tuple[int, ...], list[bytes]] = field(default_factory=dict)

    def held_bytes(self) -> int:
        return len(self.body) + len(self.start) + len(self.model) + 3 * len(self.completion.text)

    def message_body(self, call_id: str) -> bytes:
        return _fill(self.body, call_id)

    def stream_start(self, call_id: str) -> bytes:
        return _fill(self.start, call_id)

    def stream_deltas(self, groups: list[int], call_id: str) -> list[bytes]:
        key = tuple(groups)
        events = self._deltas.get(key)
        if events is None:
            events = []
            start = 0
            for index, size in enumerate(groups):
                events.append(self._delta("".join(self.pieces[start : start + size]), index))
                start += size
            if len(self._deltas) < 64:
                self._deltas[key] = events
        return [_fill(event, call_id) for event in events]

    def _delta(self, text: str, index: int) -> bytes:
        raise NotImplementedError


@dataclass(kw_only=True)
class ChatAnswer(_Answer):
    include_usage: bool
    chunk: dict[str, Any]  # the fields every chunk repeats

    def _delta(self, text: str, index: int) -> bytes:
        return _data(self.chunk | {"choices": [_choice({"content": text}, None)]})

    def stream_finish(self, call_id: str, n_deltas: int) -> bytes:
        reason = _finish_reason(self.completion)
        tail = _data(self.chunk | {"choices": [_choice({}, reason)]})
        if self.include_usage:
            tail += _data(self.chunk | {"choices": [], "usage": _chat_usage(self.completion)})
        return _fill(tail, call_id) + DONE

    def stream_error(self, n_sent: int) -> bytes:
        return _data(
            {"error": {"message": "Overloaded", "type": "server_error", "param": None, "code": None}}
        )


def _finish_reason(completion: Completion) -> str:
    return "length" if completion.stop_reason == "max_tokens" else "stop"


def _choice(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}


def _chat_usage(completion: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": completion.input_tokens,
        "completion_tokens": completion.output_tokens,
        "total_tokens": completion.input_tokens + completion.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def build_chat_answer(request: OpenAIRequest, completion: Completion) -> ChatAnswer:
    common = {
        "id": "chatcmpl-" + _MARK,
        "created": int(time.time()),
        "model": request.model,
        "service_tier": "default",
        "system_fingerprint": None,
    }
    message = {"role": "assistant", "content": completion.text, "refusal": None, "annotations": []}
    body = common | {
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(completion)}
        ],
        "usage": _chat_usage(completion),
    }
    chunk = common | {"object": "chat.completion.chunk"}
    if request.include_usage:
        chunk["usage"] = None  # every chunk but the last says it has no usage
    first = chunk | {"choices": [_choice({"role": "assistant", "content": "", "refusal": None}, None)]}
    return ChatAnswer(
        model=request.model,
        streams=request.stream,
        completion=completion,
        pieces=split_pieces(completion.text),
        body=json.dumps(body).encode(),
        start=_data(first),
        include_usage=request.include_usage,
        chunk=chunk,
    )


@dataclass(kw_only=True)
class ResponsesAnswer(_Answer):
    response: dict[str, Any]  # the completed response object, ids marked
    item: dict[str, Any]  # its message output item, completed
    # created, in_progress, output_item.added, content_part.added: deltas start at this sequence number
    first_delta = 4

    def _delta(self, text: str, index: int) -> bytes:
        return _event(
            {
                "type": "response.output_text.delta",
                "item_id": self.item["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": text,
                "logprobs": [],
                "sequence_number": self.first_delta + index,
            }
        )

    def stream_finish(self, call_id: str, n_deltas: int) -> bytes:
        seq = self.first_delta + n_deltas
        part = self.item["content"][0]
        where = {"item_id": self.item["id"], "output_index": 0, "content_index": 0}
        events = [
            {"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []},
            {"type": "response.content_part.done", **where, "part": part},
            {"type": "response.output_item.done", "output_index": 0, "item": self.item},
            {"type": "response.completed", "response": self.response},
        ]
        tail = b"".join(_event(e | {"sequence_number": seq + i}) for i, e in enumerate(events))
        return _fill(tail, call_id)

    def stream_error(self, n_sent: int) -> bytes:
        error = {"type": "error", "code": "server_error", "message": "Overloaded", "param": None}
        return _event(error | {"sequence_number": self.first_delta + n_sent})


def _responses_usage(completion: Completion) -> dict[str, Any]:
    return {
        "input_tokens": completion.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": completion.input_tokens + completion.output_tokens,
    }


def _response_object(request: OpenAIRequest, completion: Completion, item: dict[str, Any]) -> dict[str, Any]:
    cut = completion.stop_reason == "max_tokens"
    return {
        "id": "resp_" + _MARK,
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if cut else "completed",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_tokens_given,
        "model": request.model,
        "output": [item],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _responses_usage(completion),
        "metadata": {},
    }


def build_responses_answer(request: OpenAIRequest, completion: Completion) -> ResponsesAnswer:
    cut = completion.stop_reason == "max_tokens"
    part = {"type": "output_text", "text": completion.text, "annotations": [], "logprobs": []}
    item = {
        "id": "msg_" + _MARK,
        "type": "message",
        "status": "incomplete" if cut else "completed",
        "role": "assistant",
        "content": [part],
    }
    response = _response_object(request, completion, item)
    opening = response | {"status": "in_progress", "incomplete_details": None, "output": [], "usage": None}
    added = item | {"status": "in_progress", "content": []}
    where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    start = [
        {"type": "response.created", "response": opening},
        {"type": "response.in_progress", "response": opening},
        {"type": "response.output_item.added", "output_index": 0, "item": added},
        {"type": "response.content_part.added", **where, "part": part | {"text": ""}},
    ]
    return ResponsesAnswer(
        model=request.model,
        streams=request.stream,
        completion=completion,
        pieces=split_pieces(completion.text),
        body=json.dumps(response).encode(),
        start=b"".join(_event(e | {"sequence_number": i}) for i, e in enumerate(start)),
        response=response,
        item=item,
    )
