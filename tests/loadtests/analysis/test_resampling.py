"""The bootstrap interval of a ratio of means."""

from __future__ import annotations

import pytest

from loadtests.analysis.resampling import ratio_interval


def test_the_bootstrap_is_seeded_and_brackets_the_ratio() -> None:
    a = ratio_interval([10.0, 10.5, 9.5], [8.0, 8.2, 7.9])
    b = ratio_interval([10.0, 10.5, 9.5], [8.0, 8.2, 7.9])
    assert a == b
    assert a.low <= a.ratio <= a.high < 1.0 and a.excludes_one()
    with pytest.raises(ValueError, match="two values"):
        ratio_interval([1.0], [1.0, 2.0])
