"""A point's identity and timing: what is measured (:class:`PointSpec`), against what (:class:`Target`), and
for how long (:class:`Timing`: a warm-up detected from the data within a bound, then a window of whole
upstream periods grown to at least MIN_COMPLETIONS at the measured rate)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from loadtests.analysis import steady
from loadtests.analysis.intervals import MIN_BATCHES

MIN_COMPLETIONS = 30  # the window grows (in whole upstream periods) until about this many are expected
# A capacity level's first window grows to about this many: enough for a p95 interval (72 effectively
# independent ones, at 95 %) unless the loop correlates them strongly.
LEVEL_MIN_COMPLETIONS = 100
# A capacity level's window holds at least this many upstream periods: its decision at the SLO's limit is
# estimated from batches of one turnover of the requests in flight each and needs MIN_BATCHES of them
# (loadtests.analysis.intervals.limit_interval); a turnover is a little longer than a period (the server's
# own time), hence one period more. Fewer, and a level of many users in flight is measured twice.
MIN_PERIODS = MIN_BATCHES + 1
# A capacity level whose settled latency is already past the SLO's limit needs only this many of its
# turnovers to fail: five samples bound a p95 from below by their fourth (limit_interval), where the usual
# 100 completions kept fastapi-blocking and flask-asgiref at 2 and 4 users (1 in flight) 100 s each.
PAST_LIMIT_TURNOVERS = 5
MAX_WINDOW_S = 120.0  # ... but no longer than this (or the requested duration, if longer)
FLUSH_LAG_S = 0.6  # the load processes write their records every 0.25 s: newer bins may be incomplete


@dataclass(frozen=True, kw_only=True)
class PointSpec:
    variant: str
    scenario: str
    load_model: str  # "closed" | "open"
    users: int | None
    rate: float | None
    repeat: int

    @property
    def load(self) -> float:
        value = self.users if self.load_model == "closed" else self.rate
        assert value is not None
        return float(value)

    @property
    def key(self) -> tuple[str, str, str, float, int]:
        return (self.variant, self.scenario, self.load_model, self.load, self.repeat)

    @property
    def point_id(self) -> str:
        level = f"u{self.users}" if self.load_model == "closed" else f"r{self.rate:g}"
        return f"{self.variant}--{self.scenario}--{self.load_model}-{level}--{self.repeat}"

    def label(self) -> str:
        level = f"{self.users} users" if self.load_model == "closed" else f"{self.rate:g} rps"
        return f"{self.variant} {self.scenario} {level} #{self.repeat + 1}"


@dataclass(frozen=True, kw_only=True)
class Target:
    """What a point runs against: a started variant and its mock."""

    url: str
    mock_url: str
    server_pid: int
    mock_pid: int
    ceiling: int  # predicted; 0 when nothing is (your own app's target without a ceiling)
    latency_s: float  # nominal upstream latency L for this mock (0 for the instant profile)
    token: str
    request: dict[str, Any] | None = None  # your own app's rendered request (loadtests/scenarios/target.py)


@dataclass(frozen=True, kw_only=True)
class Timing:
    """How a point is timed. ``warmup_s`` None: detected from the data, within ``max_warmup_s``."""

    warmup_s: float | None
    duration_s: float  # the window, at least (it grows to MIN_COMPLETIONS at the measured rate)
    max_warmup_s: float
    latency_s: float  # the mock's nominal L: the unit of the start spread and of whole-period windows
    min_completions: int = MIN_COMPLETIONS  # the window grows until about this many are expected
    min_periods: int = 0  # ... and holds at least this many upstream periods (capacity levels: MIN_PERIODS)

    @property
    def bin_s(self) -> float:
        """Half an upstream period: short enough to see a change within a few periods, long enough
        that a bin at low load still holds a completion or so."""
        return max(0.25, self.latency_s / 2)

    @property
    def min_warmup_s(self) -> float:
        """The start spread (one period), then a full trend window of bins."""
        return self.latency_s + steady.MIN_BINS * self.bin_s + FLUSH_LAG_S


def default_max_warmup_s(latency_s: float) -> float:
    # Long enough for a queue of 128 upstream periods to cycle once (fastapi-blocking at 128 users).
    return max(60.0, 150.0 * latency_s)


def plan_timing(
    *,
    latency_s: float,
    duration_s: float,
    warmup_s: float | None,
    max_warmup_s: float | None = None,
    min_completions: int = MIN_COMPLETIONS,
    min_periods: int = 0,
) -> Timing:
    return Timing(
        warmup_s=warmup_s,
        duration_s=duration_s,
        max_warmup_s=max_warmup_s if max_warmup_s is not None else default_max_warmup_s(latency_s),
        latency_s=max(latency_s, 0.0),
        min_completions=min_completions,
        min_periods=min_periods,
    )


def window_seconds(timing: Timing, rate_rps: float | None) -> float:
    """At least the requested duration, the timing's min_periods upstream periods and min_completions at
    the measured completion rate (capped), in whole upstream periods: every user (or busy slot) then
    contributes a whole number of completions, so the throughput has no boundary quantisation error."""
    duration = timing.duration_s
    if rate_rps is not None and rate_rps > 0:
        duration = max(duration, min(timing.min_completions / rate_rps, max(MAX_WINDOW_S, timing.duration_s)))
    period = timing.latency_s
    if period > 0:
        duration = max(duration, min(timing.min_periods * period, max(MAX_WINDOW_S, timing.duration_s)))
        duration = math.ceil(duration / period - 1e-9) * period
    return round(duration, 3)


def past_limit_timing(timing: Timing, *, users: int, turnover_s: float) -> Timing:
    """The timing of a closed-loop level whose settled latency is past its limit: PAST_LIMIT_TURNOVERS
    turnovers (of ``turnover_s``, its mean latency), not the usual minimum of completions or periods."""
    if timing.latency_s <= 0:  # no period to count in: that many completions of each user
        return replace(timing, min_completions=PAST_LIMIT_TURNOVERS * users, min_periods=0)
    periods = math.ceil(PAST_LIMIT_TURNOVERS * turnover_s / timing.latency_s - 1e-9)
    return replace(timing, min_completions=0, min_periods=periods)


def settled_window_timing(
    timing: Timing, *, users: int, latency_mean_ms: float, slo_latency_ms: float | None
) -> Timing:
    """A settled closed-loop level's window timing from its measured mean latency, when it is judged against
    an SLO's limit (``slo_latency_ms``; a capacity level): the short window of a level already past it
    (past_limit_timing); ``min_periods`` counted in its own turnovers when a turnover is longer than a
    period (at fastapi-async's knee a turnover took 1.2 periods, and eleven periods held nine turnovers, too
    few to decide). Any other point keeps its timing (a sweep point at 128 users on 4 workers would
    otherwise hold eleven 32 s turnovers)."""
    if slo_latency_ms is None:
        return timing
    turnover_s = latency_mean_ms / 1000.0
    if latency_mean_ms > slo_latency_ms:
        return past_limit_timing(timing, users=users, turnover_s=turnover_s)
    if timing.min_periods and timing.latency_s > 0 and turnover_s > timing.latency_s:
        return replace(timing, min_periods=math.ceil(timing.min_periods * turnover_s / timing.latency_s))
    return timing


def guess_seconds(spec: PointSpec, timing: Timing, *, ceiling: int) -> float:
    """A first guess of warm-up plus window, for the ETA only (a prediction may seed a guess, never decide):
    at saturation each request waits users/ceiling periods before the queue has cycled once."""
    period = timing.latency_s
    if timing.warmup_s is not None:
        warmup = timing.warmup_s
    else:
        cycles = max(1.0, (spec.users or 1) / max(ceiling, 1)) if spec.load_model == "closed" else 1.0
        warmup = min(timing.max_warmup_s, timing.min_warmup_s + cycles * period)
    in_flight = min(spec.users or 1, ceiling) if spec.load_model == "closed" else None
    rate = in_flight / period if in_flight and period > 0 else spec.rate
    return warmup + window_seconds(timing, rate)
