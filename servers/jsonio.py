"""The one JSON renderer both adapters use, so neither framework wins or loses on its JSON library."""

from __future__ import annotations

from typing import Any

import pydantic_core
from pydantic import BaseModel

JSON_MEDIA_TYPE = "application/json"


def render(value: BaseModel | Any) -> bytes:
    """Compact UTF-8 JSON bytes for a model, dict, list or scalar (pydantic-core's Rust serializer)."""
    if isinstance(value, BaseModel):
        return value.__pydantic_serializer__.to_json(value, exclude_none=True)
    return pydantic_core.to_json(value)
