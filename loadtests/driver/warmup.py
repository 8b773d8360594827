"""The warm-up of one point: follow the running load (the mock's gauge, the completions written so far) and
end the warm-up when the data say the load has settled (``loadtests.analysis.steady``), at its bound, or
as soon as the point cannot pass (its SLO already broken and latency still rising; an open-loop rate that
is not sustained). No prediction sizes it."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.analysis import steady
from loadtests.driver import mockapi
from loadtests.driver.loadgen import check_running
from loadtests.driver.pointspec import FLUSH_LAG_S, PointSpec, Timing
from loadtests.driver.processes import ManagedProcess

GAUGE_INTERVAL_S = 0.2  # the mock's in-flight gauge is polled this often during warm-up and window


class Watcher:
    """Follows a running point: the mock's gauge (polled) and the completions the load processes have
    written so far (their raw files, read incrementally), binned into a :class:`steady.Series`."""

    def __init__(self, work: Path, mock_url: str, series: steady.Series) -> None:
        self.work = work
        self.mock_url = mock_url
        self.series = series
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, bytes] = {}
        self.gauge_errors = 0
        self.gauge_samples: list[tuple[float, float]] = []  # (wall time, in flight), for the window's mean

    def poll_gauge(self) -> None:
        try:
            in_flight = mockapi.gauge(self.mock_url)
        except (OSError, ValueError, KeyError):
            self.gauge_errors += 1
            return
        now = time.time()
        self.series.add_gauge(now, in_flight)
        self.gauge_samples.append((now, in_flight))

    def read_new(self) -> None:
        for path in self.work.glob("raw.*.csv"):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
            self._offsets[path] = offset + len(data)
            data = self._partial.pop(path, b"") + data
            lines = data.split(b"\n")
            if lines[-1]:
                self._partial[path] = lines[-1]
            for line in lines[:-1]:
                fields = line.split(b",", 3)
                if len(fields) < 3 or not fields[1] or fields[0] == b"start":
                    continue
                start, latency_ms = float(fields[0]), float(fields[1])
                self.series.add_completion(start + latency_ms / 1000.0, latency_ms)

    def wait(self, until: float, processes: Sequence[ManagedProcess]) -> None:
        """Poll the gauge until the wall clock reaches ``until``, checking the load processes."""
        while True:
            now = time.time()
            if now >= until:
                return
            check_running(processes)
            self.poll_gauge()
            time.sleep(max(0.0, min(GAUGE_INTERVAL_S, until - time.time())))


@dataclass(kw_only=True)
class WarmupOutcome:
    warmup_s: float
    settled: bool
    trends: dict[str, steady.Trend | None]
    rate_rps: float | None  # completions/s over the last trend window
    abandoned: str | None = None  # why the point was cut short (the SLO already broken while rising)


def trend_window(series: steady.Series, now: float) -> tuple[int, int]:
    hi = series.bin_of(now - FLUSH_LAG_S)  # bins before this one are complete
    return max(0, hi - steady.MIN_BINS), hi


RATE_DEFICIT_SD = 4.0  # completions this many Poisson SDs below the arrivals: the rate is not sustained


def rate_not_sustained(series: steady.Series, hi: int, *, first: int, offered: float | None) -> str | None:
    """Why an open-loop point cannot be sustained, or None: completions since the first upstream period
    fell more than RATE_DEFICIT_SD Poisson SDs below the arrivals offered over the same time."""
    if offered is None or hi - first < 2 * steady.MIN_BINS:
        return None
    seconds = (hi - first) * series.bin_s
    seen = sum(series.completions[first:hi])
    expected = offered * seconds
    if seen >= expected - RATE_DEFICIT_SD * math.sqrt(expected):
        return None
    return (
        f"the offered rate was not sustained: {seen / seconds:.2f} completions/s over {seconds:.1f} s "
        f"against {offered:g} arrivals/s offered (more than {RATE_DEFICIT_SD:g} SDs short)"
    )


def detect_warmup(
    watcher: Watcher,
    timing: Timing,
    processes: Sequence[ManagedProcess],
    *,
    slo_latency_ms: float | None,
    offered_rps: float | None = None,
    users: int | None = None,
) -> WarmupOutcome:
    """Wait until completions, latency and the gauge have settled (or the bound): analysis.steady.

    Open loop (``offered_rps``): a variant that completes fewer requests than the arrivals allow is cut
    short, since it cannot reach a steady state: a queue inside the server (fastapi-blocking's blocked
    loop) leaves the mock's gauge and even the latency trend flat for a while.
    """
    series = watcher.series
    t0 = series.t0
    next_bin = t0 + timing.bin_s
    while True:
        watcher.wait(min(next_bin, t0 + timing.max_warmup_s), processes)
        now = time.time()
        next_bin = max(next_bin + timing.bin_s, now)
        if now - t0 < timing.min_warmup_s and now - t0 < timing.max_warmup_s:
            continue
        watcher.read_new()
        lo, hi = trend_window(series, now)
        first = series.bin_of(t0 + timing.latency_s)
        if users:
            # Closed loop: until as many requests have completed as there are users, the completions seen
            # are the first requests of the users who waited least (fastapi-blocking at 16 users looked
            # flat at 13 s, its first cycle taking 16), so no trend window may start before that.
            cycled = series.bin_reaching(users)
            first = max(first, cycled if cycled is not None else hi + 1)
        settled, trends = series.settled_trends(hi, first=first)
        rates = [r for r in series.rates(lo, hi) if r is not None]
        rate = sum(rates) / len(rates) if rates else None
        short = rate_not_sustained(
            series, hi, first=series.bin_of(t0 + timing.latency_s), offered=offered_rps
        )
        if short is not None:
            return WarmupOutcome(
                warmup_s=now - t0, settled=False, trends=trends, rate_rps=rate, abandoned=short
            )
        if settled:
            return WarmupOutcome(warmup_s=now - t0, settled=True, trends=trends, rate_rps=rate)
        latency = trends["latency_ms"]
        if (
            slo_latency_ms is not None
            and latency is not None
            and latency.mean > slo_latency_ms
            and latency.drift >= 0
        ):
            # Latency only climbs while a queue fills: already above the SLO and rising, it cannot pass.
            return WarmupOutcome(
                warmup_s=now - t0,
                settled=False,
                trends=trends,
                rate_rps=rate,
                abandoned=(
                    f"latency past its limit before steady state: mean {latency.mean:.0f} ms over the last "
                    f"{latency.bins} bins, above {slo_latency_ms:.0f} ms and still rising"
                ),
            )
        if now - t0 >= timing.max_warmup_s:
            return WarmupOutcome(warmup_s=now - t0, settled=False, trends=trends, rate_rps=rate)


def fixed_warmup(watcher: Watcher, timing: Timing, processes: Sequence[ManagedProcess]) -> WarmupOutcome:
    """A warm-up fixed by the user: waited out whole; the steady-state test still runs, on its last bins."""
    assert timing.warmup_s is not None
    series = watcher.series
    watcher.wait(series.t0 + timing.warmup_s, processes)
    watcher.read_new()
    lo, hi = trend_window(series, time.time())
    rates = series.rates(lo, hi)
    return WarmupOutcome(
        warmup_s=timing.warmup_s,
        settled=steady.all_settled(series.trends(lo, hi)),
        trends=series.trends(lo, hi),
        rate_rps=sum(r or 0.0 for r in rates) / len(rates) if rates else None,
    )


def warm_up(
    watcher: Watcher,
    spec: PointSpec,
    timing: Timing,
    processes: Sequence[ManagedProcess],
    *,
    slo_latency_ms: float | None,
) -> WarmupOutcome:
    """The warm-up the timing asks for: fixed, or detected from the data."""
    if timing.warmup_s is not None:
        return fixed_warmup(watcher, timing, processes)
    return detect_warmup(
        watcher,
        timing,
        processes,
        slo_latency_ms=slo_latency_ms,
        offered_rps=spec.rate if spec.load_model == "open" else None,
        users=spec.users if spec.load_model == "closed" else None,
    )
