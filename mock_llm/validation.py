"""Request validation with the real API's messages: every failure is a 400 ``invalid_request_error``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

# The real API's request size limit for the Messages API.
MAX_BODY_BYTES = 32 * 1024 * 1024
# Far deeper than any request (tool schemas included) nests, far shallower than the recursion of
# json.loads and of the mock's own json.dumps of the messages: deeper input is a 400, never a 500.
MAX_JSON_DEPTH = 128

# A run of JSON strings (with the bracket-free text between them), or (group 1) what follows the opening
# quote of one that never closes: possessive loops and an end that always matches make each attempt one
# pass, so the scan is linear in the body (the servers' gate screens the same way; the mock imports
# nothing from them).
_STRING = re.compile(
    rb'(?:"[^"\\]*+(?:\\.[^"\\]*+)*+"[^"\\\[\]{}]*+)++|"([^"\\]*+(?:\\.[^"\\]*+)*+\\?\Z)', re.DOTALL
)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DEPTH_STEP = [0] * 256
_DEPTH_STEP[ord("[")] = _DEPTH_STEP[ord("{")] = 1
_DEPTH_STEP[ord("]")] = _DEPTH_STEP[ord("}")] = -1


class InvalidRequest(Exception):
    """A request the real API would answer with 400 invalid_request_error; the message names the field."""


@dataclass(frozen=True, kw_only=True)
class MessagesRequest:
    model: str
    max_tokens: int
    messages: list[dict[str, Any]]
    system: Any
    stream: bool
    stop_sequences: list[str] | None


def too_deep(body: bytes) -> bool:
    """Whether arrays and objects nest deeper than MAX_JSON_DEPTH (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    outside = b"".join(filter(None, _STRING.split(body)))
    brackets = outside.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > MAX_JSON_DEPTH


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidRequest("request body is empty; expected a JSON object")
    if too_deep(body):
        raise InvalidRequest(f"request body: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # cannot happen below MAX_JSON_DEPTH; kept so it can never be a 500
        raise InvalidRequest(f"request body: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    return data


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_content(content: object, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content: Input should be a valid string or list of content blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequest(f"{where}.content.{i}: each content block must be an object with a 'type'")
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise InvalidRequest(f"{where}.content.{i}.text: Field required (a string)")


def _check_messages(messages: object) -> list[dict[str, Any]]:
    if messages is None:
        raise InvalidRequest("messages: Field required")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where}: Input should be an object")
        if message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"{where}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise InvalidRequest(f"{where}.content: Field required")
        _check_content(message["content"], where)
    return messages


def _check_system(system: object) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list) or not all(
        isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        for block in system
    ):
        raise InvalidRequest("system: Input should be a valid string or list of text blocks")


def _check_model(data: dict[str, Any]) -> str:
    model = data.get("model")
    if model is None:
        raise InvalidRequest("model: Field required")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Input should be a non-empty string")
    return model


def validate_messages(data: dict[str, Any]) -> MessagesRequest:
    model = _check_model(data)
    max_tokens = data.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequest("max_tokens: Field required")
    if not _is_int(max_tokens) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be an integer greater than or equal to 1")
    messages = _check_messages(data.get("messages"))
    system = data.get("system")
    _check_system(system)
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean")
    stop_sequences = data.get("stop_sequences")
    if stop_sequences is not None and (
        not isinstance(stop_sequences, list) or not all(isinstance(s, str) for s in stop_sequences)
    ):
        raise InvalidRequest("stop_sequences: Input should be a list of strings")
    for name in ("temperature", "top_p"):
        value = data.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise InvalidRequest(f"{name}: Input should be a number")
    return MessagesRequest(
        model=model,
        max_tokens=max_tokens,
        messages=messages,
        system=system,
        stream=stream,
        stop_sequences=stop_sequences,
    )


def validate_count_tokens(data: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    _check_model(data)
    messages = _check_messages(data.get("messages"))
    system = data.get("system")
    _check_system(system)
    return system, messages
