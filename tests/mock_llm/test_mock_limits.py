"""The provider-limit model in-process: token buckets, refusals, refunds, the in-flight cap, the slowdown."""

from __future__ import annotations

import pytest

from mock_llm.limits import (
    LimitConfig,
    ProviderLimits,
    TokenBucket,
    anthropic_headers,
    go_duration,
    openai_headers,
    retry_after_headers,
)


def limits(time_scale: float = 1.0, **config: int) -> ProviderLimits:
    return ProviderLimits(LimitConfig(**config), time_scale=time_scale, now=0.0)


def admit(provider: ProviderLimits, now: float, *, input_tokens: int = 10, estimate: int = 100) -> int:
    return provider.admit(input_tokens=input_tokens, output_estimate=estimate, now=now).status


def test_a_bucket_refills_continuously_up_to_its_capacity() -> None:
    bucket = TokenBucket(capacity=60, per_s=1.0, now=0.0)
    bucket.take(60, 0.0)
    assert bucket.remaining(0.0) == 0 and bucket.wait_s(1, 0.0) == pytest.approx(1.0)
    assert bucket.remaining(30.5) == 30  # half a minute later, half the bucket, not a reset at a boundary
    assert bucket.full_in_s(30.5) == pytest.approx(29.5)
    assert bucket.remaining(1000.0) == 60  # never more than its capacity


def test_a_minute_of_requests_then_one_more_each_refill() -> None:
    provider = limits(rpm=60)
    assert [admit(provider, 0.0) for _ in range(60)] == [200] * 60  # the whole bucket at once
    refused = provider.admit(input_tokens=10, output_estimate=100, now=0.0)
    assert refused.status == 429 and refused.bucket == "requests"
    assert refused.retry_after_s == pytest.approx(1.0)  # 60 per minute: one a second
    assert admit(provider, 0.999) == 429 and admit(provider, 1.0) == 200
    assert provider.rate_limited == {"requests": 2, "input_tokens": 0, "output_tokens": 0}


def test_the_time_scale_shortens_the_minute() -> None:
    provider = limits(time_scale=0.1, rpm=60)  # a 6 s minute: 10 requests a second
    for _ in range(60):
        admit(provider, 0.0)
    assert provider.admit(input_tokens=1, output_estimate=1, now=0.0).retry_after_s == pytest.approx(0.1)


def test_input_tokens_are_their_own_bucket_and_a_refusal_takes_nothing() -> None:
    provider = limits(rpm=100, input_tpm=1000)
    assert admit(provider, 0.0, input_tokens=500) == 200 and admit(provider, 0.0, input_tokens=500) == 200
    refused = provider.admit(input_tokens=500, output_estimate=1, now=0.0)
    assert refused.bucket == "input_tokens" and refused.retry_after_s == pytest.approx(30.0)
    assert provider.buckets["requests"].remaining(0.0) == 98  # the refused call took no request


def test_output_is_charged_at_max_tokens_and_corrected_when_the_call_ends() -> None:
    provider = limits(output_tpm=1000)
    assert admit(provider, 0.0, estimate=1000) == 200
    assert admit(provider, 0.0, estimate=1000) == 429  # the estimate holds the bucket while it runs
    provider.release(output_estimate=1000, output_tokens=100, now=0.0)  # it generated only 100
    refused = provider.admit(input_tokens=1, output_estimate=1000, now=0.0)
    assert refused.retry_after_s == pytest.approx(100 / (1000 / 60))  # 900 back, 100 to refill
    assert admit(provider, 0.0, estimate=900) == 200


def test_a_call_larger_than_the_bucket_waits_for_a_full_one() -> None:
    provider = limits(output_tpm=1000)
    assert admit(provider, 0.0, estimate=4096) == 200  # takes the whole bucket instead of failing forever
    assert provider.buckets["output_tokens"].remaining(0.0) == 0
    assert provider.admit(input_tokens=1, output_estimate=4096, now=0.0).retry_after_s == pytest.approx(60)


