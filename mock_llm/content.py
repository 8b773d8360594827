"""What the mock says: deterministic text for a given request and seed.

When the system prompt contains the word "JSON", the answer is exactly one JSON object of this shape::

    {"summary": str,
     "findings": [{"title": str, "detail": str, "severity": "low" | "medium" | "high"}, ...]}

with between 3 and 12 findings, the count chosen deterministically from the request. Otherwise the answer is
markdown-ish prose (a heading and a few paragraphs). Either way it stays well under 1,024 tokens
(about 250-650 tokens at ~4 characters per token), then ``max_tokens`` and ``stop_sequences`` cut it like
the real API.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4
MIN_FINDINGS = 3
MAX_FINDINGS = 12


def _word_list(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS = _word_list(
    "latency throughput request worker thread event loop queue upstream model token stream response "
    "client server process memory cache socket timeout retry budget window percentile tail burst "
    "connection pool handler endpoint payload schema validation error metric trace signal backlog "
    "concurrency scheduler blocking async await sync gateway proxy load balancer benchmark baseline "
    "capacity ceiling saturation contention lock buffer frame chunk header body status limit rate"
)
_ADJECTIVES = _word_list(
    "slow fast stable noisy hidden steady bounded unbounded shared idle busy cold warm partial early late "
    "large small steady critical minor"
)
_SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True, kw_only=True)
class Completion:
    text: str
    stop_reason: str  # end_turn | max_tokens | stop_sequence
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int


def count_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def text_of(content: Any) -> str:
    """The text of a message's content (a string, or a list of blocks whose text blocks count)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
    return "\n".join(parts)


def input_tokens(*, system: Any, messages: list[dict[str, Any]]) -> int:
    """Plausible input token count: ~4 characters per token plus a small per-message overhead."""
    total = count_tokens(text_of(system)) if system is not None else 0
    for message in messages:
        total += 4 + count_tokens(text_of(message.get("content")))
    return max(total, 1)


def _digest(*, seed: int, model: str, system: Any, messages: list[dict[str, Any]]) -> bytes:
    canonical = json.dumps([seed, model, system, messages], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


def _sentence(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(_ADJECTIVES) if i % 3 == 1 else rng.choice(_WORDS) for i in range(n_words)]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def _build_pool() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Sentences and titles made once at import: an answer only picks from them (fast, deterministic)."""
    rng = random.Random("mock_llm.content")
    sentences = tuple(_sentence(rng, rng.randint(8, 14)) for _ in range(1024))
    titles = tuple(
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 5))).capitalize() for _ in range(512)
    )
    return sentences, titles


_SENTENCES, _TITLES = _build_pool()


def _paragraph(rng: random.Random, n_sentences: int) -> str:
    return " ".join(rng.choices(_SENTENCES, k=n_sentences))


def findings_count(digest: bytes) -> int:
    return MIN_FINDINGS + digest[0] % (MAX_FINDINGS - MIN_FINDINGS + 1)


def json_answer(rng: random.Random, n_findings: int) -> str:
    findings = [
        {
            "title": rng.choice(_TITLES),
            "detail": _paragraph(rng, rng.randint(1, 2)),
            "severity": rng.choice(_SEVERITIES),
        }
        for _ in range(n_findings)
    ]
    return json.dumps({"summary": _paragraph(rng, 2), "findings": findings})


def prose_answer(rng: random.Random) -> str:
    heading = "## " + rng.choice(_TITLES)
    paragraphs = [_paragraph(rng, rng.randint(3, 5)) for _ in range(rng.randint(2, 4))]
    return "\n\n".join([heading, *paragraphs])


def wants_json(system: Any) -> bool:
    return system is not None and "JSON" in text_of(system)


def complete(
    *,
    seed: int,
    model: str,
    system: Any,
    messages: list[dict[str, Any]],
    max_tokens: int,
    stop_sequences: list[str] | None = None,
) -> Completion:
    """The answer to one (already validated) request: the same input and seed give the same answer."""
    digest = _digest(seed=seed, model=model, system=system, messages=messages)
    rng = random.Random(digest)
    text = json_answer(rng, findings_count(digest)) if wants_json(system) else prose_answer(rng)
    stop_reason, stop_sequence = "end_turn", None
    if stop_sequences:
        hits = [(text.find(s), s) for s in stop_sequences if s and s in text]
        if hits:
            index, stop_sequence = min(hits)
            text, stop_reason = text[:index], "stop_sequence"
    if count_tokens(text) > max_tokens:
        text, stop_reason, stop_sequence = text[: max_tokens * CHARS_PER_TOKEN], "max_tokens", None
    return Completion(
        text=text,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        input_tokens=input_tokens(system=system, messages=messages),
        output_tokens=max(count_tokens(text), 1),
    )


def split_pieces(text: str) -> list[str]:
    """Cut text into word-sized pieces (each keeps its trailing whitespace) that streams group into deltas."""
    pieces: list[str] = []
    start = 0
    length = len(text)
    while start < length:
        end = text.find(" ", start)
        end = length if end < 0 else end + 1
        pieces.append(text[start:end])
        start = end
    return pieces
