"""The argument types every command shares."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30.0), ("30s", 30.0), ("2m", 120.0), ("1.5h", 5400.0), ("500ms", 0.5)]
)
def test_durations_take_units(text: str, seconds: float) -> None:
    from loadtests.argtypes import parse_duration

    assert parse_duration(text, "--duration") == seconds