def test_calls_beyond_max_in_flight_are_overloaded_until_one_ends() -> None:
    provider = limits(max_in_flight=2)
    assert [admit(provider, 0.0) for _ in range(3)] == [200, 200, 529]
    provider.release(output_estimate=100, output_tokens=100, now=0.0)
    assert admit(provider, 0.0) == 200 and provider.overloaded == 1 and provider.peak_admitted == 2


def test_the_slowdown_grows_with_the_calls_in_flight_beyond_the_knee() -> None:
    provider = limits(slowdown_above=2)
    factors = []
    for _ in range(4):
        admit(provider, 0.0)
        factors.append(provider.slowdown())
    assert factors == [1.0, 1.0, 1.5, 2.0]
    assert limits().slowdown() == 1.0


def test_reset_zeroes_counters_but_keeps_the_buckets() -> None:
    provider = limits(rpm=1)
    admit(provider, 0.0)
    admit(provider, 0.0)
    provider.reset()
    assert provider.rate_limited["requests"] == 0 and admit(provider, 0.0) == 429


def test_anthropic_headers_show_every_bucket_and_the_most_restrictive_tokens() -> None:
    provider = limits(rpm=100, input_tpm=1000, output_tpm=10_000)
    admit(provider, 0.0, input_tokens=900, estimate=1000)
    headers = dict(anthropic_headers(provider.states(0.0), wall_now=1_700_000_000.0))
    assert headers[b"anthropic-ratelimit-requests-limit"] == b"100"
    assert headers[b"anthropic-ratelimit-requests-remaining"] == b"99"
    assert headers[b"anthropic-ratelimit-input-tokens-remaining"] == b"100"
    assert headers[b"anthropic-ratelimit-output-tokens-remaining"] == b"9000"
    # 900 input tokens refill at 1000 a minute: full again in 54 s (1_700_000_054 is 22:14:14 UTC).
    assert headers[b"anthropic-ratelimit-input-tokens-reset"] == b"2023-11-14T22:14:14Z"
    assert headers[b"anthropic-ratelimit-tokens-remaining"] == b"100"  # input has the smaller share left
    assert headers[b"anthropic-ratelimit-requests-reset"] == b"2023-11-14T22:13:20Z"  # 0.6 s, whole seconds


def test_unlimited_buckets_show_nominal_full_values() -> None:
    headers = dict(anthropic_headers(limits(rpm=10).states(0.0), wall_now=0.0))
    assert (
        headers[b"anthropic-ratelimit-output-tokens-limit"]
        == headers[b"anthropic-ratelimit-output-tokens-remaining"]
    )


def test_openai_headers_and_their_durations() -> None:
    provider = limits(rpm=60, output_tpm=600)
    admit(provider, 0.0, estimate=300)
    headers = dict(openai_headers(provider.states(0.0)))
    assert headers[b"x-ratelimit-limit-requests"] == b"60"
    assert headers[b"x-ratelimit-remaining-requests"] == b"59"
    assert headers[b"x-ratelimit-reset-requests"] == b"1s"
    assert (
        headers[b"x-ratelimit-limit-tokens"] == b"600" and headers[b"x-ratelimit-remaining-tokens"] == b"300"
    )
    assert headers[b"x-ratelimit-reset-tokens"] == b"30s"
    assert [go_duration(s) for s in (0.0123, 0.5, 1.5, 360.0, 61.25)] == [
        "13ms",
        "500ms",
        "1.5s",
        "6m0s",
        "1m1.25s",
    ]


def test_retry_after_is_whole_seconds_and_exact_milliseconds() -> None:
    assert dict(retry_after_headers(0.05)) == {b"retry-after": b"1", b"retry-after-ms": b"50"}
    assert dict(retry_after_headers(2.3001)) == {b"retry-after": b"3", b"retry-after-ms": b"2301"}


@pytest.mark.parametrize("name", ["rpm", "input_tpm", "output_tpm", "max_in_flight", "slowdown_above"])
def test_a_bad_limit_is_named(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        LimitConfig(**{name: 0})


def test_rate_limits_need_a_time_scale() -> None:
    with pytest.raises(ValueError, match="time scale"):
        limits(time_scale=0.0, rpm=10)
    assert limits(time_scale=0.0, max_in_flight=3).config.max_in_flight == 3
