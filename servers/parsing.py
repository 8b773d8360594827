"""Turning the model's answer into the response model."""

from __future__ import annotations

import json

from pydantic import ValidationError

from servers.errors import ApiError
from servers.models import AnalyseRequest, AnalyseResponse, Analysis, Usage


def _extract_object(text: str) -> str:
    """The outermost {...} of the answer: models sometimes wrap JSON in prose or code fences."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the answer")
    return text[start : end + 1]


def parse_analysis(text: str) -> Analysis:
    try:
        return Analysis.model_validate(json.loads(_extract_object(text)))
    except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
        raise ApiError(
            status=502,
            error="upstream_bad_answer",
            detail=f"The model's answer was not the expected JSON: {exc}",
        ) from None


def render_markdown(analysis: Analysis) -> str:
    lines = ["## Summary", "", analysis.summary, "", "## Findings", ""]
    lines += [f"- **{f.title}** ({f.severity}): {f.detail}" for f in analysis.findings]
    return "\n".join(lines) + "\n"


def build_response(
    req: AnalyseRequest, *, text: str, model: str, input_tokens: int, output_tokens: int
) -> AnalyseResponse:
    analysis = parse_analysis(text)
    findings = analysis.findings[: req.max_findings]
    trimmed = Analysis(summary=analysis.summary, findings=findings)
    return AnalyseResponse(
        analysis_type=req.analysis_type,
        output_format=req.output_format,
        summary=analysis.summary,
        findings=findings,
        markdown=render_markdown(trimmed) if req.output_format == "markdown" else None,
        model=model,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
    )
