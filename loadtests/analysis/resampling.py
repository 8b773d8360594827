"""A seeded bootstrap interval for the ratio of two means: the compare gate's noise test.

scipy is not a dependency, and with the handful of repeats a sweep takes (2 to 5) a rank test has too
few permutations to ever reach significance, so the gate uses a percentile bootstrap: resample each
side with replacement, take mean(current) / mean(baseline), and read the 2.5th and 97.5th percentiles.
A change is beyond the noise when the whole interval lies on one side of 1.0. Seeded, so CI reruns agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 4000
CONFIDENCE = 0.95
SEED = 20240229
METHOD = (
    f"seeded percentile bootstrap of the ratio of means ({RESAMPLES} resamples, "
    f"{CONFIDENCE:.0%} interval); beyond the noise when the interval excludes 1.0"
)


@dataclass(frozen=True, kw_only=True)
class RatioInterval:
    ratio: float  # mean(current) / mean(baseline)
    low: float
    high: float

    def excludes_one(self) -> bool:
        return self.high < 1.0 or self.low > 1.0


def ratio_interval(baseline: Sequence[float], current: Sequence[float], *, seed: int = SEED) -> RatioInterval:
    """The bootstrap interval of mean(current) / mean(baseline); needs two or more values on each side."""
    if len(baseline) < 2 or len(current) < 2:
        raise ValueError("the bootstrap needs at least two values on each side")
    base = np.asarray(baseline, dtype=float)
    cur = np.asarray(current, dtype=float)
    if base.mean() <= 0:
        raise ValueError("the baseline mean must be positive")
    rng = np.random.default_rng(seed)
    base_means = base[rng.integers(0, base.size, size=(RESAMPLES, base.size))].mean(axis=1)
    cur_means = cur[rng.integers(0, cur.size, size=(RESAMPLES, cur.size))].mean(axis=1)
    with np.errstate(divide="ignore"):
        ratios = cur_means / base_means
    alpha = (1.0 - CONFIDENCE) / 2
    low, high = np.quantile(ratios, [alpha, 1.0 - alpha])
    return RatioInterval(ratio=float(cur.mean() / base.mean()), low=float(low), high=float(high))
