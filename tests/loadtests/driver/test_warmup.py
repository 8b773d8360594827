"""The warm-up: an open-loop rate the server cannot complete is cut short."""

from __future__ import annotations

import random

from loadtests.analysis import steady


def _poisson_completions(rate: float, seconds: float, *, seed: int) -> steady.Series:
    rng = random.Random(seed)
    series = steady.Series(t0=0.0, bin_s=0.5, open_loop=True)
    t = rng.expovariate(rate)
    while t < seconds:
        series.add_completion(t + 1.0, 1000.0)  # each request takes L = 1 s
        t += rng.expovariate(rate)
    return series


def test_an_open_loop_rate_the_server_cannot_complete_is_cut_short_and_a_sustained_one_is_not() -> None:
    from loadtests.driver.warmup import rate_not_sustained as _rate_not_sustained

    hi, first = 40, 2  # 20 s of bins; the first upstream period left out
    # Sustained: 200 seeds of Poisson arrivals at 3/s completing one period later; none is flagged.
    for seed in range(200):
        series = _poisson_completions(3.0, 30.0, seed=seed)
        assert _rate_not_sustained(series, hi, first=first, offered=3.0) is None, seed
    # fastapi-blocking at 3 rps: one upstream call at a time, so 1 completion/s whatever arrives.
    blocked = steady.Series(t0=0.0, bin_s=0.5, open_loop=True)
    for k in range(1, 21):
        blocked.add_completion(float(k), 1000.0 * k)
    why = _rate_not_sustained(blocked, hi, first=first, offered=3.0)
    assert why is not None and "1.00 completions/s" in why and "3 arrivals/s" in why
    assert _rate_not_sustained(blocked, hi, first=first, offered=None) is None  # closed loop: not judged
    assert _rate_not_sustained(blocked, 12, first=first, offered=3.0) is None  # too soon to tell
