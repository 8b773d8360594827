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
- ``haiku-tail``: time to first token through published quantiles of a small Claude model (median 0.73 s,
  p95 1.1 s), then 68 tokens per second.
- ``agentic``: the whole call drawn through published quantiles of agentic turns (median 5.6 s, p95 19 s,
  p99 42 s); a stream's first delta at a ``haiku-tail`` TTFT (at most the whole call), the rest spread over
  what is left.
- ``replay:FILE``: each call's timings from the next record of a CSV or JSONL file (mock_llm.replay).

A distribution "through quantiles" (``Quantiles``) is log-linear in the normal score between the published
points: log(value) is piecewise linear in z = Phi^-1(p), extended past the outer points with the slope of the
nearest segment, and z is clamped to +-3.09 (p0.1 to p99.9) so no draw is absurd. It reproduces every
published quantile exactly; with two points it is a lognormal.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mock_llm.replay import TimingRecord

# Streams never send deltas closer together than this (wall time), so thousands of concurrent streams
# stay cheap; several tokens then share one delta, as they often do with the real API.
MIN_DELTA_GAP_S = 0.05
# The middle of the 250-650 tokens mock_llm.content answers with: what a "typical" call generates.
TYPICAL_OUTPUT_TOKENS = 450
# Deltas sent back to back when there is no time to spread them over (instant profile, tiny time scale).
DELTAS_WITHOUT_DELAY = 16
REPLAY_PREFIX = "replay:"
Z_CAP = 3.0902  # the normal score of p99.9: quantile draws stay within p0.1..p99.9
_NORMAL = statistics.NormalDist()


@dataclass(frozen=True, kw_only=True)
class Quantiles:
    """A distribution through published quantiles ((probability, seconds), probabilities increasing)."""

    points: tuple[tuple[float, float], ...]
    _knots: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pairs = zip(self.points, self.points[1:], strict=False)
        if len(self.points) < 2 or any(b[0] <= a[0] or b[1] <= a[1] for a, b in pairs):
            raise ValueError(f"quantiles: need two or more increasing points, got {self.points}")
        knots = tuple((_NORMAL.inv_cdf(p), math.log(v)) for p, v in self.points)
        object.__setattr__(self, "_knots", knots)  # (normal score, log seconds), computed once

    def at_score(self, z: float) -> float:
        """The value at normal score ``z`` (log-linear between the points, their end slopes beyond)."""
        knots = self._knots
        index = 0
        while index < len(knots) - 2 and z > knots[index + 1][0]:
            index += 1
        (z0, y0), (z1, y1) = knots[index], knots[index + 1]
        return math.exp(y0 + (y1 - y0) * (z - z0) / (z1 - z0))

    def quantile(self, p: float) -> float:
        return self.at_score(min(max(_NORMAL.inv_cdf(p), -Z_CAP), Z_CAP))

    def draw(self, rng: random.Random) -> float:
        return self.at_score(min(max(rng.gauss(0.0, 1.0), -Z_CAP), Z_CAP))

    def describe(self) -> str:
        return ", ".join(f"p{p * 100:g} {v:g} s" for p, v in self.points)


