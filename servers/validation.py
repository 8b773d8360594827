"""Request validation with FastAPI's exact 422 ``detail`` shape, for the adapter that lacks it (Flask).

FastAPI validates the body natively; the Flask adapter calls :func:`validate_analyse_body`, which copies
FastAPI's rules (only application/json or +json bodies are parsed, with the stdlib json module as
Starlette does; an empty body is "missing"; other bodies are validated as raw bytes) so both answer
every input with the same status, ``loc``, ``msg``, ``type``, ``input`` and ``ctx``. Both adapters
render the list with :func:`jsonable_errors`.
"""

from __future__ import annotations

import email.message
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from servers.errors import ValidationFailed, http_error
from servers.models import AnalyseRequest, first_surrogate


def _text(value: str) -> str:
    """Lone surrogates (from ``\\ud800`` escapes or undecodable bytes) shown as escapes: UTF-8 has none."""
    if first_surrogate(value) is None:
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity: "nan", "inf", "-inf" as strings, never bare
    if isinstance(value, Mapping):
        return {_text(str(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, BaseException):
        return {}  # what FastAPI's jsonable_encoder makes of the exception in a value_error ctx
    if value is None or isinstance(value, int | float | bool):
        return value
    return _text(str(value))


def jsonable_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's rendering of validation errors: type, loc, msg, input and ctx (when present), no url."""
    out: list[dict[str, Any]] = []
    for err in errors:
        item: dict[str, Any] = {
            "type": err["type"],
            "loc": list(err["loc"]),
            "msg": _text(err["msg"]),
            "input": _jsonable(err.get("input")),
        }
        if "ctx" in err:
            item["ctx"] = _jsonable(err["ctx"])
        out.append(item)
    return out


def is_json_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


MISSING: Any = object()


def parse_body(body: bytes, content_type: str | None) -> Any:
    """Step 1, before auth as in FastAPI: JSON-decode a JSON body (422 json_invalid, 400 undecodable).

    Returns the decoded value, the raw bytes for a non-JSON content type, or MISSING for an empty body.
    """
    if not body:
        return MISSING
    if not is_json_content_type(content_type):
        return body
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            errors=[
                {
                    "type": "json_invalid",
                    "loc": ["body", exc.pos],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from None
    except ValueError:  # bytes that are no Unicode text: FastAPI answers 400
        raise http_error(400) from None


def validate_request(data: Any) -> AnalyseRequest:
    """Step 2, after auth: validate against the model with FastAPI's loc prefix and rendering."""
    if data is MISSING:
        raise ValidationFailed(
            errors=[{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
        )
    try:
        return AnalyseRequest.model_validate(data, from_attributes=True)  # as FastAPI validates bodies
    except ValidationError as exc:
        raise ValidationFailed(
            errors=jsonable_errors({**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False))
        ) from None
