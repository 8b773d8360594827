"""Requests to the OpenAI-compatible endpoints, checked like the real API: a failure is a 400 whose message
names the field. Both endpoints come down to what the content model needs (system text, messages, a token
cap, stop sequences), so the mock answers them with the same words, latency and faults as /v1/messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mock_llm.content import text_of
from mock_llm.validation import InvalidRequest

# Without a token cap the real APIs generate up to the model's limit; the mock's answers stay far below
# this, and an output-token bucket is charged this much while the call runs (as for max_tokens).
DEFAULT_MAX_TOKENS = 4096
MIN_OUTPUT_TOKENS = 16  # the Responses API refuses a smaller max_output_tokens
_CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_INSTRUCTION_ROLES = ("system", "developer")


@dataclass(frozen=True, kw_only=True)
class OpenAIRequest:
    model: str
    system: str | None  # system/developer messages or instructions, joined
    messages: list[dict[str, Any]]  # {"role", "content"} of the conversation itself
    max_tokens: int  # the cap (DEFAULT_MAX_TOKENS when the request gives none)
    max_tokens_given: int | None
    stop_sequences: list[str] | None
    stream: bool
    include_usage: bool  # chat: stream_options.include_usage
    instructions: str | None  # responses: echoed in the response object


def _model(data: dict[str, Any]) -> str:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: you must provide a model parameter (a non-empty string)")
    return model


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name}: expected a boolean, got {type(value).__name__}")
    return value


def _cap(data: dict[str, Any], names: tuple[str, ...], minimum: int) -> int | None:
    for name in names:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise InvalidRequest(f"{name}: expected an integer of at least {minimum}, got {value!r}")
        return value
    return None


def _numbers(data: dict[str, Any], *names: str) -> None:
    for name in names:
        value = data.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise InvalidRequest(f"{name}: expected a number, got {value!r}")


def _content(content: object, where: str, *, optional: bool) -> str:
    if content is None and optional:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content: expected a string or a list of content parts")
    for i, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InvalidRequest(f"{where}.content[{i}]: each content part must be an object with a 'type'")
        if part["type"] in ("text", "input_text", "output_text") and not isinstance(part.get("text"), str):
            raise InvalidRequest(f"{where}.content[{i}].text: expected a string")
    return text_of(content)


def _stop(data: dict[str, Any]) -> list[str] | None:
    stop = data.get("stop")
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        return list(stop)
    raise InvalidRequest("stop: expected a string or a list of at most 4 strings")


def _split(turns: list[tuple[str, str]]) -> tuple[str | None, list[dict[str, Any]]]:
    system = [text for role, text in turns if role in _INSTRUCTION_ROLES]
    messages = [{"role": role, "content": text} for role, text in turns if role not in _INSTRUCTION_ROLES]
    return ("\n".join(system) if system else None), messages


def validate_chat(data: dict[str, Any]) -> OpenAIRequest:
    """``POST /v1/chat/completions``."""
    model = _model(data)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: expected a non-empty array of messages")
    turns = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in _CHAT_ROLES:
            raise InvalidRequest(f"{where}.role: expected one of {', '.join(_CHAT_ROLES)}")
        optional = message["role"] == "assistant"  # an assistant turn may carry only tool calls
        turns.append((message["role"], _content(message.get("content"), where, optional=optional)))
    if data.get("n") not in (None, 1):
        raise InvalidRequest("n: mock_llm answers with one choice (n = 1)")
    _numbers(data, "temperature", "top_p", "frequency_penalty", "presence_penalty")
    options = data.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("stream_options: expected an object")
    stream = _flag(data, "stream")
    if options is not None and not stream:
        raise InvalidRequest("stream_options: only allowed when stream is true")
    given = _cap(data, ("max_completion_tokens", "max_tokens"), 1)
    system, conversation = _split(turns)
    return OpenAIRequest(
        model=model,
        system=system,
        messages=conversation or [{"role": "user", "content": ""}],
        max_tokens=given or DEFAULT_MAX_TOKENS,
        max_tokens_given=given,
        stop_sequences=_stop(data),
        stream=stream,
        include_usage=_flag(options or {}, "include_usage"),
        instructions=None,
    )


def _input_turns(items: object) -> list[tuple[str, str]]:
    if isinstance(items, str):
        return [("user", items)]
    if not isinstance(items, list) or not items:
        raise InvalidRequest("input: expected a string or a non-empty array of input items")
    turns = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where}: expected an object")
        if item.get("type", "message") != "message":
            continue  # tool outputs and the like: accepted, no text of their own here
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise InvalidRequest(f"{where}.role: expected one of user, assistant, system, developer")
        turns.append((role, _content(item.get("content"), where, optional=False)))
    return turns


def validate_responses(data: dict[str, Any]) -> OpenAIRequest:
    """``POST /v1/responses`` (text output)."""
    model = _model(data)
    if "input" not in data:
        raise InvalidRequest("input: required (a string or an array of input items)")
    turns = _input_turns(data["input"])
    instructions = data.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("instructions: expected a string")
    _numbers(data, "temperature", "top_p")
    given = _cap(data, ("max_output_tokens",), MIN_OUTPUT_TOKENS)
    system, conversation = _split(([("system", instructions)] if instructions else []) + turns)
    return OpenAIRequest(
        model=model,
        system=system,
        messages=conversation or [{"role": "user", "content": ""}],
        max_tokens=given or DEFAULT_MAX_TOKENS,
        max_tokens_given=given,
        stop_sequences=None,
        stream=_flag(data, "stream"),
        include_usage=False,
        instructions=instructions,
    )
