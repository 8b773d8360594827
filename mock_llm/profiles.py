"""The latency model: how long a call waits, and when each streamed delta goes out.

Pure and seeded, so it is unit-tested without a server. Every delay is in seconds of wall time after the
global time scale is applied.

Profiles:
- ``article``: exactly 2.0 s per call (the article's figure). A non-streaming call answers at 2.0 s. A stream
  sends its first text delta at 25 % of that (0.5 s, its time to first token) and spreads the remaining deltas
  evenly so that the last byte leaves at 2.0 s.
- ``instant``: no delay at all (for tests).
- ``haiku`` / ``sonnet`` / ``opus``: time to first token drawn from a seeded lognormal around a median of
  0.8 / 1.2 / 2.0 s (sigma 0.35, clamped to [median / 4, median x 4]), then output at 100 / 75 / 45 tokens per
  second, so a longer answer takes longer. A non-streaming call waits for TTFT + tokens / rate.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# Streams never send deltas closer together than this (wall time), so thousands of concurrent streams
# stay cheap; several tokens then share one delta, as they often do with the real API.
MIN_DELTA_GAP_S = 0.05
# The middle of the 250-650 tokens mock_llm.content answers with: what a "typical" call generates.
TYPICAL_OUTPUT_TOKENS = 450
# Deltas sent back to back when there is no time to spread them over (instant profile, tiny time scale).
DELTAS_WITHOUT_DELAY = 16


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    fixed_total_s: float | None = None  # a fixed per-call time (article); None for rate-based profiles
    fixed_ttft_fraction: float = 0.25  # a fixed-time stream's first delta, as a fraction of the total
    ttft_median_s: float = 0.0
    ttft_sigma: float = 0.35
    tokens_per_s: float = 0.0  # 0 means output takes no time

    def nominal_total_s(self) -> float:
        """A typical call's duration before the time scale: median TTFT plus a mid-sized answer."""
        if self.fixed_total_s is not None:
            return self.fixed_total_s
        generation = TYPICAL_OUTPUT_TOKENS / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        return self.ttft_median_s + generation

    def describe(self) -> str:
        if self.fixed_total_s is not None:
            return (
                f"{self.fixed_total_s:g} s per call; streams: first delta at "
                f"{self.fixed_total_s * self.fixed_ttft_fraction:g} s, last byte at {self.fixed_total_s:g} s"
            )
        if self.ttft_median_s == 0 and self.tokens_per_s == 0:
            return "no delay"
        return (
            f"TTFT lognormal, median {self.ttft_median_s:g} s (sigma {self.ttft_sigma:g}), "
            f"then {self.tokens_per_s:g} tokens/s"
        )


PROFILES: dict[str, Profile] = {
    "article": Profile(name="article", fixed_total_s=2.0),
    "instant": Profile(name="instant"),
    "haiku": Profile(name="haiku", ttft_median_s=0.8, tokens_per_s=100.0),
    "sonnet": Profile(name="sonnet", ttft_median_s=1.2, tokens_per_s=75.0),
    "opus": Profile(name="opus", ttft_median_s=2.0, tokens_per_s=45.0),
}


@dataclass(frozen=True, kw_only=True)
class LatencyPlan:
    """When one call's answer goes out, in seconds after the request arrived (time scale applied)."""

    ttft_s: float  # first text delta of a stream
    total_s: float  # whole non-streaming answer, or a stream's last byte


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ValueError(f"unknown profile {name!r}; choose one of {known}") from None


def plan_latency(
    profile: Profile, *, output_tokens: int, time_scale: float, rng: random.Random
) -> LatencyPlan:
    """Draw one call's latency. Fixed profiles do not touch ``rng``; rate profiles draw once from it."""
    if profile.fixed_total_s is not None:
        total = profile.fixed_total_s * time_scale
        return LatencyPlan(ttft_s=total * profile.fixed_ttft_fraction, total_s=total)
    ttft = 0.0
    if profile.ttft_median_s > 0:
        median = profile.ttft_median_s
        drawn = rng.lognormvariate(math.log(median), profile.ttft_sigma)
        ttft = min(max(drawn, median / 4), median * 4)
    generation = output_tokens / profile.tokens_per_s if profile.tokens_per_s > 0 else 0.0
    return LatencyPlan(ttft_s=ttft * time_scale, total_s=(ttft + generation) * time_scale)


def delta_groups(n_pieces: int, plan: LatencyPlan, *, min_gap_s: float = MIN_DELTA_GAP_S) -> list[int]:
    """How many text pieces go in each delta: as many deltas as the stream's span allows at ``min_gap_s``."""
    if n_pieces <= 0:
        return []
    span = plan.total_s - plan.ttft_s
    n_deltas = 1 + int(span / min_gap_s) if span > 0 else DELTAS_WITHOUT_DELAY
    n_deltas = max(1, min(n_deltas, n_pieces))
    base, extra = divmod(n_pieces, n_deltas)
    return [base + (1 if i < extra else 0) for i in range(n_deltas)]


def delta_times(n_deltas: int, plan: LatencyPlan) -> list[float]:
    """Send time of each delta: the first at TTFT, the rest evenly spaced, the last at the total."""
    if n_deltas <= 0:
        return []
    if n_deltas == 1:
        return [plan.total_s]
    step = (plan.total_s - plan.ttft_s) / (n_deltas - 1)
    return [plan.ttft_s + i * step for i in range(n_deltas)]
