"""Memory per call in flight, the capacity plan, the price of 128 in flight, what failed first at reach."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from loadtests.analysis.claims import SYNC_PRICE_ID
from loadtests.analysis.memory import fit_memory, least_squares, memory_fits
from loadtests.analysis.plan import capacity_plan
from loadtests.analysis.reach import ReachFacts, first_failure
from loadtests.analysis.synthetic import modify, synthetic_run
from loadtests.analysis.verdict import compute_verdict
from loadtests.results import Point


def test_least_squares_agrees_with_numpy() -> None:
    rng = np.random.default_rng(7)
    xs = np.array([2.0, 8.0, 32.0, 64.0, 128.0, 128.0])
    ys = 90.0 + 0.08 * xs + rng.normal(0, 0.7, xs.size)
    fit = least_squares(list(xs), list(ys))
    assert fit is not None
    slope, intercept = np.polyfit(xs, ys, 1)
    assert fit.slope == pytest.approx(slope) and fit.intercept == pytest.approx(intercept)
    assert fit.r2 == pytest.approx(np.corrcoef(xs, ys)[0, 1] ** 2)
    design = np.column_stack([np.ones_like(xs), xs])
    _beta, residual, *_ = np.linalg.lstsq(design, ys, rcond=None)
    covariance = residual[0] / (xs.size - 2) * np.linalg.inv(design.T @ design)
    assert fit.slope_se == pytest.approx(np.sqrt(covariance[1, 1]))
    assert least_squares([4.0, 4.0], [1.0, 2.0]) is None  # no spread in x: no slope


def _memory(p: Point, *, base: float, per_call: float, worker: float, workers: int) -> Point:
    in_flight = float(p.upstream_peak_in_flight or 0)
    leaves = [worker] * workers
    return replace(
        p,
        in_flight_mean=in_flight,
        server_uss_mb=base + per_call * in_flight + worker * workers,
        server_rss_mb=2 * (base + worker * workers),
        extra={**p.extra, "memory": {"leaf_uss_mb": leaves, "processes_max": workers + 2}},
    )


def _run():  # type: ignore[no-untyped-def]
    run = synthetic_run(
        variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), users=(2, 8, 32, 128)
    )

    def add(p: Point) -> Point:
        if p.variant == "flask-sync":
            return _memory(p, base=25.0, per_call=0.0, worker=16.0, workers=4)
        return _memory(p, base=10.0, per_call=0.075, worker=86.0, workers=1)

    return modify(run, add)


def test_the_slope_is_memory_per_call_and_a_ceiling_is_not_a_slope() -> None:
    fits = {f.variant: f for f in memory_fits(_run())}
    assert fits["fastapi-async"].usable and fits["fastapi-async"].kb_per_call == pytest.approx(76.8)
    assert fits["fastapi-async"].levels == 4 and fits["fastapi-async"].r2 == pytest.approx(1.0)
    assert not fits["flask-sync"].usable and "concurrency ceiling" in fits["flask-sync"].why_not
    assert fit_memory("x", "analyse", []).why_not == "no valid point with a memory reading"


def test_the_plan_replicates_processes_at_a_measured_ceiling_and_says_where_the_machine_ends() -> None:
    rows = {(r.variant, r.calls): r for r in capacity_plan(_run())}
    sync = rows[("flask-sync", 100)]
    assert sync.model == "processes" and sync.processes == 100
    assert sync.memory_mb == pytest.approx(25.0 + 4 * 16.0 + 96 * 16.0)
    assert sync.check.startswith("not measured: this run held at most 4 calls in flight")
    fast = rows[("fastapi-async", 100)]
    assert fast.model == "slope" and fast.memory_mb == pytest.approx(96.0 + 0.075 * 100)
    assert "128 users, 128 in flight" in fast.check and fast.check_error == pytest.approx(0.0, abs=1e-9)
    big = rows[("fastapi-async", 10_000)]
    assert big.cpu_cores is not None and big.cpu_cores > 2
    assert big.beyond == [f"beyond this machine: {big.cpu_cores:.1f} cores of 2"]
    assert big.check.startswith("not measured")


def test_the_price_of_128_in_flight_is_stated_with_the_measured_numbers() -> None:
    claim = next(c for c in compute_verdict(_run()).claims if c.id == SYNC_PRICE_ID)
    assert claim.status == "reproduced"
    # 128 x 16 MB + (25 + 64 - 64) MB of master and launcher, against the measured 105.6 MB at 128.
    assert "128 x 16.0 MB (median worker USS" in claim.evidence and "= 2,073 MB" in claim.evidence
    assert "fastapi-async at 128 users (128 in flight): 106 MB USS measured" in claim.evidence
    bare = modify(
        _run(), lambda p: replace(p, server_uss_mb=None, extra={}) if p.variant == "flask-sync" else p
    )
    assert next(c for c in compute_verdict(bare).claims if c.id == SYNC_PRICE_ID).status == "inconclusive"


def test_reach_names_the_cause_before_its_consequences() -> None:
    point = _run().points[-1]
    facts = ReachFacts(streams=128, latency_s=1.0, open_file_errors=0, available_memory_min_mb=None,
                       memory_total_mb=24000.0)  # fmt: skip
    assert first_failure(point, facts)[0] == "nothing" and first_failure(point, facts)[2]
    broken = replace(point, failed=40, failures_by_status={"503": 40})
    assert first_failure(broken, facts)[0] == "503 shedding"
    assert first_failure(broken, replace(facts, open_file_errors=3))[0] == "open files"
    capped = replace(point, upstream_peak_in_flight=100)
    assert first_failure(capped, facts)[:2] == (
        "concurrency cap",
        "the mock saw at most 100 of 128 streams in flight",
    )
    refused = replace(point, failed=5, failures_by_status={"error:ConnectionRefusedError": 5})
    assert first_failure(refused, facts)[:2] == (
        "connection errors",
        "5 transport errors (ConnectionRefusedError 5); held 128",
    )
    busy = replace(
        capped, extra={**capped.extra, "server_cpu_bound": True, "server_max_process_percent": 99.5}
    )
    assert first_failure(busy, facts)[0] == "server CPU"  # the CPU explains the shortfall, not a cap
    starved = replace(refused, invalid_reasons=["load generator locust used 97% of a core"])
    assert first_failure(starved, facts)[0] == "load generator CPU"
    # Refusals retried at once load the load generator: the 503s are the cause, its CPU the consequence.
    storm = replace(broken, invalid_reasons=["load generator locust used 96% of a core"])
    failure, detail, held = first_failure(storm, facts)
    assert (failure, held) == ("503 shedding", False) and "locust used 96% of a core" in detail
    # A few 503s among many transport errors are not what broke first.
    mixed = replace(storm, failed=45, failures_by_status={"503": 5, "error:TimeoutError": 40})
    assert first_failure(mixed, facts)[0] == "load generator CPU"
    # Held, none failed, but the figures disagree: not "nothing". Both cores busy names the machine.
    slowed = replace(point, valid=False, invalid_reasons=["Little's law off by 24%"],
                     extra={**point.extra, "machine_busy_percent": 199.9})  # fmt: skip
    failure, detail, ok = first_failure(slowed, replace(facts, cpu_count=2))
    assert (failure, ok) == ("machine CPU", False) and "Little's law off by 24%" in detail
    assert first_failure(slowed, replace(facts, cpu_count=4))[0] == "not steady"
