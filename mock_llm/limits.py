"""Provider limits: per-minute token buckets, a cap on calls in flight, a load-dependent slowdown. Pure.

The Claude API documents its rate limits as token buckets: requests per minute, input tokens per minute
and output tokens per minute, each a bucket whose capacity is the per-minute limit and which refills
continuously at that rate (not reset at fixed intervals). Output tokens are charged at ``max_tokens``
when a call starts and the estimate is corrected to the tokens really generated when it ends. A call that
would overdraw any bucket is refused with 429 ``rate_limit_error`` and ``retry-after`` (the time until the
short bucket holds enough), and takes nothing from any bucket.

Here "a minute" is 60 s x the mock's time scale, so the shape of a run (offered load against the limit)
survives the compression of every delay. A call asking for more than a whole bucket (``max_tokens`` above
``--output-tpm``) waits for a full bucket and empties it, rather than being refused forever.

``max_in_flight``: a generation call arriving while that many are admitted and unfinished is answered at
once with 529 ``overloaded_error``. ``slowdown_above`` N: a call admitted while n calls (itself included)
are in flight has every delay multiplied by max(1, n / N), as if the provider served N calls at full speed
and shared that speed among more (processor sharing), the load counted once, at the call's arrival.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

MINUTE_S = 60.0
BUCKETS = ("requests", "input_tokens", "output_tokens")
_FLAGS = {"requests": "--rpm", "input_tokens": "--input-tpm", "output_tokens": "--output-tpm"}
# What the headers show for a bucket that is not limited (plausible values for a high tier): the mock
# never refuses a call for them.
NOMINAL_LIMITS = {"requests": 4_000, "input_tokens": 2_000_000, "output_tokens": 400_000}


@dataclass(frozen=True, kw_only=True)
class LimitConfig:
    rpm: int | None = None
    input_tpm: int | None = None
    output_tpm: int | None = None
    max_in_flight: int | None = None
    slowdown_above: int | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "input_tpm", "output_tpm", "max_in_flight", "slowdown_above"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name}: must be a whole number of at least 1, got {value!r}")

    def per_minute(self) -> dict[str, int]:
        """The limited buckets and their per-minute limits."""
        limits = {"requests": self.rpm, "input_tokens": self.input_tpm, "output_tokens": self.output_tpm}
        return {name: value for name, value in limits.items() if value is not None}

    @property
    def active(self) -> bool:
        return bool(self.per_minute()) or self.max_in_flight is not None or self.slowdown_above is not None


class TokenBucket:
    """Capacity ``capacity``, refilled continuously at ``per_s`` per second, full at the start."""

    def __init__(self, *, capacity: float, per_s: float, now: float) -> None:
        self.capacity = capacity
        self.per_s = per_s
        self.level = capacity
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self.level = min(self.capacity, self.level + (now - self._at) * self.per_s)
            self._at = now

    def wait_s(self, need: float, now: float) -> float:
        """Seconds until the bucket holds ``need`` (capped at its capacity); 0 when it does now."""
        self._refill(now)
        short = min(need, self.capacity) - self.level
        return short / self.per_s if short > 0 else 0.0

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level -= min(amount, self.capacity)

    def give(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level = min(self.capacity, self.level + amount)

    def remaining(self, now: float) -> int:
        self._refill(now)
        return max(0, math.floor(self.level))

    def full_in_s(self, now: float) -> float:
        self._refill(now)
        return max(0.0, (self.capacity - self.level) / self.per_s)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    status: int  # 200 admitted, 429 rate-limited, 529 overloaded
    bucket: str | None = None  # the bucket that refused the call (429)
    retry_after_s: float = 0.0

    @property
    def admitted(self) -> bool:
        return self.status == 200

    def message(self, config: LimitConfig) -> str:
        if self.status == 529:
            return "Overloaded"
        assert self.bucket is not None
        limit = config.per_minute()[self.bucket]
        what = self.bucket.replace("_", " ")
        return (
            f"This request would exceed the rate limit of {limit:,} {what} per minute "
            f"(mock_llm {_FLAGS[self.bucket]}); retry after {self.retry_after_s:.3f} s"
        )


@dataclass(frozen=True, kw_only=True)
class BucketState:
    name: str
    limit: int
    remaining: int
    full_in_s: float  # until the bucket is full again (the API's -reset header)


class ProviderLimits:
    """The buckets, the admitted-call gauge and the counters behind ``/mock/stats``'s ``limits``."""

    def __init__(self, config: LimitConfig, *, time_scale: float, now: float) -> None:
        if config.per_minute() and time_scale <= 0:
            raise ValueError("rate limits need a time scale above 0 (a minute of 0 s refills at once)")
        self.config = config
        self.minute_s = MINUTE_S * time_scale
        self.buckets = {
            name: TokenBucket(capacity=limit, per_s=limit / self.minute_s, now=now)
            for name, limit in config.per_minute().items()
        }
        self.admitted = 0  # generation calls admitted and not yet ended
        self.peak_admitted = 0
        self.rate_limited = dict.fromkeys(BUCKETS, 0)
        self.overloaded = 0

    def admit(self, *, input_tokens: int, output_estimate: int, now: float) -> Verdict:
        """Admit one generation call (taking from every bucket) or say why not (taking nothing)."""
        cap = self.config.max_in_flight
        if cap is not None and self.admitted >= cap:
            self.overloaded += 1
            return Verdict(status=529)
        needs = {"requests": 1, "input_tokens": input_tokens, "output_tokens": output_estimate}
        waits = {name: bucket.wait_s(needs[name], now) for name, bucket in self.buckets.items()}
        short = max(waits, key=waits.__getitem__, default=None)
        if short is not None and waits[short] > 0:
            self.rate_limited[short] += 1
            return Verdict(status=429, bucket=short, retry_after_s=waits[short])
        for name, bucket in self.buckets.items():
            bucket.take(needs[name], now)
        self.admitted += 1
        self.peak_admitted = max(self.peak_admitted, self.admitted)
        return Verdict(status=200)

    def slowdown(self) -> float:
        """The delay factor of the call just admitted: max(1, calls in flight / slowdown_above)."""
        knee = self.config.slowdown_above
        return max(1.0, self.admitted / knee) if knee else 1.0

    def release(self, *, output_estimate: int, output_tokens: int, now: float) -> None:
        """An admitted call ended: its output estimate is corrected to what it generated (0 if it gave
        no complete answer)."""
        self.admitted -= 1
        bucket = self.buckets.get("output_tokens")
        if bucket is not None and output_estimate > output_tokens:
            bucket.give(min(output_estimate, bucket.capacity) - min(output_tokens, bucket.capacity), now)

    def states(self, now: float) -> list[BucketState]:
        """Every bucket as the headers show it; an unlimited one at its nominal value, always full."""
        states = []
        for name in BUCKETS:
            bucket = self.buckets.get(name)
            if bucket is None:
                nominal = NOMINAL_LIMITS[name]
                states.append(BucketState(name=name, limit=nominal, remaining=nominal, full_in_s=0.0))
            else:
                states.append(
                    BucketState(
                        name=name,
                        limit=int(bucket.capacity),
                        remaining=bucket.remaining(now),
                        full_in_s=bucket.full_in_s(now),
                    )
                )
        return states

    def reset(self) -> None:
        """Zero the counters; the buckets keep their level (the provider's state outlives a window)."""
        self.peak_admitted = self.admitted
        self.rate_limited = dict.fromkeys(BUCKETS, 0)
        self.overloaded = 0

    def snapshot(self, now: float) -> dict[str, object]:
        config = self.config
        return {
            "rpm": config.rpm,
            "input_tpm": config.input_tpm,
            "output_tpm": config.output_tpm,
            "max_in_flight": config.max_in_flight,
            "slowdown_above": config.slowdown_above,
            "minute_s": round(self.minute_s, 6),
            "admitted_in_flight": self.admitted,
            "peak_admitted_in_flight": self.peak_admitted,
            "rate_limited": dict(self.rate_limited),
            "rate_limited_total": sum(self.rate_limited.values()),
            "overloaded": self.overloaded,
            "remaining": {s.name: s.remaining for s in self.states(now) if s.name in self.buckets},
        }


