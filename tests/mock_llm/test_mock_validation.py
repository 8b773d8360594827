"""The mock's own request parsing: nesting refused with 400 before the decoder recurses, in time linear
in the body (the mock accepts bodies up to 32 MB)."""

from __future__ import annotations

import pytest
from timingkit import OverBudget, best_time, watchdog

from mock_llm.validation import MAX_BODY_BYTES, MAX_JSON_DEPTH, InvalidRequest, parse_json_object

OPEN = b'{"model": "m", "a": ' + b"[]" * (MAX_JSON_DEPTH + 1) + b', "b": "'


def unclosed_string(size: int, piece: bytes = b'\\"') -> bytes:
    """Enough brackets to need a scan, then a string that never closes: escaped quotes are where a
    backtracking scan restarts."""
    return OPEN + piece * ((size - len(OPEN)) // len(piece))


@pytest.mark.parametrize(
    ("body", "nested"),
    [
        (b"[" * 100_000, True),
        (b"{" + b'"a": {' * (MAX_JSON_DEPTH + 1), True),
        (b'{"a": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}", False),
        (b'{"a": "' + b"[" * 10_000 + b'"}', False),  # brackets in a string do not nest
        (unclosed_string(4096), False),
    ],
)
def test_nesting_past_the_limit_is_a_400_naming_it(body: bytes, nested: bool) -> None:
    try:
        parse_json_object(body)
    except InvalidRequest as exc:
        assert ("nested deeper than" in str(exc)) is nested, exc
    else:
        assert not nested


SCREEN_BUDGET_S = 10.0  # about 1 s here for the largest body; a quadratic scan would take days


@pytest.mark.parametrize("piece", [b'\\"', b"\\", b'"'], ids=["escaped-quotes", "backslashes", "quotes"])
def test_the_largest_body_is_parsed_within_a_time_budget(piece: bytes) -> None:
    body = unclosed_string(MAX_BODY_BYTES, piece)
    try:
        with watchdog(SCREEN_BUDGET_S), pytest.raises(InvalidRequest):
            parse_json_object(body)
    except OverBudget:
        pytest.fail(f"parsing {len(body)} bytes of {piece!r} took over {SCREEN_BUDGET_S} s")


SIZES_KB = (4, 32, 256)
GROWTH_SLACK = 3.0  # 8x the body may take 8 x 3 the time; a quadratic scan takes 64x


def test_parse_time_grows_linearly_with_the_body() -> None:
    times: list[float] = []
    for kb in SIZES_KB:
        body = unclosed_string(kb * 1024)

        def parse(body: bytes = body) -> None:
            with pytest.raises(InvalidRequest):
                parse_json_object(body)

        took = best_time(parse, runs=30, within_s=1.0, budget_s=60.0)
        if times:
            ratio = took / times[-1]
            limit = SIZES_KB[len(times)] / SIZES_KB[len(times) - 1] * GROWTH_SLACK
            assert ratio <= limit, f"{kb} KB took {ratio:.1f}x the time of the last size, over {limit:g}x"
        times.append(took)
