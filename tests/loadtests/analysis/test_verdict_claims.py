from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from loadtests.analysis.synthetic import DEFAULT_VARIANTS, modify, synthetic_run
from loadtests.analysis.verdict import compute_verdict
from loadtests.presets import PRESETS


def _statuses(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.id: c.status for c in compute_verdict(run).claims}


def _claim(run, claim_id: str):  # type: ignore[no-untyped-def]
    return next(c for c in compute_verdict(run).claims if c.id == claim_id)


# The claims' outcomes on real measurements are tested in tests/loadtests/test_sweep_verdict_real.py;
# here, synthetic runs only perturb one figure at a time to reach each branch of the rules.


def test_flask_holding_100_plus_is_not_reproduced() -> None:
    run = synthetic_run(
        variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), ceilings={"flask-sync": 4000}
    )
    claim = _claim(run, "flask-sync-holds-4")
    assert claim.status == "not_reproduced"
    assert "measured ceiling 256 in flight (max at 256 users), above the claimed 4" in claim.evidence


def test_too_few_points_is_inconclusive() -> None:
    run = synthetic_run(variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), users=(1, 4, 6))
    statuses = _statuses(run)
    assert statuses["flask-sync-holds-4"] == "inconclusive"  # 6 users do not saturate 4 workers clearly
    assert "a level of at least 8 users" in _claim(run, "flask-sync-holds-4").evidence
    assert statuses["fastapi-async-holds-100"] == "inconclusive"  # never reached 100 users
    assert "highest valid: 6 users" in _claim(run, "fastapi-async-holds-100").evidence
    assert "framework-decides" not in statuses  # no variant that could decide it ran


def test_invalid_points_do_not_count() -> None:
    run = synthetic_run(
        variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), ceilings={"flask-sync": 4000}
    )
    # The contradicting flask-sync points are all invalid: nothing is left to decide on.
    run = modify(
        run, lambda p: replace(p, valid=False, invalid_reasons=["x"]) if p.variant == "flask-sync" else p
    )
    assert _statuses(run)["flask-sync-holds-4"] == "inconclusive"


def test_fastapi_that_queues_at_100_is_not_comfortable() -> None:
    run = synthetic_run(variants=("fastapi-async",), scenarios=("analyse",), ceilings={"fastapi-async": 64})
    claim = _claim(run, "fastapi-async-holds-100")
    assert claim.status == "not_reproduced"
    assert "measured ceiling 64 in flight at 128 users" in claim.evidence


def test_errors_make_it_uncomfortable() -> None:
    run = synthetic_run(variants=("fastapi-async",), scenarios=("analyse",), users=(64, 128))
    run = modify(run, lambda p: replace(p, failed=5, failures_by_status={"503": 5}) if p.users == 128 else p)
    claim = _claim(run, "fastapi-async-holds-100")
    assert claim.status == "not_reproduced" and "5 failed" in claim.evidence


def test_peak_and_throughput_disagreeing_is_inconclusive() -> None:
    run = synthetic_run(variants=("flask-sync",), scenarios=("analyse",))
    run = modify(run, lambda p: replace(p, throughput_rps=p.throughput_rps * 3) if (p.users or 0) > 4 else p)
    claim = _claim(run, "flask-sync-holds-4")
    assert claim.status == "inconclusive" and "neither decides" in claim.evidence


def test_gthread_short_of_its_ceiling_depends() -> None:
    run = synthetic_run(variants=("flask-gthread",), scenarios=("analyse",))
    run = modify(
        run,
        lambda p: (
            replace(p, upstream_peak_in_flight=min(p.users or 0, 20), throughput_rps=min(p.users or 0, 20))
            if p.variant == "flask-gthread"
            else p
        ),
    )
    claim = _claim(run, "flask-gthread-holds-ceiling")
    assert claim.status == "depends" and "20 in flight of 32 predicted" in claim.evidence


def test_a_run_without_upstream_latency_is_inconclusive() -> None:
    run = synthetic_run(variants=("flask-sync", "fastapi-async"), scenarios=("analyse",))
    del run.metadata["upstream_latency_s"]
    assert set(_statuses(run).values()) == {"inconclusive"}


