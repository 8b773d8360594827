"""The gate's noise test: an exact one-sided Mann-Whitney (rank) test on per-round figures.

The unit of replication is a round: fresh processes measuring one side once. Requests inside one round
share their processes' luck (which core, which caches, which neighbour), so per-request samples would make
any two processes look different; the figures of whole rounds are what may be exchanged when the code
is the same. Under that null hypothesis every split of the pooled 2 x R figures into the two sides is
equally likely, so the p-value is exact, free of any assumption about the figures' distribution:
P(U >= observed) over all C(n + m, n) splits, U counting the (base, head) pairs in which head is worse
(ties count one half). A figure regresses when p <= ALPHA *and* the median moved the wrong way by more than
the minimum effect, so a tiny but consistent drift does not fail a build.

False alarms: at most ALPHA per gated figure (exactly the achievable size at or below it, e.g. 2/252 =
0.79 % with 5 rounds a side), at most K x that over K gated figures (Bonferroni; the figures of one
variant are correlated, so the true rate is lower), and the effect floor lowers it further.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

ALPHA = 0.01
METHOD = (
    f"exact one-sided Mann-Whitney rank test on the per-round figures (p <= {ALPHA:g}), with the "
    "median moved the wrong way by more than the tolerance"
)
MAX_ENUMERATION = 200_000  # C(18, 9) = 48,620; beyond this many splits a normal approximation is used


def u_statistic(lower: Sequence[float], higher: Sequence[float]) -> float:
    """Pairs (a in lower, b in higher) with b > a, ties counting one half."""
    return sum(1.0 if b > a else 0.5 if b == a else 0.0 for a in lower for b in higher)


def p_greater(lower: Sequence[float], higher: Sequence[float]) -> float:
    """One-sided exact p-value that ``higher`` tends to exceed ``lower`` (ties handled exactly)."""
    n, m = len(lower), len(higher)
    if n == 0 or m == 0:
        raise ValueError("the rank test needs values on both sides")
    observed = u_statistic(lower, higher)
    pooled = [*lower, *higher]
    total = math.comb(n + m, m)
    if total > MAX_ENUMERATION:
        return _normal_p(observed, n, m)
    at_least = 0
    indices = range(n + m)
    for chosen in itertools.combinations(indices, m):
        picked = set(chosen)
        high = [pooled[i] for i in chosen]
        low = [pooled[i] for i in indices if i not in picked]
        if u_statistic(low, high) >= observed - 1e-9:
            at_least += 1
    return at_least / total


def smallest_p(n: int, m: int) -> float:
    """The smallest p-value the exact test can give with n and m rounds: 1 / C(n + m, n)."""
    return 1.0 / math.comb(n + m, n)


def achievable_size(n: int, m: int, alpha: float = ALPHA) -> float:
    """The false-alarm rate of one figure: the largest exact p-value level at or below ``alpha`` that
    distinct values reach (U = mn, mn - 1, ... in the upper tail)."""
    counts: dict[int, int] = {}
    for chosen in itertools.combinations(range(n + m), m):
        rank_sum = sum(chosen)  # ranks 0..n+m-1 of distinct values
        u = rank_sum - m * (m - 1) // 2
        counts[u] = counts.get(u, 0) + 1
    total = math.comb(n + m, m)
    size, tail = 0.0, 0
    for u in sorted(counts, reverse=True):
        tail += counts[u]
        if tail / total > alpha:
            break
        size = tail / total
    return size


def _normal_p(u: float, n: int, m: int) -> float:
    mean = n * m / 2
    sd = math.sqrt(n * m * (n + m + 1) / 12)
    z = (u - 0.5 - mean) / sd
    return 0.5 * math.erfc(z / math.sqrt(2))


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
