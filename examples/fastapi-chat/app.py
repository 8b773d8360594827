"""A FastAPI service with AsyncAnthropic and an endpoint shape of its own (a chat turn, and the same turn
streamed). It reads its own API key header; the harness's bearer token reaches it through the target file.
The SDK reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY from the environment."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import anthropic
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

app = FastAPI(title="support-chat")
client = anthropic.AsyncAnthropic()
KEYS = set(os.environ.get("CHAT_API_KEYS", "dev-key").split(","))


class Turn(BaseModel):
    conversation_id: str = Field(min_length=1, max_length=64)
    message: str = Field(min_length=1, max_length=8000)


def _check(key: str | None) -> None:
    if key not in KEYS:
        raise HTTPException(status_code=401, detail="bad api key")


@app.get("/status")
async def status() -> dict[str, str]:
    return {"status": "up"}


@app.post("/chat/turn")
async def turn(body: Turn, x_api_key: str | None = Header(default=None)) -> dict[str, object]:
    _check(x_api_key)
    message = await client.messages.create(
        model="claude-sonnet-5-5",
        max_tokens=400,
        messages=[{"role": "user", "content": body.message}],
    )
    reply = "".join(block.text for block in message.content if block.type == "text")
    return {"conversation_id": body.conversation_id, "reply": reply}


@app.post("/chat/turn/stream")
async def turn_stream(body: Turn, x_api_key: str | None = Header(default=None)) -> StreamingResponse:
    _check(x_api_key)

    async def pieces() -> AsyncIterator[str]:
        async with client.messages.stream(
            model="claude-sonnet-5-5",
            max_tokens=400,
            messages=[{"role": "user", "content": body.message}],
        ) as stream:
            async for text in stream.text_stream:
                yield text

    return StreamingResponse(pieces(), media_type="text/plain")
