"""Provider limits on a real mock process: token buckets reached by load, the in-flight cap, the slowdown,
and the official anthropic SDK's retries timed against the mock's retry-after."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import anthropic
import httpx2
from mockkit import API_HEADERS, Mock, messages_body, running_mock, sdk_client

from loadtests.driver.processes import python_module_argv

MODEL = "claude-haiku-5-5"
USER = [{"role": "user", "content": "How long should I wait?"}]
REMAINING = "anthropic-ratelimit-requests-remaining"


def _post(mock: Mock, **fields: object) -> tuple[int, dict[str, str], dict[str, object]]:
    reply = mock.request("POST", "/v1/messages", body=messages_body(**fields), headers=API_HEADERS)
    return reply.status, reply.headers, reply.json()


def test_requests_beyond_the_bucket_get_429_with_retry_after_and_live_headers(mock_log_dir: Path) -> None:
    # 30 a minute at time scale 10 (a 600 s minute): a burst of 30, then one every 20 s, so no refill comes
    # while the test counts the bucket down, however slow the machine.
    flags = ("--profile", "instant", "--rpm", "30", "--time-scale", "10")
    with running_mock(mock_log_dir, "mock-rpm", *flags) as mock:
        remaining = [int(_post(mock)[1][REMAINING]) for _ in range(30)]
        assert remaining == list(range(29, -1, -1))  # counted down by the bucket, one per call
        status, headers, body = _post(mock)
        assert status == 429 and body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
        assert "30 requests per minute" in body["error"]["message"]  # type: ignore[index]
        wait_ms = int(headers["retry-after-ms"])
        assert 15_000 < wait_ms <= 20_000 and headers["retry-after"] == str(-(-wait_ms // 1000))  # rounded up
        assert headers[REMAINING] == "0" and headers["anthropic-ratelimit-requests-limit"] == "30"
        for family in ("input-tokens", "output-tokens", "tokens"):  # on every answer, refused ones too
            assert f"anthropic-ratelimit-{family}-reset" in headers
        stats = mock.stats()
        assert stats["by_status"] == {"200": 30, "429": 1} and stats["faults"] == {}
        assert stats["limits"]["rate_limited"] == {"requests": 1, "input_tokens": 0, "output_tokens": 0}


def test_output_tokens_are_charged_at_max_tokens_then_corrected(mock_log_dir: Path) -> None:
    flags = ("--profile", "instant", "--output-tpm", "2000", "--time-scale", "10")  # refills 3.3 a second
    with running_mock(mock_log_dir, "mock-otpm", *flags) as mock:
        first = _post(mock, max_tokens=1024)
        generated = first[2]["usage"]["output_tokens"]  # type: ignore[index]
        # While the first answer went out its whole max_tokens was held (plus < 10 s of refill).
        assert 976 <= int(first[1]["anthropic-ratelimit-output-tokens-remaining"]) <= 976 + 34
        second = _post(mock, max_tokens=1024)
        expected = 2000 - generated - 1024  # the first corrected to what it generated
        assert expected <= int(second[1]["anthropic-ratelimit-output-tokens-remaining"]) <= expected + 34
        status, headers, body = _post(mock, max_tokens=1900)
        assert status == 429 and "output tokens per minute" in body["error"]["message"]  # type: ignore[index]
        assert int(headers["retry-after"]) >= 5  # hundreds of tokens short at 33 a second
        assert mock.stats()["limits"]["rate_limited"]["output_tokens"] == 1


def test_calls_beyond_max_in_flight_are_overloaded(mock_log_dir: Path) -> None:
    flags = ("--time-scale", "1", "--max-in-flight", "3")  # article: 2 s per call, for the 5 to overlap
    with running_mock(mock_log_dir, "mock-cap", *flags) as mock:
        statuses: list[int] = []
        threads = [threading.Thread(target=lambda: statuses.append(_post(mock)[0])) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(statuses) == [200, 200, 200, 529, 529]
        limits = mock.stats()["limits"]
        assert limits["overloaded"] == 2 and limits["peak_admitted_in_flight"] == 3


def test_the_slowdown_stretches_calls_by_the_load_at_their_arrival(mock_log_dir: Path) -> None:
    flags = ("--time-scale", "0.5", "--slowdown-above", "2")  # article: 1 s per call alone
    with running_mock(mock_log_dir, "mock-slowdown", *flags) as mock:
        threads = [threading.Thread(target=_post, args=(mock,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        injected = mock.stats()["injected_delay_ms"]
        # Admitted with 1, 2, 3 and 4 in flight: x1, x1, x1.5, x2 of 1000 ms.
        assert injected["count"] == 4 and injected["max"] == 2000.0
        assert injected["mean"] == (1000 + 1000 + 1500 + 2000) / 4


def test_the_sdk_waits_for_the_limits_retry_after_and_then_succeeds(mock_log_dir: Path) -> None:
    # 2 a minute at time scale 0.1: a 6 s minute, one request every 3 s; the SDK's own first backoff is
    # 0.375-0.5 s, so a retry that came from it rather than from retry-after would be refused again.
    flags = ("--profile", "instant", "--time-scale", "0.1", "--rpm", "2")
    with running_mock(mock_log_dir, "mock-sdk-retry", *flags) as mock:
        for _ in range(2):
            assert _post(mock)[0] == 200
        mock.reset()
        told: list[int] = []  # what each 429 said to wait, as the SDK's HTTP client saw it

        def hook(response: httpx2.Response) -> None:
            if response.status_code == 429:
                told.append(int(response.headers["retry-after-ms"]))

        http = anthropic.DefaultHttpxClient(event_hooks={"response": [hook]})
        sdk = sdk_client(mock.base_url, max_retries=2, http_client=http)
        message = sdk.messages.create(
            model=MODEL, max_tokens=16, messages=USER, extra_headers={"x-request-id": "sdk-retry"}
        )
        assert message.content[0].text
        stats = mock.stats()
        assert stats["by_status"] == {"200": 1, "429": 1} and stats["retries_seen"] == 1
        calls = [c for c in mock.request("GET", "/mock/calls").json()["calls"] if c[0] == "sdk-retry"]
        (refused, retried) = sorted(calls, key=lambda c: c[1])
        gap = retried[1] - refused[2]  # from the 429's last byte to the retry's arrival, on the mock's clock
        (wait_ms,) = told
        print(f"\nSDK retry after a limit's 429: told {wait_ms} ms, came back after {gap * 1000:.0f} ms")
        # retry-after-ms to the millisecond (the SDK's own first backoff would be 375-500 ms), plus at most
        # a loaded machine's scheduling delay.
        assert wait_ms > 1000 and wait_ms / 1000 - 0.005 <= gap <= wait_ms / 1000 + 0.5


def test_the_sdk_gives_up_when_the_limit_outlasts_its_retries(mock_log_dir: Path) -> None:
    flags = ("--profile", "instant", "--rpm", "1")  # one request a minute
    with running_mock(mock_log_dir, "mock-sdk-give-up", *flags) as mock:
        assert _post(mock)[0] == 200
        sdk = sdk_client(mock.base_url, max_retries=0)
        try:
            sdk.messages.create(model=MODEL, max_tokens=16, messages=USER)
        except anthropic.RateLimitError as exc:
            assert 50 <= int(exc.response.headers["retry-after"]) <= 60 and exc.status_code == 429
        else:
            raise AssertionError("expected a RateLimitError")


def test_bad_limit_flags_fail_with_one_line(tmp_path: Path) -> None:
    cases = [
        (("--rpm", "0"), "--rpm: must be at least 1"),
        (("--max-in-flight", "many"), "--max-in-flight: expected a whole number"),
        (("--rpm", "10", "--time-scale", "0"), "time scale above 0"),
        (("--profile", f"replay:{tmp_path / 'none.csv'}"), "none.csv"),
    ]
    for flags, fragment in cases:
        done = subprocess.run(
            python_module_argv("mock_llm", "--port", "9", *flags), capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 2 and fragment in done.stderr, (flags, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