def most_restrictive(states: list[BucketState]) -> BucketState:
    """Of the two token buckets, the one with the smaller share left (the API's ``-tokens-`` headers)."""
    tokens = [s for s in states if s.name != "requests"]
    return min(tokens, key=lambda s: s.remaining / s.limit)


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def anthropic_headers(states: list[BucketState], *, wall_now: float) -> list[tuple[bytes, bytes]]:
    """``anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-{limit,remaining,reset}``;
    reset is when the bucket is full again (RFC 3339)."""
    named = [(s.name.replace("_", "-"), s) for s in states]
    named.append(("tokens", most_restrictive(states)))
    headers = []
    for name, state in named:
        prefix = f"anthropic-ratelimit-{name}-"
        headers += [
            ((prefix + "limit").encode(), str(state.limit).encode()),
            ((prefix + "remaining").encode(), str(state.remaining).encode()),
            ((prefix + "reset").encode(), rfc3339(wall_now + state.full_in_s).encode()),
        ]
    return headers


def go_duration(seconds: float) -> str:
    """OpenAI's reset format: ``120ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{round(rest, 3):g}s"
    return f"{int(minutes)}m{text}" if minutes else text


def openai_headers(states: list[BucketState]) -> list[tuple[bytes, bytes]]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``; tokens is the more restrictive bucket."""
    requests = states[0]
    tokens = most_restrictive(states)
    return [
        (b"x-ratelimit-limit-requests", str(requests.limit).encode()),
        (b"x-ratelimit-limit-tokens", str(tokens.limit).encode()),
        (b"x-ratelimit-remaining-requests", str(requests.remaining).encode()),
        (b"x-ratelimit-remaining-tokens", str(tokens.remaining).encode()),
        (b"x-ratelimit-reset-requests", go_duration(requests.full_in_s).encode()),
        (b"x-ratelimit-reset-tokens", go_duration(tokens.full_in_s).encode()),
    ]


def retry_after_headers(wait_s: float) -> list[tuple[bytes, bytes]]:
    """``retry-after`` in whole seconds (at least 1, as the API sends it) and the exact ``retry-after-ms``
    (which the official SDKs prefer): the mock's minute can be far shorter than 60 s."""
    return [
        (b"retry-after", str(max(1, math.ceil(round(wait_s, 6)))).encode()),
        (b"retry-after-ms", str(max(1, math.ceil(round(wait_s * 1000, 6)))).encode()),
    ]
