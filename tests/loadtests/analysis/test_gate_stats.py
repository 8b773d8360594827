"""The gate's rank test: exact p-values (checked against brute-force counts), ties, its false-alarm size."""

from __future__ import annotations

import itertools
import random

import pytest

from loadtests.analysis import gate_stats


def test_complete_separation_gives_the_smallest_p() -> None:
    assert gate_stats.p_greater([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(1 / 252)
    assert gate_stats.smallest_p(5, 5) == pytest.approx(1 / 252)
    # One pair out of order: U = 24 of 25, two splits of 252 reach it.
    assert gate_stats.p_greater([1, 2, 3, 4, 6], [5, 7, 8, 9, 10]) == pytest.approx(2 / 252)


def test_p_is_a_tail_probability_in_both_directions() -> None:
    low, high = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]
    assert gate_stats.p_greater(low, high) == pytest.approx(1 / 20)
    assert gate_stats.p_greater(high, low) == 1.0


def test_ties_count_one_half() -> None:
    assert gate_stats.u_statistic([1, 2], [2, 3]) == 3.5
    same = [5.0] * 5
    assert gate_stats.p_greater(same, same) == 1.0  # every split ties: no evidence at all


def test_the_size_under_the_null_is_at_most_alpha() -> None:
    """Draw both sides from one distribution many times: the rejection rate is the exact size."""
    rng = random.Random(7)
    trials = 1500
    rejected = sum(
        gate_stats.p_greater([rng.gauss(5, 1) for _ in range(5)], [rng.gauss(5, 1) for _ in range(5)])
        <= gate_stats.ALPHA
        for _ in range(trials)
    )
    size = gate_stats.achievable_size(5, 5)
    assert size == pytest.approx(2 / 252)
    assert rejected / trials < 2 * size  # 0.79 % expected; 1.6 % would be far outside binomial noise


def test_the_exact_p_matches_a_count_over_all_relabellings() -> None:
    base, head = [4.8, 5.1, 5.3, 4.9, 6.0], [5.2, 6.1, 5.9, 6.3, 5.0]
    observed = gate_stats.u_statistic(base, head)
    pooled = base + head
    count = sum(
        gate_stats.u_statistic([pooled[i] for i in range(10) if i not in c], [pooled[i] for i in c])
        >= observed
        for c in map(set, itertools.combinations(range(10), 5))
    )
    assert gate_stats.p_greater(base, head) == pytest.approx(count / 252)
    assert 0.01 < gate_stats.p_greater(base, head) < 0.2
