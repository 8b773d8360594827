"""A small Flask service the way a product team might write it: the official SDK, synchronous, behind
gunicorn with threads. Nothing in it knows about the benchmark: the SDK reads ANTHROPIC_BASE_URL and
ANTHROPIC_API_KEY from the environment, and the harness points them at its mock."""

from __future__ import annotations

from typing import Any

import anthropic
from flask import Flask, jsonify, request

app = Flask(__name__)
client = anthropic.Anthropic()  # one client per worker process, shared by its threads


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.post("/v1/summarize")
def summarize() -> Any:
    payload = request.get_json(silent=True) or {}
    document = str(payload.get("document", "")).strip()
    if not document:
        return jsonify(error="document is required"), 400
    try:
        message = client.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=512,
            messages=[{"role": "user", "content": f"Summarise in three bullet points:\n\n{document}"}],
        )
    except anthropic.APIStatusError as exc:
        return jsonify(error="upstream error", status=exc.status_code), 502
    except anthropic.APIConnectionError:
        return jsonify(error="upstream unreachable"), 504
    text = "".join(block.text for block in message.content if block.type == "text")
    return jsonify(summary=text, tokens=message.usage.output_tokens)
