"""The mock's HTTP surface without the SDK: headers, auth, validation, seeded faults, stats and the gauge."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from mockkit import API_HEADERS, LOOPBACK, Mock, messages_body, running_mock, sdk_client

RATELIMIT = "anthropic-ratelimit-requests-limit"
# A text block with an extra field nested 950 deep: json.loads parses it (it gives up near 1000 levels, the
# 500 of `[` x 100,000), and it was answered 200; past the mock's limit of 128 levels, it is a 400.
DEEP_IN_A_BLOCK = (
    b'{"model": "claude-haiku-5-5", "max_tokens": 64, "messages": [{"role": "user", "content": '
    b'[{"type": "text", "text": "hi", "extra": ' + b"[" * 950 + b"]" * 950 + b"}]}]}"
)


def test_health(mock: Mock) -> None:
    reply = mock.request("GET", "/health")
    assert reply.status == 200
    assert reply.json() == {"status": "ok", "profile": "article", "time_scale": 0.05}


def test_success_carries_request_id_and_ratelimit_headers(mock: Mock) -> None:
    reply = mock.request("POST", "/v1/messages", body=messages_body(), headers=API_HEADERS)
    assert reply.status == 200
    assert reply.headers["request-id"].startswith("req_") and RATELIMIT in reply.headers
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["id"].startswith("msg_")


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer k", "anthropic-version": "2026-10-21"},  # anthropic 2.x
        {"x-api-key": "k", "anthropic-version": "2023-06-01"},  # older SDKs
    ],
)
def test_both_key_styles_are_accepted(keyed_mock: Mock, headers: dict[str, str]) -> None:
    good = {k: v.replace("k", "secret") if k != "anthropic-version" else v for k, v in headers.items()}
    assert keyed_mock.request("POST", "/v1/messages", body=messages_body(), headers=good).status == 200
    wrong = keyed_mock.request("POST", "/v1/messages", body=messages_body(), headers=headers)
    assert wrong.status == 401
    assert wrong.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("body", "headers", "status", "error_type"),
    [
        (messages_body(), {"anthropic-version": "2023-06-01"}, 401, "authentication_error"),
        (messages_body(), {"x-api-key": "k"}, 400, "invalid_request_error"),
        (b"{oops", API_HEADERS, 400, "invalid_request_error"),
        (b"", API_HEADERS, 400, "invalid_request_error"),
        (messages_body(max_tokens="many"), API_HEADERS, 400, "invalid_request_error"),
        (messages_body(messages=[]), API_HEADERS, 400, "invalid_request_error"),
        (messages_body(messages="hi"), API_HEADERS, 400, "invalid_request_error"),
        (messages_body(system=5), API_HEADERS, 400, "invalid_request_error"),
        (messages_body(), API_HEADERS | {"x-mock-fault": "teapot"}, 400, "invalid_request_error"),
        (b"[" * 100_000, API_HEADERS, 400, "invalid_request_error"),  # past json's recursion limit
        (DEEP_IN_A_BLOCK, API_HEADERS, 400, "invalid_request_error"),
    ],
)
def test_bad_requests_get_the_error_envelope(
    mock: Mock, body: object, headers: dict[str, str], status: int, error_type: str
) -> None:
    reply = mock.request("POST", "/v1/messages", body=body, headers=headers)  # type: ignore[arg-type]
    assert reply.status == status
    envelope = reply.json()
    assert envelope["type"] == "error" and envelope["error"]["type"] == error_type
    assert envelope["error"]["message"] and envelope["request_id"] == reply.headers["request-id"]


def test_unknown_path_is_404_with_envelope(mock: Mock) -> None:
    reply = mock.request("GET", "/v1/nothing", headers=API_HEADERS)
    assert reply.status == 404 and reply.json()["error"]["type"] == "not_found_error"
    assert mock.request("GET", "/elsewhere").status == 404


def test_oversized_body_is_413_without_reading_it(mock: Mock) -> None:
    head = (
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\nanthropic-version: 1\r\n"
        "content-type: application/json\r\ncontent-length: 40000000\r\n\r\n{"
    )
    with socket.create_connection((LOOPBACK, mock.port), timeout=10) as sock:
        sock.sendall(head.encode())
        data = b""
        while b"}" not in data.partition(b"\r\n\r\n")[2]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 413")
    assert b'"request_too_large"' in data


def test_stream_sse_wire_format(mock: Mock) -> None:
    reply = mock.request("POST", "/v1/messages", body=messages_body(stream=True), headers=API_HEADERS)
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    blocks = reply.body.decode().strip().split("\n\n")
    names = [block.split("\n")[0] for block in blocks]
    assert all(block.split("\n")[1].startswith("data: {") for block in blocks)
    assert names[:3] == ["event: message_start", "event: content_block_start", "event: ping"]
    assert names[-3:] == ["event: content_block_stop", "event: message_delta", "event: message_stop"]
    assert set(names[3:-3]) == {"event: content_block_delta"}


def test_random_faults_are_seeded(mock_log_dir: Path) -> None:
    flags = ("--profile", "instant", "--error-rate", "0.5", "--errors", "429,529", "--seed", "7")
    runs = []
    for name in ("mock-faults-a", "mock-faults-b"):
        with running_mock(mock_log_dir, name, *flags) as server:
            runs.append(
                [
                    server.request("POST", "/v1/messages", body=messages_body(), headers=API_HEADERS).status
                    for _ in range(40)
                ]
            )
            failed = sum(1 for status in runs[-1] if status != 200)
            assert sum(server.stats()["faults"].values()) == failed
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 429, 529}
    assert 8 <= runs[0].count(200) <= 32


def _call_in_thread(mock: Mock, results: list[int]) -> threading.Thread:
    def run() -> None:
        results.append(mock.request("POST", "/v1/messages", body=messages_body(), headers=API_HEADERS).status)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_in_flight_gauge_counts_concurrent_calls(slow_mock: Mock) -> None:
    slow_mock.reset()
    results: list[int] = []
    threads = [_call_in_thread(slow_mock, results) for _ in range(4)]
    seen = 0
    while any(t.is_alive() for t in threads):
        seen = max(seen, slow_mock.stats()["in_flight"])
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    stats = slow_mock.stats()
    assert results == [200] * 4 and seen >= 1
    assert stats["in_flight"] == 0 and stats["peak_in_flight"] == 4 and stats["requests"] == 4
    assert stats["injected_delay_ms"]["count"] == 4 and stats["injected_delay_ms"]["p50"] == 1000.0
    assert 0 <= stats["delay_error_ms"]["max"] < 500  # loose: the machine is shared


def test_gauge_holds_a_stream_until_its_last_byte_and_reset_keeps_it(slow_mock: Mock) -> None:
    slow_mock.reset()
    sdk = sdk_client(slow_mock.base_url)
    with sdk.messages.stream(
        model="claude-haiku-5-5", max_tokens=1024, messages=[{"role": "user", "content": "x"}]
    ) as s:
        first = next(iter(s.text_stream))  # at 250 ms; the last byte leaves at 1 s
        during = slow_mock.stats()
        after_reset = slow_mock.reset()
        rest = "".join(s.text_stream)
    assert first and rest
    assert during["in_flight"] == 1 and during["streams"] == 1
    assert (
        after_reset["in_flight"] == 1 and after_reset["peak_in_flight"] == 1 and after_reset["requests"] == 0
    )
    stats = slow_mock.stats()
    assert stats["in_flight"] == 0 and stats["by_status"] == {"200": 1}  # /mock/* calls are not counted


def test_client_leaving_a_stream_ends_it_in_the_gauge(slow_mock: Mock) -> None:
    slow_mock.reset()
    sdk = sdk_client(slow_mock.base_url)
    with sdk.messages.stream(
        model="claude-haiku-5-5", max_tokens=1024, messages=[{"role": "user", "content": "y"}]
    ) as s:
        next(iter(s.text_stream))
    deadline = time.monotonic() + 0.6  # well before the stream's own end at 1 s
    while slow_mock.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = slow_mock.stats()
    assert stats["in_flight"] == 0 and stats["by_status"] == {"499": 1}


def test_empty_answer_streams_without_deltas(mock: Mock) -> None:
    body = messages_body(stream=True, stop_sequences=["##"])  # prose answers start with "## "
    reply = mock.request("POST", "/v1/messages", body=body, headers=API_HEADERS)
    names = [block.split("\n")[0] for block in reply.body.decode().strip().split("\n\n")]
    assert names == [
        "event: message_start",
        "event: content_block_start",
        "event: ping",
        "event: content_block_stop",
        "event: message_delta",
        "event: message_stop",
    ]
    assert '"stop_reason":"stop_sequence","stop_sequence":"##"' in reply.body.decode()


MIB = 1024 * 1024


@pytest.mark.parametrize("where", ["text", "model"])
def test_the_answer_cache_holds_no_bodies_and_stays_bounded(mock_log_dir: Path, where: str) -> None:
    """48 distinct 2 MiB requests: the cache keeps a hash of each body, not the body, and its answers
    (which repeat the model name twice) within its byte cap, so the mock's memory stays flat."""
    import psutil

    with running_mock(mock_log_dir, f"mock-cache-{where}", "--profile", "instant") as fresh:
        process = psutil.Process(fresh.process.pid)
        assert fresh.request("POST", "/v1/messages", body=messages_body(), headers=API_HEADERS).status == 200
        before = process.memory_info().rss
        for i in range(48):
            big = f"{i:02d}" + "x" * (2 * MIB)
            body = messages_body(big) if where == "text" else messages_body(model=big)
            reply = fresh.request("POST", "/v1/messages", body=body, headers=API_HEADERS)
            assert reply.status == 200, reply.body[:200]
        grown_mib = (process.memory_info().rss - before) / MIB
    print(f"\nmock RSS after 48 distinct 2 MiB requests ({where}): +{grown_mib:.0f} MiB")
    # Held before: 96 MiB of bodies as keys (measured +99 MiB), and for long model names 192 MiB of answers
    # besides (+390 MiB); now a hash per body and answers within the 64 MiB cap (+4 and +74 MiB here).
    limit = 48 if where == "text" else 160
    assert grown_mib < limit, f"the mock grew by {grown_mib:.0f} MiB"