def test_absent_variants_are_listed_not_judged() -> None:
    verdict = compute_verdict(synthetic_run(variants=("flask-sync", "fastapi-async"), scenarios=("stream",)))
    assert verdict.scenario == "stream"
    assert set(verdict.not_tested) == set(DEFAULT_VARIANTS) - {"flask-sync", "fastapi-async"}
    judged = " ".join(c["evidence"] for c in verdict.to_dict()["claims"])
    assert not any(f"{name} (" in judged for name in verdict.not_tested)


def test_latency_free_points_do_not_crash() -> None:
    run = synthetic_run(variants=("fastapi-async",), scenarios=("analyse",), users=(128,))
    run = modify(run, lambda p: replace(p, latency_ms=None))
    claim = _claim(run, "fastapi-async-holds-100")
    assert claim.status == "not_reproduced" and "p95 unknown" in claim.evidence


def test_the_quick_preset_cannot_decide_fastapi() -> None:
    # The quick preset's levels never reach 100 users: whatever fastapi-async did, it is undecided there,
    # while flask-sync's levels are enough to judge (no "a level of at least 8 users is needed").
    users = PRESETS["quick"].users
    run = synthetic_run(variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), users=users)
    fastapi = _claim(run, "fastapi-async-holds-100")
    assert fastapi.status == "inconclusive" and f"highest valid: {max(users)} users" in fastapi.evidence
    assert "a level of at least" not in _claim(run, "flask-sync-holds-4").evidence


def test_invalid_levels_neither_decide_nor_block_a_cap() -> None:
    # An invalid level is not evidence either way (no prediction decides what it would have shown): the
    # valid ones decide, and the evidence says how many were left out.
    run = synthetic_run(variants=("flask-sync",), scenarios=("analyse",), users=(2, 8, 32, 128))
    run = modify(
        run,
        lambda p: (
            replace(p, valid=False, invalid_reasons=["x"], upstream_peak_in_flight=128)
            if p.users == 128
            else p
        ),
    )
    claim = _claim(run, "flask-sync-holds-4")
    assert claim.status == "reproduced"
    assert "1 invalid level(s) not used" in claim.evidence


def test_a_cap_held_below_its_claim_is_not_reproduced() -> None:
    # Both bounds: one worker instead of four "holds at most 4" only in the sense a stopped clock is right.
    run = synthetic_run(variants=("flask-sync",), scenarios=("analyse",), ceilings={"flask-sync": 1})
    claim = _claim(run, "flask-sync-holds-4")
    assert claim.status == "not_reproduced"
    assert "measured ceiling 1 in flight" in claim.evidence and "below the claimed 4" in claim.evidence


def test_a_cap_is_not_reproduced_by_failures_or_without_the_gauge() -> None:
    run = synthetic_run(variants=("flask-sync",), scenarios=("analyse",))
    failing = modify(run, lambda p: replace(p, failed=p.completed, failures_by_status={"502": p.completed}))
    claim = _claim(failing, "flask-sync-holds-4")
    assert claim.status == "inconclusive" and "of requests failed" in claim.evidence
    blind = modify(run, lambda p: replace(p, upstream_peak_in_flight=None))
    claim = _claim(blind, "flask-sync-holds-4")
    assert claim.status == "inconclusive" and "without the mock's ground truth" in claim.evidence


def test_one_call_above_the_cap_is_not_a_reproduced_cap() -> None:
    run = modify(
        synthetic_run(variants=("flask-sync",), scenarios=("analyse",), noise=0.0),
        lambda p: replace(p, upstream_peak_in_flight=5) if (p.users or 0) > 4 else p,
    )
    assert _claim(run, "flask-sync-holds-4").status != "reproduced"


# Flask on granian: the real-process checks are the ceiling test (512 in flight, tests/servers) and the
# pooled real sweep (a measured ceiling of 8 contradicts it); synthetic runs reach what those cannot: a
# comfortable level of 100+ users on this machine's test budget, and the undecided cases.


def test_flask_granian_comfortable_at_128_is_reproduced() -> None:
    run = synthetic_run(variants=("flask-granian",), scenarios=("analyse",), users=(32, 128, 256))
    claim = _claim(run, "flask-granian-holds-100")
    assert claim.status == "reproduced", claim.evidence
    assert claim.statement == "Flask on granian holds 100+ with no code change"
    assert "at 128 users: 0 failed, peak 128 in flight" in claim.evidence


