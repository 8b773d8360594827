"""A FastAPI service built on the OpenAI SDK (AsyncOpenAI): a question answered through the Responses API,
and the same question streamed through Chat Completions. The SDK reads OPENAI_BASE_URL and OPENAI_API_KEY
from the environment, so the harness points it at the mock with no code change. Callers authenticate with
a bearer token of the app's own (ASSISTANT_TOKENS)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI
from pydantic import BaseModel, Field

app = FastAPI(title="openai-assistant")
client = AsyncOpenAI()
MODEL = os.environ.get("ASSISTANT_MODEL", "gpt-5-mini")
TOKENS = set(os.environ.get("ASSISTANT_TOKENS", "dev-token").split(","))
INSTRUCTIONS = "You are a careful finance assistant. Answer in a few short paragraphs."


class Question(BaseModel):
    question: str = Field(min_length=1, max_length=4000)


def _check(authorization: str | None) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or token not in TOKENS:
        raise HTTPException(status_code=401, detail="missing or unknown bearer token")


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@app.post("/ask")
async def ask(body: Question, authorization: str | None = Header(default=None)) -> dict[str, object]:
    _check(authorization)
    response = await client.responses.create(
        model=MODEL, instructions=INSTRUCTIONS, input=body.question, max_output_tokens=1024
    )
    tokens = response.usage.output_tokens if response.usage else None
    return {"answer": response.output_text, "status": response.status, "output_tokens": tokens}


@app.post("/ask/stream")
async def ask_stream(body: Question, authorization: str | None = Header(default=None)) -> StreamingResponse:
    _check(authorization)

    async def pieces() -> AsyncIterator[str]:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": body.question},
            ],
            max_completion_tokens=1024,
            stream=True,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    return StreamingResponse(pieces(), media_type="text/plain")
