"""Request and response models shared by both adapters (pydantic v2)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

AnalysisType = Literal["summary", "detailed", "entities"]
OutputFormat = Literal["json", "markdown"]
Severity = Literal["low", "medium", "high"]
JobState = Literal["queued", "running", "done", "failed"]
TEXT_MIN_CHARS = 10  # the article's validator: at least 10 meaningful characters, counted after stripping


def first_surrogate(value: str) -> int | None:
    """Where a lone surrogate (no Unicode scalar value: UTF-8 cannot encode it) sits, or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


class AnalyseRequest(BaseModel):
    """The article's request model: validated identically by FastAPI (natively) and Flask (by hand)."""

    text: str = Field(min_length=TEXT_MIN_CHARS, max_length=50_000)
    analysis_type: AnalysisType
    output_format: OutputFormat = "json"
    max_findings: int = Field(default=10, ge=1, le=50)

    @field_validator("text")
    @classmethod
    def _meaningful(cls, value: str) -> str:
        at = first_surrogate(value)
        if at is not None:
            raise PydanticCustomError(
                "string_unicode",
                "Input should be valid Unicode: lone surrogate U+{code} at character {position}",
                {"code": f"{ord(value[at]):04X}", "position": at},
            )
        stripped = value.strip()
        if not stripped:
            raise ValueError("text must not be blank")
        if len(stripped) < TEXT_MIN_CHARS:
            raise PydanticCustomError(
                "string_too_short",
                "String should have at least {min_length} characters after stripping whitespace",
                {"min_length": TEXT_MIN_CHARS},
            )
        return stripped


class Finding(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str
    detail: str
    severity: Severity


class Analysis(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: str
    findings: list[Finding]


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int


class AnalyseResponse(BaseModel):
    analysis_type: AnalysisType
    output_format: OutputFormat
    summary: str
    findings: list[Finding]
    markdown: str | None = None
    model: str
    usage: Usage


class JobCreated(BaseModel):
    job_id: str
    status: JobState


class JobView(BaseModel):
    job_id: str
    status: JobState
    result: AnalyseResponse | None = None
    error: dict[str, object] | None = None


class ErrorBody(BaseModel):
    """Every non-422 error from either adapter: a machine code and a human sentence."""

    detail: str
    error: str