def test_flask_granian_with_a_measured_ceiling_below_100_is_contradicted() -> None:
    # The prediction (512) never decides: the measured ceiling of 40 does, at levels below 100 users too.
    run = synthetic_run(
        variants=("flask-granian",), scenarios=("analyse",), users=(16, 64), ceilings={"flask-granian": 40}
    )
    run = modify(run, lambda p: replace(p, predicted_ceiling=512))
    claim = _claim(run, "flask-granian-holds-100")
    assert claim.status == "not_reproduced", claim.evidence
    assert claim.evidence.startswith("contradicted by the measurement: flask-granian (analyse")
    assert "measured ceiling 40 in flight at 64 users" in claim.evidence


def test_flask_granian_slow_at_every_level_of_100_plus_is_contradicted() -> None:
    run = synthetic_run(variants=("flask-granian",), scenarios=("analyse",), users=(128, 256))
    run = modify(run, lambda p: replace(p, throughput_rps=p.throughput_rps * 0.7))
    claim = _claim(run, "flask-granian-holds-100")
    assert claim.status == "not_reproduced" and claim.evidence.startswith("contradicted")
    assert "< 90% of users/L" in claim.evidence


def test_flask_granian_below_100_users_without_a_ceiling_is_inconclusive() -> None:
    run = synthetic_run(variants=("flask-granian",), scenarios=("analyse",), users=(8, 64))
    claim = _claim(run, "flask-granian-holds-100")
    assert claim.status == "inconclusive" and "highest valid: 64 users" in claim.evidence


def test_flask_granian_not_run_is_not_tested() -> None:
    verdict = compute_verdict(synthetic_run(variants=("flask-sync",), scenarios=("analyse",)))
    assert "flask-granian" in verdict.not_tested
    assert "flask-granian-holds-100" not in {c.id for c in verdict.claims}


def test_a_reach_run_judges_each_level_by_its_own_l() -> None:
    """The committed reach run: L is 60 s at 1,000 streams and 125 s at 5,000. fastapi-workers streamed
    every one of its 5,000 in 125 s, which is 1.00 x its L, not 2.09 x the first level's."""
    from loadtests.results import load_results

    run = load_results(Path(__file__).resolve().parents[3] / "results" / "reach-20261201-matrix")
    claim = next(c for c in compute_verdict(run).claims if c.id == "fastapi-workers-holds-100")
    assert claim.status == "reproduced", claim.evidence
    assert "at 1000 users (L = 60 s)" in claim.evidence
    assert "at 5000 users (L = 125 s): 0 failed, peak 5000 in flight, p95 125 s = 1.00 x L" in claim.evidence
    assert "x L" in claim.evidence and "2.09 x L" not in claim.evidence


def _with_intervals(
    run, variant: str, *, p95_ci: tuple[float, float], thr_ci: tuple[float, float] | None = None
):  # type: ignore[no-untyped-def]
    """Every point of ``variant`` given a p95 interval (and a throughput interval) around its figures."""

    def change(p):  # type: ignore[no-untyped-def]
        if p.variant != variant or p.latency_ms is None:
            return p
        lo, hi = p95_ci
        rate = thr_ci or (p.throughput_rps, p.throughput_rps)
        return replace(
            p,
            latency_ci_ms={"p95": [p.latency_ms.p95 * lo, p.latency_ms.p95 * hi], "why": {}},
            throughput_ci_rps=[p.throughput_rps * rate[0], p.throughput_rps * rate[1]],
        )

    return modify(run, change)


def test_a_p95_whose_interval_straddles_the_threshold_is_within_the_noise_not_a_status() -> None:
    run = synthetic_run(variants=("fastapi-async",), scenarios=("analyse",))
    assert _claim(run, "fastapi-async-holds-100").status == "reproduced"  # p95 = L: far inside 1.25 L
    # The same p95 with an interval reaching 1.3 x its value (1.3 L): the evidence does not clear 1.25 L.
    noisy = _with_intervals(run, "fastapi-async", p95_ci=(0.9, 1.3))
    claim = _claim(noisy, "fastapi-async-holds-100")
    assert claim.status == "inconclusive" and "within the noise" in claim.evidence
    assert "straddles 1.25 x L" in claim.evidence
    # Whole interval above the threshold: decided, not reproduced.
    slow = _with_intervals(run, "fastapi-async", p95_ci=(1.3, 1.4))
    assert _claim(slow, "fastapi-async-holds-100").status == "not_reproduced"


