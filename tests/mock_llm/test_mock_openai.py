"""The official openai SDK against a real mock process, unchanged: Chat Completions and Responses, sync,
async and streamed, errors and retries, limits, and the per-call records the harness joins on."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import openai
import pytest
from mockkit import FAST_SCALE, Mock, messages_body, openai_client, running_mock, sdk_client

MODEL = "gpt-any-model-2026"  # any name is accepted and echoed
SYSTEM = "You review code."
QUESTION = "Why do LLM endpoints need async servers?"
CHAT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
OPENAI_HEADERS = {"authorization": "Bearer k", "content-type": "application/json"}


def chat_text(mock: Mock, **options: object) -> str:
    completion = openai_client(mock.base_url).chat.completions.create(model=MODEL, messages=CHAT, **options)
    return str(completion.choices[0].message.content)


def test_chat_sync_round_trip_after_the_profile_delay(mock: Mock) -> None:
    started = time.perf_counter()
    completion = openai_client(mock.base_url).chat.completions.create(model=MODEL, messages=CHAT)
    assert time.perf_counter() - started >= 2.0 * FAST_SCALE * 0.95
    assert completion.id.startswith("chatcmpl-") and completion.model == MODEL
    assert completion.object == "chat.completion"
    (choice,) = completion.choices
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.startswith("## ")
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_and_messages_give_the_same_words_for_the_same_conversation(mock: Mock) -> None:
    # One content model behind both APIs: the system prompt's "JSON" asks for the same findings object.
    system = "Answer with a JSON object only."
    chat = openai_client(mock.base_url).chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": system}, {"role": "user", "content": QUESTION}]
    )
    message = sdk_client(mock.base_url).messages.create(
        model=MODEL, max_tokens=4096, system=system, messages=[{"role": "user", "content": QUESTION}]
    )
    assert chat.choices[0].message.content == message.content[0].text
    assert 3 <= len(json.loads(str(chat.choices[0].message.content))["findings"]) <= 12


def test_chat_max_tokens_and_stop(mock: Mock) -> None:
    sdk = openai_client(mock.base_url)
    cut = sdk.chat.completions.create(model=MODEL, messages=CHAT, max_completion_tokens=5)
    assert cut.choices[0].finish_reason == "length" and cut.usage and cut.usage.completion_tokens == 5
    full = chat_text(mock)
    stop = full.split()[3]
    stopped = sdk.chat.completions.create(model=MODEL, messages=CHAT, stop=[stop])
    assert stopped.choices[0].message.content == full[: full.index(stop)]


def test_async_chat_calls_run_concurrently(mock: Mock) -> None:
    async def run() -> list[str]:
        async with openai.AsyncOpenAI(base_url=mock.base_url + "/v1", api_key="k") as sdk:
            calls = [sdk.chat.completions.create(model=MODEL, messages=CHAT) for _ in range(20)]
            return [c.id for c in await asyncio.gather(*calls)]

    mock.reset()
    started = time.perf_counter()
    ids = asyncio.run(run())
    assert len(set(ids)) == 20 and time.perf_counter() - started < 20 * 2.0 * FAST_SCALE
    stats = mock.stats()
    assert stats["requests"] == 20 and stats["by_status"] == {"200": 20} and stats["peak_in_flight"] >= 2


def test_chat_stream_chunks_end_with_usage_and_done(mock: Mock) -> None:
    sdk = openai_client(mock.base_url)
    options = {"stream_options": {"include_usage": True}}
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=CHAT, stream=True, **options))
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == chat_text(mock) and len(chunks) > 4
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    again = list(sdk.chat.completions.create(model=MODEL, messages=CHAT, stream=True))
    assert again[0].id != chunks[0].id and again[-1].usage is None  # no usage chunk unless asked
    body = {"model": MODEL, "messages": CHAT, "stream": True}
    raw = mock.request("POST", "/v1/chat/completions", body=body, headers=OPENAI_HEADERS)
    assert raw.headers["content-type"].startswith("text/event-stream") and raw.body.endswith(
        b"data: [DONE]\n\n"
    )
    assert raw.headers["x-request-id"].startswith("req_") and "x-ratelimit-remaining-requests" in raw.headers


def test_chat_stream_helper_and_final_completion(mock: Mock) -> None:
    with openai_client(mock.base_url).chat.completions.stream(model=MODEL, messages=CHAT) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert len(deltas) >= 2 and "".join(deltas) == final.choices[0].message.content == chat_text(mock)


def test_responses_round_trip_and_incomplete_when_capped(mock: Mock) -> None:
    sdk = openai_client(mock.base_url)
    response = sdk.responses.create(model=MODEL, instructions=SYSTEM, input=QUESTION)
    assert response.id.startswith("resp_") and response.model == MODEL and response.status == "completed"
    assert response.output_text == chat_text(mock)  # instructions play the system prompt's part
    assert response.usage and response.usage.output_tokens > 0 and response.instructions == SYSTEM
    capped = sdk.responses.create(model=MODEL, instructions=SYSTEM, input=QUESTION, max_output_tokens=16)
    assert capped.status == "incomplete" and capped.incomplete_details
    assert capped.incomplete_details.reason == "max_output_tokens" and capped.usage
    assert capped.usage.output_tokens == 16
    listed = sdk.responses.create(model=MODEL, input=[{"role": "user", "content": QUESTION}])
    assert listed.output_text


def test_responses_stream_follows_the_documented_event_sequence(mock: Mock) -> None:
    sdk = openai_client(mock.base_url)
    events = list(sdk.responses.create(model=MODEL, instructions=SYSTEM, input=QUESTION, stream=True))
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert len(kinds) >= 10 and set(kinds[4:-4]) == {"response.output_text.delta"}  # two deltas or more
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events[4:-4])  # type: ignore[union-attr]
    completed = events[-1].response  # type: ignore[union-attr]
    assert text == completed.output_text == chat_text(mock)
    assert {events[0].response.id, completed.id} == {completed.id}  # type: ignore[union-attr]


def test_async_responses_stream_helper(mock: Mock) -> None:
    async def run() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=mock.base_url + "/v1", api_key="k") as sdk:
            async with sdk.responses.stream(model=MODEL, instructions=SYSTEM, input=QUESTION) as stream:
                text = "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])
                final = await stream.get_final_response()
            return text, final.output_text

    text, final = asyncio.run(run())
    assert text == final == chat_text(mock)


@pytest.mark.parametrize(
    ("fault", "error_class", "status"),
    [("529", openai.InternalServerError, 503), ("500", openai.InternalServerError, 500)],
)
def test_forced_faults_raise_the_sdk_exception(
    mock: Mock, fault: str, error_class: type[openai.APIStatusError], status: int
) -> None:
    sdk = openai_client(mock.base_url, max_retries=0)
    with pytest.raises(error_class) as caught:
        sdk.chat.completions.create(model=MODEL, messages=CHAT, extra_headers={"x-mock-fault": fault})
    assert caught.value.status_code == status and caught.value.request_id
    assert caught.value.body["type"] == "server_error"  # type: ignore[index]


def test_the_sdk_retries_a_429_honouring_retry_after_ms(mock: Mock) -> None:
    mock.reset()
    headers = {"x-mock-fault": "429", "x-mock-fault-times": "1", "x-mock-fault-key": uuid.uuid4().hex}
    started = time.perf_counter()
    response = openai_client(mock.base_url, max_retries=2).responses.create(
        model=MODEL, input=QUESTION, extra_headers=headers
    )
    assert response.output_text and time.perf_counter() - started < 0.45  # 50 ms, not its 0.5 s backoff
    stats = mock.stats()
    assert stats["by_status"] == {"200": 1, "429": 1} and stats["retries_seen"] == 1


def test_bad_requests_and_keys_get_openais_envelope(mock: Mock, keyed_mock: Mock) -> None:
    sdk = openai_client(mock.base_url, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=MODEL, messages=[])
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert "messages" in caught.value.message
    with pytest.raises(openai.BadRequestError, match="max_output_tokens"):
        sdk.responses.create(model=MODEL, input=QUESTION, max_output_tokens=3)
    with pytest.raises(openai.AuthenticationError) as refused:
        openai_client(keyed_mock.base_url, api_key="wrong", max_retries=0).responses.create(
            model=MODEL, input=QUESTION
        )
    assert refused.value.code == "invalid_api_key"
    assert openai_client(keyed_mock.base_url, api_key="secret").responses.create(model=MODEL, input="hi")


def test_a_stream_error_midway_raises_or_shows_as_an_error_event(mock: Mock) -> None:
    sdk = openai_client(mock.base_url, max_retries=0)
    fault = {"x-mock-fault": "stream_error"}
    received: list[str] = []
    with pytest.raises(openai.APIError, match="Overloaded"):
        for chunk in sdk.chat.completions.create(
            model=MODEL, messages=CHAT, stream=True, extra_headers=fault
        ):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received)  # some text came before the error
    events = list(sdk.responses.create(model=MODEL, input=QUESTION, stream=True, extra_headers=fault))
    assert events[-1].type == "error" and "response.completed" not in [e.type for e in events]


def test_calls_are_recorded_under_their_x_request_id(mock: Mock) -> None:
    since = mock.request("GET", "/mock/gauge").json()["now"]
    sdk = openai_client(mock.base_url)
    sdk.chat.completions.create(model=MODEL, messages=CHAT, extra_headers={"x-request-id": "join-chat"})
    list(sdk.responses.create(model=MODEL, input="hi", stream=True, extra_headers={"x-request-id": "join-r"}))
    calls = mock.request("GET", f"/mock/calls?since={since}").json()["calls"]
    ended = {rid: (end - arrival, status) for rid, arrival, end, status in calls}
    assert ended["join-chat"][1] == "200" and ended["join-chat"][0] >= 2.0 * FAST_SCALE * 0.95
    assert ended["join-r"][1] == "200"


def test_openai_endpoints_share_the_limits_with_their_own_headers(mock_log_dir: Path) -> None:
    flags = ("--profile", "instant", "--rpm", "3", "--time-scale", "2")  # a 120 s minute: 1 per 40 s
    with running_mock(mock_log_dir, "mock-openai-limits", *flags) as limited:
        sdk = openai_client(limited.base_url, max_retries=0)
        left = []
        for _ in range(2):
            raw = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=CHAT)
            left.append(raw.headers["x-ratelimit-remaining-requests"])
        assert limited.request("POST", "/v1/messages", body=messages_body(), headers={
            "x-api-key": "k", "anthropic-version": "2023-06-01"}).status == 200  # fmt: skip
        assert left == ["2", "1"] and raw.headers["x-ratelimit-limit-requests"] == "3"
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.responses.create(model=MODEL, input=QUESTION)
        assert caught.value.code == "rate_limit_exceeded" and caught.value.type == "requests"
        assert 30 <= int(caught.value.response.headers["retry-after"]) <= 40
        assert limited.stats()["limits"]["rate_limited"]["requests"] == 1
