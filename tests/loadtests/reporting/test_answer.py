"""The README's five-line answer: its numbers are the run's points and capacity searches, its statuses the
verdict's, and what a run lacks is said to be missing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from loadtests.analysis.synthetic import modify, synthetic_run
from loadtests.reporting.answer import answer_block
from loadtests.results import Point, RunResults


def _run() -> RunResults:
    run = synthetic_run(
        variants=("flask-sync", "fastapi-async", "flask-gevent", "fastapi-def"),
        scenarios=("analyse",),
        users=(16, 128),
        seed=3,
    )
    run.capacity = [
        {
            "variant": "flask-sync",
            "scenario": "analyse",
            "users": 4,
            "bound": "concurrency",
            "interval": [4, 5],
        },
        {
            "variant": "fastapi-async",
            "scenario": "analyse",
            "users": 208,
            "bound": "server_cpu",
            "interval": [208, 224],
        },
        {"variant": "fastapi-def", "scenario": "analyse", "users": 45, "bound": "concurrency"},  # no interval
    ]
    return run


def _verdict(**statuses: str) -> dict[str, Any]:
    ids = ("flask-sync-holds-4", "fastapi-async-holds-100", "framework-decides", "price-of-128-sync-vs-async")
    return {"claims": [{"id": i, "status": statuses.get(i.replace("-", "_"), "reproduced")} for i in ids]}


def _lines(run: RunResults, verdict: dict[str, Any]) -> list[str]:
    lines = answer_block(run, verdict, run_name="results/x").splitlines()
    assert [line.split(".", 1)[0] for line in lines] == ["1", "2", "3", "4", "5"]
    return lines


def test_each_number_is_the_runs_own() -> None:
    run = _run()
    lines = _lines(run, _verdict())
    at_128 = {p.variant: p for p in run.points if p.users == 128}
    fastapi = at_128["fastapi-async"]
    assert fastapi.latency_ms is not None
    assert f"{fastapi.throughput_rps:.1f} rps, p95 {fastapi.latency_ms.p95 / 1000:.2f} s" in lines[1]
    assert "capacity within the SLO: 208-224 users (`server_cpu`)" in lines[1]  # the interval, not 208
    flask = at_128["flask-sync"]
    assert flask.latency_ms is not None
    peak = max(p.upstream_peak_in_flight or 0 for p in run.points if p.variant == "flask-sync")
    assert f"never had more than {peak} upstream calls" in lines[0]
    assert f"p50 {flask.latency_ms.p50 / 1000:.1f} s" in lines[0]
    # Only the serving models the run has, each with its own search (or none).
    assert "FastAPI with a plain `def` endpoint 45+ users (`concurrency`)" in lines[2]  # nothing failed above
    assert "Flask on gevent workers no capacity search" in lines[2]
    assert "granian" not in lines[2]
    assert "`results/x` (preset `synthetic`, L = 1 s" in lines[4]


def test_a_changed_point_or_status_changes_the_answer() -> None:
    run = _run()
    before = _lines(run, _verdict())

    def slower(p: Point) -> Point:
        if (p.variant, p.users) == ("fastapi-async", 128):
            return replace(p, throughput_rps=61.25)
        return p

    changed = modify(run, slower)
    changed.capacity = run.capacity  # modify keeps points and metadata; the searches stay the same
    after = _lines(changed, _verdict(fastapi_async_holds_100="not_reproduced"))
    assert before[1] != after[1]
    assert "61.2 rps" in after[1] and "(not reproduced)" in after[1]
    assert before[0] == after[0]


def test_memory_is_measured_uss_at_one_level_or_said_missing() -> None:
    run = _run()
    assert "No measured memory" in _lines(run, _verdict())[3]

    def with_uss(p: Point) -> Point:
        if p.variant == "fastapi-async" and p.users == 128:
            return replace(p, server_uss_mb=106.4)
        return p

    line = _lines(modify(run, with_uss), _verdict())[3]
    assert "At 128 users, fastapi-async held 128 calls in flight with 106 MB" in line
    assert "flask-sync-64" not in line  # not in the run: not invented


def test_a_run_without_the_articles_variants_says_so() -> None:
    run = synthetic_run(variants=("flask-gevent",), scenarios=("analyse",), users=(16, 128))
    lines = _lines(run, {"claims": []})
    assert "(not judged)" in lines[0] and "no valid point" in lines[0]
    assert "fastapi-async: no valid point" in lines[1]
    invalid = modify(_run(), lambda p: replace(p, valid=False) if p.variant == "fastapi-async" else p)
    assert "fastapi-async: no valid point" in _lines(invalid, _verdict())[1]