def test_a_cap_whose_throughput_interval_reaches_past_its_band_is_within_the_noise() -> None:
    run = synthetic_run(variants=("flask-sync", "fastapi-async"), scenarios=("analyse",))
    assert _claim(run, "flask-sync-holds-4").status == "reproduced"
    noisy = _with_intervals(run, "flask-sync", p95_ci=(1.0, 1.0), thr_ci=(0.7, 1.05))
    claim = _claim(noisy, "flask-sync-holds-4")
    assert claim.status == "inconclusive" and "within the noise" in claim.evidence


def test_under_a_tailed_upstream_comfort_is_judged_on_what_the_server_adds() -> None:
    from loadtests.results import Percentiles

    # A tail makes p95 latency 3 x L at 128 users however fast the server is: the p95 rule would call it
    # uncomfortable. Under a drawn profile the same allowance is read on the overhead (0.25 x L = 250 ms).
    def tailed(p, overhead_p95: float, ci: tuple[float, float]):  # type: ignore[no-untyped-def]
        if p.latency_ms is None or p.users is None:
            return p
        latency = replace(p.latency_ms, p95=3 * p.latency_ms.p50)
        top = overhead_p95
        overhead = Percentiles(
            p50=5.0, p90=top, p95=top, p99=top, max=top, mean=6.0, min=1.0, count=p.completed
        )
        breakdown = {"overhead_ci_ms": {"p95": list(ci)}}
        p95_ci = {"p95": [0.95 * latency.p95, 1.05 * latency.p95]}
        return replace(
            p, latency_ms=latency, latency_ci_ms=p95_ci, overhead_ms=overhead, breakdown_ms=breakdown
        )

    base = synthetic_run(variants=("fastapi-async",), scenarios=("analyse",), users=(16, 128))
    fixed = modify(base, lambda p: tailed(p, 20.0, (15.0, 30.0)))
    assert _claim(fixed, "fastapi-async-holds-100").status == "not_reproduced"  # article: p95 vs L
    fixed.metadata["mock_profile"] = "haiku-tail"
    claim = _claim(fixed, "fastapi-async-holds-100")
    assert claim.status == "reproduced" and "overhead p95 20 ms" in claim.evidence, claim.evidence
    slow = modify(base, lambda p: tailed(p, 400.0, (350.0, 480.0)))
    slow.metadata["mock_profile"] = "haiku-tail"
    assert _claim(slow, "fastapi-async-holds-100").status == "not_reproduced"
    noisy = modify(base, lambda p: tailed(p, 240.0, (200.0, 300.0)))
    noisy.metadata["mock_profile"] = "haiku-tail"
    noisy_claim = _claim(noisy, "fastapi-async-holds-100")
    assert noisy_claim.status == "inconclusive" and "straddles" in noisy_claim.evidence


def test_a_p95_measured_against_the_limit_is_decided_by_its_exceedances() -> None:
    run = synthetic_run(variants=("fastapi-async",), scenarios=("analyse",))
    unbounded = _with_intervals(run, "fastapi-async", p95_ci=(0.9, 1.3))  # straddles 1.25 L: the noise
    limit_ms = 1250.0 * (run.points[0].upstream_latency_s or 1.0)

    def at_limit(interval: list[float] | None, lower: float | None = None):  # type: ignore[no-untyped-def]
        def change(p):  # type: ignore[no-untyped-def]
            if p.users is None:
                return p
            found = {"limit_ms": limit_ms, "interval": interval, "lower": lower, "effective_n": 900.0}
            return replace(p, extra={**p.extra, "p95_at_limit": found})

        return modify(unbounded, change)

    clear = _claim(at_limit([0.8 * limit_ms, 0.9 * limit_ms]), "fastapi-async-holds-100")
    assert clear.status == "reproduced"  # no request came near the limit: decided there
    straddling = _claim(at_limit([0.9 * limit_ms, 1.1 * limit_ms]), "fastapi-async-holds-100")
    assert straddling.status == "inconclusive" and "straddles" in straddling.evidence
    over = _claim(at_limit(None, lower=1.2 * limit_ms), "fastapi-async-holds-100")
    assert over.status != "reproduced" and "> 1.25 x L" in over.evidence