@pytest.mark.parametrize("since", ["12x", "", "nan", "inf", "-inf", "1e999"])
def test_a_bad_since_is_a_400_not_every_call(mock: Mock, since: str) -> None:
    reply = mock.request("GET", f"/mock/calls?since={since}")
    assert reply.status == 400, reply.body[:200]
    envelope = reply.json()
    assert envelope["error"]["type"] == "invalid_request_error" and "since" in envelope["error"]["message"]


def test_since_keeps_only_the_calls_that_ended_after_it(mock: Mock) -> None:
    assert mock.request("POST", "/v1/messages", body=messages_body(), headers=API_HEADERS).status == 200
    everything = mock.request("GET", "/mock/calls").json()["calls"]
    assert everything and mock.request("GET", "/mock/calls?since=0").json()["calls"] == everything
    last_end = max(call[2] for call in everything)
    assert mock.request("GET", f"/mock/calls?since={last_end + 1}").json()["calls"] == []


CROSS_SITE_FORM = {
    "Origin": "https://elsewhere.example",
    "Sec-Fetch-Site": "cross-site",
    "Content-Type": "application/x-www-form-urlencoded",
}


@pytest.mark.parametrize(
    "headers",
    [{}, CROSS_SITE_FORM, {"X-Mock-Control": "0"}, {"X-Mock-Control": "yes"}],
    ids=["no-header", "cross-site-form", "control-0", "control-yes"],
)
def test_reset_without_the_control_header_is_refused_and_resets_nothing(
    mock: Mock, headers: dict[str, str]
) -> None:
    """A page the user opens while a run is going can POST to the mock (a form needs no preflight), but
    it cannot add a custom header cross-site without a CORS preflight the mock never grants."""
    assert mock.request("POST", "/v1/messages", body=messages_body(), headers=API_HEADERS).status == 200
    before = mock.stats()["requests"]
    reply = mock.request("POST", "/mock/reset", body=b"x=1" if headers else None, headers=headers)
    assert reply.status == 403, reply.body[:200]
    error = reply.json()["error"]
    assert error["type"] == "permission_error" and "x-mock-control" in error["message"]
    assert mock.stats()["requests"] == before > 0
    assert mock.reset()["requests"] == 0  # the harness's reset, with the header
