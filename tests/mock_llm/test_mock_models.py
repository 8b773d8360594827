"""Seeded unit tests of the pure models: latency, faults, content, validation."""

from __future__ import annotations

import itertools
import json
import random
import statistics

import pytest

from mock_llm.content import MAX_FINDINGS, MIN_FINDINGS, Completion, complete, count_tokens, split_pieces
from mock_llm.faults import FAULT_KINDS, FaultConfig, FaultModel, parse_kinds, stall_cap_s
from mock_llm.profiles import PROFILES, LatencyPlan, delta_groups, delta_times, get_profile, plan_latency
from mock_llm.validation import InvalidRequest, parse_json_object, validate_messages

# ---- latency ------------------------------------------------------------------------------------------


def test_article_is_exactly_two_seconds_times_scale_with_a_quarter_ttft() -> None:
    rng = random.Random(0)
    state = rng.getstate()
    plan = plan_latency(PROFILES["article"], output_tokens=500, time_scale=0.5, rng=rng)
    assert plan == LatencyPlan(ttft_s=0.25, total_s=1.0)
    assert rng.getstate() == state  # a fixed profile draws nothing


def test_instant_has_no_delay() -> None:
    plan = plan_latency(PROFILES["instant"], output_tokens=900, time_scale=1.0, rng=random.Random(0))
    assert plan == LatencyPlan(ttft_s=0.0, total_s=0.0)


@pytest.mark.parametrize(
    ("name", "median", "rate"), [("haiku", 0.8, 100), ("sonnet", 1.2, 75), ("opus", 2.0, 45)]
)
def test_realistic_profiles_draw_lognormal_ttft_around_the_median(
    name: str, median: float, rate: float
) -> None:
    profile = get_profile(name)
    rng = random.Random(42)
    plans = [plan_latency(profile, output_tokens=300, time_scale=1.0, rng=rng) for _ in range(4000)]
    ttfts = [p.ttft_s for p in plans]
    assert statistics.median(ttfts) == pytest.approx(median, rel=0.05)
    assert min(ttfts) >= median / 4 and max(ttfts) <= median * 4
    assert len(set(ttfts)) > 3000  # really drawn, not fixed
    for plan in plans[:50]:
        assert plan.total_s == pytest.approx(plan.ttft_s + 300 / rate)


def test_realistic_draws_are_seeded_and_scaled() -> None:
    profile = get_profile("sonnet")
    a = [plan_latency(profile, output_tokens=100, time_scale=1.0, rng=r) for r in [random.Random(7)] * 5]
    b = [plan_latency(profile, output_tokens=100, time_scale=1.0, rng=r) for r in [random.Random(7)] * 5]
    assert a == b
    scaled = plan_latency(profile, output_tokens=100, time_scale=0.1, rng=random.Random(7))
    assert scaled.total_s == pytest.approx(a[0].total_s * 0.1)


def test_longer_answers_take_longer() -> None:
    profile = get_profile("opus")
    short = plan_latency(profile, output_tokens=50, time_scale=1.0, rng=random.Random(1))
    long = plan_latency(profile, output_tokens=500, time_scale=1.0, rng=random.Random(1))
    assert long.total_s - short.total_s == pytest.approx(450 / 45)


def test_unknown_profile_is_named() -> None:
    with pytest.raises(ValueError, match="'gpt'"):
        get_profile("gpt")


def test_deltas_are_spread_from_ttft_to_the_last_byte() -> None:
    plan = LatencyPlan(ttft_s=0.5, total_s=2.0)
    groups = delta_groups(300, plan)
    assert sum(groups) == 300
    assert len(groups) == 1 + int(1.5 / 0.05)  # one delta per 50 ms gap at most
    times = delta_times(len(groups), plan)
    assert times[0] == pytest.approx(0.5) and times[-1] == pytest.approx(2.0)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) == pytest.approx(max(gaps)) and min(gaps) >= 0.05 - 1e-9
    # Without time to spread over, a few deltas go out back to back; never more deltas than pieces.
    assert len(delta_groups(300, LatencyPlan(ttft_s=0.0, total_s=0.0))) == 16
    assert delta_groups(3, plan) == [1, 1, 1]
    assert delta_groups(0, plan) == []


# ---- faults -------------------------------------------------------------------------------------------


