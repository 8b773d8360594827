"""The official anthropic SDK against a real mock process: calls, streams, errors, retries, faults."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import anthropic
import pytest
from mockkit import FAST_SCALE, Mock, sdk_client

MODEL = "claude-haiku-5-5"
USER = [{"role": "user", "content": "Why do LLM endpoints need async servers?"}]


def client(mock: Mock, **options: object) -> anthropic.Anthropic:
    return sdk_client(mock.base_url, **options)  # type: ignore[no-any-return]


def test_sync_create_returns_a_real_message_after_the_profile_delay(mock: Mock) -> None:
    started = time.perf_counter()
    message = client(mock).messages.create(model=MODEL, max_tokens=1024, messages=USER)
    elapsed = time.perf_counter() - started
    assert elapsed >= 2.0 * FAST_SCALE * 0.95
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == MODEL and message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.content[0].type == "text" and message.content[0].text.startswith("## ")
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens < 1024


def test_json_system_prompt_gives_parseable_findings_deterministically(mock: Mock) -> None:
    sdk = client(mock)
    system = "You are an analyst. Answer with a JSON object only."
    first = sdk.messages.create(model=MODEL, max_tokens=1024, system=system, messages=USER)
    again = sdk.messages.create(model=MODEL, max_tokens=1024, system=system, messages=USER)
    data = json.loads(first.content[0].text)
    assert 3 <= len(data["findings"]) <= 12 and isinstance(data["summary"], str)
    assert first.content[0].text == again.content[0].text and first.id != again.id


def test_max_tokens_and_stop_sequences(mock: Mock) -> None:
    sdk = client(mock)
    cut = sdk.messages.create(model=MODEL, max_tokens=5, messages=USER)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 5
    full = sdk.messages.create(model=MODEL, max_tokens=1024, messages=USER).content[0].text
    stop = full.split()[3]
    stopped = sdk.messages.create(model=MODEL, max_tokens=1024, messages=USER, stop_sequences=[stop])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == stop
    assert stopped.content[0].text == full[: full.index(stop)]


def test_async_client_runs_calls_concurrently(mock: Mock) -> None:
    async def run() -> list[anthropic.types.Message]:
        async with anthropic.AsyncAnthropic(base_url=mock.base_url, api_key="test-key") as sdk:
            calls = [sdk.messages.create(model=MODEL, max_tokens=1024, messages=USER) for _ in range(20)]
            return list(await asyncio.gather(*calls))

    mock.reset()
    started = time.perf_counter()
    messages = asyncio.run(run())
    elapsed = time.perf_counter() - started
    assert len({m.content[0].text for m in messages}) == 1 and len({m.id for m in messages}) == 20
    stats = mock.stats()
    assert stats["requests"] == 20 and stats["by_status"] == {"200": 20}
    assert stats["peak_in_flight"] >= 2  # concurrent, not serialised (loose: the machine is shared)
    assert elapsed < 20 * 2.0 * FAST_SCALE


def test_messages_stream_text_and_final_message(mock: Mock) -> None:
    with client(mock).messages.stream(model=MODEL, max_tokens=1024, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) >= 2
    assert "".join(pieces) == final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0 and final.id.startswith("msg_")


def test_stream_true_event_order(mock: Mock) -> None:
    events = list(client(mock).messages.create(model=MODEL, max_tokens=1024, messages=USER, stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = kinds[2:-3]
    assert deltas and set(deltas) == {"content_block_delta"}  # the SDK drops ping itself
    assert all(event.delta.type == "text_delta" for event in events[2:-3])  # type: ignore[union-attr]
    message_delta = events[-2]
    text = "".join(event.delta.text for event in events[2:-3])  # type: ignore[union-attr]
    assert message_delta.usage.output_tokens == -(-len(text) // 4)  # type: ignore[union-attr]
    assert message_delta.delta.stop_reason == "end_turn"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fault", "error_class", "status"),
    [
        ("429", anthropic.RateLimitError, 429),
        ("529", anthropic.OverloadedError, 529),
        ("500", anthropic.InternalServerError, 500),
    ],
)
def test_forced_faults_raise_the_sdk_exception(
    mock: Mock, fault: str, error_class: type[anthropic.APIStatusError], status: int
) -> None:
    sdk = client(mock, max_retries=0)
    with pytest.raises(error_class) as caught:
        sdk.messages.create(model=MODEL, max_tokens=10, messages=USER, extra_headers={"x-mock-fault": fault})
    assert caught.value.status_code == status
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")
    if fault == "529":
        assert isinstance(caught.value, anthropic.InternalServerError)  # OverloadedError subclasses it
    if fault == "429":
        assert caught.value.response.headers["retry-after-ms"] == str(round(1000 * FAST_SCALE))
        assert caught.value.response.headers["retry-after"] == "1"


def test_bad_request_raises_bad_request_error(mock: Mock) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(mock, max_retries=0).messages.create(model=MODEL, max_tokens=10, messages=[])
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "at least one message" in caught.value.message


def test_sdk_retries_a_429_honouring_retry_after_ms(mock: Mock) -> None:
    mock.reset()
    headers = {"x-mock-fault": "429", "x-mock-fault-times": "1", "x-mock-fault-key": uuid.uuid4().hex}
    started = time.perf_counter()
    message = client(mock, max_retries=2).messages.create(
        model=MODEL, max_tokens=10, messages=USER, extra_headers=headers
    )
    elapsed = time.perf_counter() - started
    assert message.stop_reason == "max_tokens"
    stats = mock.stats()
    assert stats["requests"] == 2 and stats["by_status"] == {"200": 1, "429": 1}
    assert stats["retries_seen"] == 1  # the retry carried x-stainless-retry-count: 1
    # retry-after-ms is 50 ms here: the SDK's own backoff (0.5 s or more) would take far longer.
    assert elapsed < 0.45


def test_sdk_gives_up_after_max_retries(mock: Mock) -> None:
    mock.reset()
    headers = {"x-mock-fault": "529", "x-mock-fault-times": "5", "x-mock-fault-key": uuid.uuid4().hex}
    with pytest.raises(anthropic.OverloadedError):  # 529 has no retry-after: one SDK backoff of ~0.5 s
        client(mock, max_retries=1).messages.create(
            model=MODEL, max_tokens=10, messages=USER, extra_headers=headers
        )
    stats = mock.stats()
    assert stats["requests"] == 2 and stats["retries_seen"] == 1 and stats["by_status"] == {"529": 2}


def test_mid_stream_error_raises(mock: Mock) -> None:
    sdk = client(mock, max_retries=0)
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        sdk.messages.stream(
            model=MODEL, max_tokens=1024, messages=USER, extra_headers={"x-mock-fault": "stream_error"}
        ) as stream,
    ):
        received.extend(stream.text_stream)
    assert received  # some text arrived before the error


def test_stall_is_ended_by_the_client_timeout(mock: Mock) -> None:
    mock.reset()
    sdk = client(mock, max_retries=0, timeout=0.5)
    started = time.perf_counter()
    with pytest.raises(anthropic.APITimeoutError):
        sdk.messages.create(
            model=MODEL, max_tokens=10, messages=USER, extra_headers={"x-mock-fault": "stall"}
        )
    assert time.perf_counter() - started < 5.0
    deadline = time.monotonic() + 5.0
    while mock.stats()["in_flight"] != 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = mock.stats()
    assert stats["in_flight"] == 0 and stats["by_status"] == {"499": 1} and stats["faults"] == {"stall": 1}


def _stream_until_failure(sdk: anthropic.Anthropic, fault: str, *, body_marker: bool = False) -> list[str]:
    received: list[str] = []
    content = USER[0]["content"] + (f" mock-fault:{fault}" if body_marker else "")
    headers = {} if body_marker else {"x-mock-fault": fault}
    with sdk.messages.stream(
        model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": content}], extra_headers=headers
    ) as stream:
        received.extend(stream.text_stream)
    return received


@pytest.mark.parametrize("body_marker", [False, True], ids=["header", "body-marker"])
def test_drop_midstream_closes_the_connection_halfway(mock: Mock, body_marker: bool) -> None:
    import httpx2

    received: list[str] = []
    with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)):
        received = _stream_until_failure(
            client(mock, max_retries=0), "drop_midstream", body_marker=body_marker
        )
    with pytest.raises(anthropic.APIConnectionError):  # a non-streaming body cut off halfway
        client(mock, max_retries=0).messages.create(
            model=MODEL, max_tokens=1024, messages=USER, extra_headers={"x-mock-fault": "drop_midstream"}
        )
    assert not received  # the stream never ended normally


def test_truncated_ends_the_body_cleanly_halfway(mock: Mock) -> None:
    """Nothing at the transport level goes wrong: the stream ends with no message_stop and no error (the
    SDK raises nothing), and a non-streaming body is half a JSON document of the length it declares."""
    mock.reset()
    sdk = client(mock, max_retries=0)
    events: list[str] = []
    with sdk.messages.stream(
        model=MODEL, max_tokens=1024, messages=USER, extra_headers={"x-mock-fault": "truncated"}
    ) as stream:
        events.extend(event.type for event in stream)
    assert "content_block_delta" in events and "message_stop" not in events
    whole = sdk.messages.create(model=MODEL, max_tokens=1024, messages=USER)
    raw = sdk.messages.with_raw_response.create(
        model=MODEL, max_tokens=1024, messages=USER, extra_headers={"x-mock-fault": "truncated"}
    )
    body = raw.http_response.content
    assert raw.status_code == 200 and int(raw.headers["content-length"]) == len(body)
    assert whole.content[0].text[:20] in body.decode() and not body.rstrip().endswith(b"}")
    assert mock.stats()["faults"] == {"truncated": 2}


def test_stall_midstream_is_ended_by_the_read_timeout(mock: Mock) -> None:
    import httpx2

    mock.reset()
    started = time.perf_counter()
    with pytest.raises((httpx2.ReadTimeout, anthropic.APITimeoutError)):
        _stream_until_failure(client(mock, max_retries=0, timeout=0.5), "stall_midstream")
    with pytest.raises(anthropic.APITimeoutError):
        client(mock, max_retries=0, timeout=0.5).messages.create(
            model=MODEL, max_tokens=1024, messages=USER, extra_headers={"x-mock-fault": "stall_midstream"}
        )
    assert time.perf_counter() - started < 4.0
    deadline = time.monotonic() + 5.0
    while mock.stats()["in_flight"] != 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mock.stats()["faults"] == {"stall_midstream": 2}


def test_slow_drip_never_trips_a_read_timeout_but_takes_long(mock: Mock) -> None:
    """Each piece comes 12.5 ms (0.25 s x 0.05) after the last: a 0.2 s read timeout never fires, yet the
    answer takes many times the profile's 100 ms."""
    sdk = client(mock, max_retries=0, timeout=0.2)
    started = time.perf_counter()
    text = "".join(_stream_until_failure(sdk, "slow_drip"))
    streamed = time.perf_counter() - started
    expected = sdk.messages.create(model=MODEL, max_tokens=1024, messages=USER).content[0].text
    assert text == expected  # all of it, just slowly
    started = time.perf_counter()
    message = sdk.messages.create(
        model=MODEL, max_tokens=1024, messages=USER, extra_headers={"x-mock-fault": "slow_drip"}
    )
    dripped = time.perf_counter() - started
    assert message.content[0].text == expected
    assert streamed > 0.5 and dripped > 39 * 0.25 * FAST_SCALE


def test_count_tokens_and_models(mock: Mock) -> None:
    sdk = client(mock)
    counted = sdk.messages.count_tokens(model=MODEL, messages=USER)
    assert counted.input_tokens > 0
    models = sdk.models.list()
    assert MODEL in [m.id for m in models.data]
    assert sdk.models.retrieve(MODEL).id == MODEL


def test_wrong_key_is_an_authentication_error(keyed_mock: Mock) -> None:
    sdk = sdk_client(keyed_mock.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    good = sdk_client(keyed_mock.base_url, api_key="secret")
    assert good.messages.create(model=MODEL, max_tokens=10, messages=USER).content[0].text
