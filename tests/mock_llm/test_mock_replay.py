"""Tailed profiles and the replay model in-process: quantile fits, trace files, KS distances."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest

from mock_llm.profiles import AGENTIC_TURN, SMALL_MODEL_TTFT, Quantiles, get_profile, plan_latency
from mock_llm.replay import Replayer, ks_critical, ks_distance, load_trace


def _quantile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[int(p * len(ordered))]


def test_the_small_model_profile_draws_its_published_ttft_quantiles() -> None:
    profile = get_profile("haiku-tail")
    rng = random.Random(5)
    plans = [plan_latency(profile, output_tokens=340, time_scale=1.0, rng=rng) for _ in range(20_000)]
    ttfts = [plan.ttft_s for plan in plans]
    assert statistics.median(ttfts) == pytest.approx(0.73, rel=0.02)
    assert _quantile(ttfts, 0.95) == pytest.approx(1.1, rel=0.03)
    assert plans[0].total_s == pytest.approx(plans[0].ttft_s + 340 / 68)


def test_the_agentic_profile_draws_whole_calls_through_its_three_quantiles() -> None:
    profile = get_profile("agentic")
    rng = random.Random(6)
    plans = [plan_latency(profile, output_tokens=500, time_scale=0.5, rng=rng) for _ in range(40_000)]
    totals = [plan.total_s / 0.5 for plan in plans]
    assert statistics.median(totals) == pytest.approx(5.6, rel=0.03)
    assert _quantile(totals, 0.95) == pytest.approx(19.0, rel=0.05)
    assert _quantile(totals, 0.99) == pytest.approx(42.0, rel=0.08)
    assert max(totals) <= AGENTIC_TURN.quantile(0.999) + 1e-9  # clamped at p99.9, no absurd draw
    assert all(plan.ttft_s <= plan.total_s for plan in plans)
    assert profile.nominal_total_s() == pytest.approx(5.6)


def test_quantiles_reproduce_their_points_and_refuse_disorder() -> None:
    for p, value in AGENTIC_TURN.points + SMALL_MODEL_TTFT.points:
        fitted = AGENTIC_TURN if (p, value) in AGENTIC_TURN.points else SMALL_MODEL_TTFT
        assert fitted.quantile(p) == pytest.approx(value)
    with pytest.raises(ValueError, match="increasing"):
        Quantiles(points=((0.5, 2.0), (0.95, 1.0)))


def test_ks_distance_against_hand_computed_cases() -> None:
    assert ks_distance([1, 2, 3], [1, 2, 3]) == 0.0
    assert ks_distance([1, 2], [3, 4]) == 1.0
    assert ks_distance([1, 2, 3, 4], [3, 4, 5, 6]) == pytest.approx(0.5)  # at 2: 2/4 vs 0
    assert ks_critical(40, 40) == pytest.approx(1.3581 * (80 / 1600) ** 0.5)


def test_a_csv_trace_with_rates_and_a_jsonl_trace_with_totals(tmp_path: Path) -> None:
    csv_file = tmp_path / "calls.csv"
    csv_file.write_text("ttft_s,tokens_per_s,output_tokens,endpoint\n0.5,100,200,/v1/messages\n0.25,,,x\n")
    with pytest.raises(ValueError, match=r"calls.csv:3: give total_s, or tokens_per_s"):
        load_trace(csv_file)
    csv_file.write_text("ttft_s,tokens_per_s,output_tokens\n0.5,100,200\n")
    (record,) = load_trace(csv_file)
    assert record.total_s == pytest.approx(2.5) and record.tokens_per_s() == pytest.approx(100)
    jsonl = tmp_path / "calls.jsonl"
    jsonl.write_text('{"ttft_s": 0.2, "total_s": 1.0}\n\n{"ttft_s": 0.3, "total_s": 0.1}\n')
    with pytest.raises(ValueError, match=r"calls.jsonl:3: total_s \(0.1\) is shorter than ttft_s"):
        load_trace(jsonl)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no records"),
        ("[1, 2]\n", ":1: not a JSON object"),
        ('{"ttft_s": "soon", "total_s": 1}\n', "ttft_s: expected a number"),
        ('{"ttft_s": -1, "total_s": 1}\n', "at least 0"),
        ('{"total_s": 1}\n', "ttft_s is required"),
        ('{"ttft_s": 0.1, "total_s": 1, "output_tokens": 2.5}\n', "whole number"),
    ],
)
def test_a_bad_trace_is_named(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=fragment):
        load_trace(path)
    with pytest.raises(ValueError, match=r"missing\.jsonl"):
        get_profile(f"replay:{tmp_path / 'missing.jsonl'}")


def test_the_replayer_hands_out_records_in_turn_and_measures_its_own_accuracy(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(f'{{"ttft_s": {0.1 * i}, "total_s": {0.1 * i + 1}}}\n' for i in range(1, 5)))
    profile = get_profile(f"replay:{path}")
    assert profile.nominal_total_s() == pytest.approx(1.25)
    replayer = Replayer(profile.replay or (), path=str(path), time_scale=0.5, seed=0)
    plans = [replayer.next_call() for _ in range(5)]
    assert [round(plan.ttft_s, 3) for _, plan in plans] == [0.05, 0.1, 0.15, 0.2, 0.05]  # in turn, wrapped
    for record, plan in plans[:4]:  # reproduced exactly: D = 0
        replayer.observe(record, ttft_s=plan.ttft_s, total_s=plan.total_s)
    ks = replayer.snapshot()["ks"]
    assert ks["ttft_s"]["d"] == 0 and ks["total_s"]["d"] == 0 and ks["tokens_per_s"] is None
    replayer.reset()
    for record, plan in plans[:4]:  # every call 0.5 s late at time scale 0.5: one whole second in the file
        replayer.observe(record, ttft_s=plan.ttft_s + 0.5, total_s=plan.total_s + 0.5)
    snapshot = replayer.snapshot()
    assert snapshot["ks"]["total_s"]["d"] == 1.0 and snapshot["replayed"] == 5
    assert snapshot["ks"]["total_s"]["d"] > snapshot["ks"]["total_s"]["critical_05"]