# Published figures (sources in mock_llm/README.md): a small Claude model's time to first token, and the
# duration of agentic turns.
SMALL_MODEL_TTFT = Quantiles(points=((0.5, 0.73), (0.95, 1.1)))
AGENTIC_TURN = Quantiles(points=((0.5, 5.6), (0.95, 19.0), (0.99, 42.0)))


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    fixed_total_s: float | None = None  # a fixed per-call time (article); None for rate-based profiles
    fixed_ttft_fraction: float = 0.25  # a fixed-time stream's first delta, as a fraction of the total
    ttft_median_s: float = 0.0
    ttft_sigma: float = 0.35
    tokens_per_s: float = 0.0  # 0 means output takes no time
    ttft_quantiles: Quantiles | None = None  # instead of the lognormal around ttft_median_s
    total_quantiles: Quantiles | None = None  # the whole call drawn; TTFT at most that
    replay: tuple[TimingRecord, ...] | None = None  # replay:FILE, one record per call in turn

    def nominal_total_s(self) -> float:
        """A typical call's duration before the time scale: median TTFT plus a mid-sized answer."""
        if self.fixed_total_s is not None:
            return self.fixed_total_s
        if self.replay is not None:
            return statistics.median(record.total_s for record in self.replay)
        if self.total_quantiles is not None:
            return self.total_quantiles.quantile(0.5)
        generation = TYPICAL_OUTPUT_TOKENS / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        ttft = self.ttft_quantiles.quantile(0.5) if self.ttft_quantiles is not None else self.ttft_median_s
        return ttft + generation

    def describe(self) -> str:
        if self.fixed_total_s is not None:
            return (
                f"{self.fixed_total_s:g} s per call; streams: first delta at "
                f"{self.fixed_total_s * self.fixed_ttft_fraction:g} s, last byte at {self.fixed_total_s:g} s"
            )
        if self.replay is not None:
            return (
                f"{len(self.replay)} recorded calls replayed in turn (median whole call "
                f"{self.nominal_total_s():.3g} s)"
            )
        if self.total_quantiles is not None:
            ttft = self.ttft_quantiles.describe() if self.ttft_quantiles else "none"
            return f"whole call through {self.total_quantiles.describe()}; first delta through {ttft}"
        if self.ttft_quantiles is not None:
            return f"TTFT through {self.ttft_quantiles.describe()}, then {self.tokens_per_s:g} tokens/s"
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
    "haiku-tail": Profile(name="haiku-tail", ttft_quantiles=SMALL_MODEL_TTFT, tokens_per_s=68.0),
    "agentic": Profile(name="agentic", ttft_quantiles=SMALL_MODEL_TTFT, total_quantiles=AGENTIC_TURN),
}


@dataclass(frozen=True, kw_only=True)
class LatencyPlan:
    """When one call's answer goes out, in seconds after the request arrived (time scale applied)."""

    ttft_s: float  # first text delta of a stream
    total_s: float  # whole non-streaming answer, or a stream's last byte

    def stretched(self, factor: float) -> LatencyPlan:
        """Every delay times ``factor`` (the provider's load-dependent slowdown)."""
        if factor == 1.0:
            return self
        return LatencyPlan(ttft_s=self.ttft_s * factor, total_s=self.total_s * factor)


def get_profile(name: str) -> Profile:
    """A named profile, or ``replay:FILE`` read from its file (ValueError naming the file and line)."""
    if name.startswith(REPLAY_PREFIX):
        from mock_llm.replay import load_trace

        return Profile(name=name, replay=load_trace(Path(name.removeprefix(REPLAY_PREFIX))))
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ValueError(f"unknown profile {name!r}; choose one of {known} or replay:FILE") from None


def plan_latency(
    profile: Profile, *, output_tokens: int, time_scale: float, rng: random.Random
) -> LatencyPlan:
    """Draw one call's latency. Fixed profiles do not touch ``rng``; drawn ones draw from it (a replay is
    planned by mock_llm.replay, in turn)."""
    if profile.fixed_total_s is not None:
        total = profile.fixed_total_s * time_scale
        return LatencyPlan(ttft_s=total * profile.fixed_ttft_fraction, total_s=total)
    ttft = 0.0
    if profile.ttft_quantiles is not None:
        ttft = profile.ttft_quantiles.draw(rng)
    elif profile.ttft_median_s > 0:
        median = profile.ttft_median_s
        drawn = rng.lognormvariate(math.log(median), profile.ttft_sigma)
        ttft = min(max(drawn, median / 4), median * 4)
    if profile.total_quantiles is not None:
        total = profile.total_quantiles.draw(rng)
        return LatencyPlan(ttft_s=min(ttft, total) * time_scale, total_s=total * time_scale)
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
