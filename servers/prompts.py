"""Building the Claude request from a validated analysis request or a chat message."""

from __future__ import annotations

from typing import Any

from servers.models import AnalyseRequest
from servers.settings import Settings
from servers.work import burn_cpu

_INSTRUCTIONS = {
    "summary": "Summarise the text and list its key points.",
    "detailed": "Analyse the text in depth: claims, evidence, weaknesses and risks.",
    "entities": "Extract the named entities (people, organisations, places, products) and their roles.",
}

# The word JSON matters: the mock (like a well-prompted Claude) then answers with exactly one JSON object.
ANALYSIS_SYSTEM = (
    "You are a careful analyst. Answer with exactly one JSON object and nothing else, of the form "
    '{"summary": str, "findings": [{"title": str, "detail": str, "severity": "low"|"medium"|"high"}]}.'
)
CHAT_SYSTEM = "You are a helpful assistant. Answer in plain prose."


def analysis_params(req: AnalyseRequest, settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``messages.create``/``messages.stream`` (anthropic 2.x: no temperature).

    Every adapter builds its request here, in its handler's thread of execution, so ``BENCH_WORK_MS``
    (the stand-in for real prompt building) costs every variant the same CPU in the same place."""
    burn_cpu(settings.work_ms)
    return {
        "model": settings.model,
        "max_tokens": settings.max_tokens,
        "system": ANALYSIS_SYSTEM,
        "messages": [
            {
                "role": "user",
                "content": (
                    f"{_INSTRUCTIONS[req.analysis_type]} Report at most {req.max_findings} findings.\n\n"
                    f"<text>\n{req.text}\n</text>"
                ),
            }
        ],
    }


def chat_params(message: str, settings: Settings) -> dict[str, Any]:
    burn_cpu(settings.work_ms)
    return {
        "model": settings.model,
        "max_tokens": settings.max_tokens,
        "system": CHAT_SYSTEM,
        "messages": [{"role": "user", "content": message}],
    }