def test_fault_draws_are_seeded_and_match_the_rate() -> None:
    config = FaultConfig(error_rate=0.3, kinds=("429", "529"))
    first = [FaultModel(config, seed=5).draw() for _ in range(1)]
    model_a, model_b = FaultModel(config, seed=5), FaultModel(config, seed=5)
    draws_a = [model_a.draw() for _ in range(5000)]
    assert draws_a == [model_b.draw() for _ in range(5000)]
    assert first[0] == draws_a[0]
    faults = [d for d in draws_a if d is not None]
    assert len(faults) / 5000 == pytest.approx(0.3, abs=0.03)
    assert set(faults) == {"429", "529"}
    other = FaultModel(config, seed=6)
    assert [other.draw() for _ in range(5000)] != draws_a


def test_zero_rate_never_faults() -> None:
    model = FaultModel(FaultConfig(error_rate=0.0), seed=1)
    assert all(model.draw() is None for _ in range(1000))


def test_forced_faults_apply_to_the_first_n_requests_per_key() -> None:
    model = FaultModel(FaultConfig(), seed=0)
    assert [model.forced("429", times=2, key="a") for _ in range(4)] == [True, True, False, False]
    assert model.forced("429", times=2, key="b") is True  # keys count separately
    assert all(model.forced("500", times=None, key="a") for _ in range(3))  # no times: every request
    model.reset()
    assert model.forced("429", times=2, key="a") is True


def test_fault_config_names_bad_values() -> None:
    assert parse_kinds("429, stall") == ("429", "stall")
    with pytest.raises(ValueError, match="'418'"):
        parse_kinds("429,418")
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultConfig(error_rate=1.5)
    # The mid-stream kinds are opt-in: a default --error-rate run draws exactly what it drew before.
    assert FaultConfig().kinds == ("429", "529", "500", "stream_error", "stall")
    assert set(parse_kinds("slow_drip,drop_midstream,stall_midstream,truncated")) | set(
        FaultConfig().kinds
    ) == set(FAULT_KINDS)
    assert stall_cap_s(1.0) == 600.0 and stall_cap_s(0.0) == 5.0


# ---- content ------------------------------------------------------------------------------------------


def _complete(text: str, *, system: str | None = None, seed: int = 0, **kw: object) -> Completion:
    messages = [{"role": "user", "content": text}]
    args: dict[str, object] = {"max_tokens": 1024, "stop_sequences": None} | kw
    return complete(seed=seed, model="m", system=system, messages=messages, **args)  # type: ignore[arg-type]


def test_content_is_deterministic_per_input_and_seed() -> None:
    a = _complete("hello", seed=1)
    assert a == _complete("hello", seed=1)
    assert a != _complete("hello", seed=2)
    assert a != _complete("hello again", seed=1)


def test_json_answers_have_the_documented_shape() -> None:
    counts = set()
    for i in range(60):
        result = _complete(f"document {i}", system="Reply with JSON only.")
        data = json.loads(result.text)
        assert set(data) == {"summary", "findings"} and isinstance(data["summary"], str)
        assert MIN_FINDINGS <= len(data["findings"]) <= MAX_FINDINGS
        for finding in data["findings"]:
            assert set(finding) == {"title", "detail", "severity"}
            assert finding["severity"] in ("low", "medium", "high")
        counts.add(len(data["findings"]))
        assert result.output_tokens < 1024 * 0.75
        assert result.stop_reason == "end_turn"
    assert len(counts) >= 6  # the count really varies with the input


def test_prose_without_json_in_the_system_prompt() -> None:
    result = _complete("hello", system="Be brief.")
    assert result.text.startswith("## ")
    assert 100 < result.output_tokens < 800
    assert result.output_tokens == count_tokens(result.text)


def test_max_tokens_and_stop_sequences_cut_the_answer() -> None:
    full = _complete("hello")
    cut = _complete("hello", max_tokens=10)
    assert cut.stop_reason == "max_tokens" and cut.output_tokens == 10
    assert full.text.startswith(cut.text) and len(cut.text) == 40
    word = full.text.split()[5]
    stopped = _complete("hello", stop_sequences=["zzz-never", word])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == word
    assert stopped.text == full.text[: full.text.index(word)]


def test_split_pieces_keeps_every_character() -> None:
    text = "a bb  ccc\n\nd"
    assert "".join(split_pieces(text)) == text


# ---- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}', "model: Field required"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}', "max_tokens: Field required"),
        (b'{"model": "m", "max_tokens": "5", "messages": []}', "max_tokens"),
        (b'{"model": "m", "max_tokens": 5, "messages": []}', "at least one message"),
        (
            b'{"model": "m", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]}',
            "messages.0.role",
        ),
        (
            b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 3}]}',
            "messages.0.content",
        ),
        (
            b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stream": "y"}',
            "stream",
        ),
    ],
)
def test_validation_names_the_bad_field(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        validate_messages(parse_json_object(body))
