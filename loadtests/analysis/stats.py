"""Exact percentiles from raw samples: nearest rank on the sorted samples, no buckets, no interpolation."""

from __future__ import annotations

import math
from collections.abc import Iterable

from loadtests.results import Percentiles


def nearest_rank(sorted_samples: list[float], q: float) -> float:
    """The smallest sample with at least q percent of the samples at or below it (0 < q <= 100)."""
    if not sorted_samples:
        raise ValueError("no samples")
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {q}")
    rank = math.ceil(q / 100.0 * len(sorted_samples))
    return sorted_samples[max(rank, 1) - 1]


def percentiles(samples: Iterable[float]) -> Percentiles | None:
    """p50/p90/p95/p99/max/mean/min of the samples (milliseconds in, milliseconds out); None when empty."""
    ordered = sorted(samples)
    if not ordered:
        return None
    return Percentiles(
        p50=round(nearest_rank(ordered, 50), 3),
        p90=round(nearest_rank(ordered, 90), 3),
        p95=round(nearest_rank(ordered, 95), 3),
        p99=round(nearest_rank(ordered, 99), 3),
        max=round(ordered[-1], 3),
        mean=round(math.fsum(ordered) / len(ordered), 3),
        min=round(ordered[0], 3),
        count=len(ordered),
    )
