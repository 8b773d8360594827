from __future__ import annotations

from dataclasses import replace

from loadtests.results import Percentiles
from loadtests.synthetic import VARIANTS, modify, synthetic_run
from loadtests.verdict import COMFORT_DEFINITION, compute_verdict


def _statuses(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.id: c.status for c in compute_verdict(run).claims}


def _claim(run, claim_id: str):  # type: ignore[no-untyped-def]
    return next(c for c in compute_verdict(run).claims if c.id == claim_id)


def test_the_physics_reproduces_both_halves_and_the_nuance() -> None:
    statuses = _statuses(synthetic_run(scenarios=("analyse",)))
    assert statuses == {
        "flask-sync-holds-4": "reproduced",
        "fastapi-async-holds-100": "reproduced",
        "flask-gevent-holds-100": "reproduced",
        "flask-gthread-holds-ceiling": "reproduced",
        "flask-async-views-caps-4": "reproduced",
        "fastapi-def-caps-40": "reproduced",
        "fastapi-blocking-caps-1": "reproduced",
        "fastapi-workers-holds-100": "reproduced",
        "framework-decides": "depends",
    }


def test_evidence_carries_the_numbers() -> None:
    run = synthetic_run(variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), noise=0.0)
    flask = _claim(run, "flask-sync-holds-4")
    assert "max 4 at 256 users" in flask.evidence
    assert "4/L = 4 rps (within 1%)" in flask.evidence
    fastapi = _claim(run, "fastapi-async-holds-100")
    assert "at 128 users: 0 failed, peak 128 in flight" in fastapi.evidence
    assert "1.25 x the upstream latency" in COMFORT_DEFINITION


def test_flask_holding_100_plus_is_not_reproduced() -> None:
    run = synthetic_run(
        variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), ceilings={"flask-sync": 4000}
    )
    claim = _claim(run, "flask-sync-holds-4")
    assert claim.status == "not_reproduced"
    assert "peak in flight 256 at 256 users, above 4" in claim.evidence


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
    assert "in flight 64 < 100" in claim.evidence and "p95 2.08 s > 1.25 x L" in claim.evidence


def test_errors_make_it_uncomfortable() -> None:
    run = synthetic_run(variants=("fastapi-async",), scenarios=("analyse",), users=(64, 128))
    run = modify(run, lambda p: replace(p, failed=5, failures_by_status={"503": 5}) if p.users == 128 else p)
    claim = _claim(run, "fastapi-async-holds-100")
    assert claim.status == "not_reproduced" and "5 failed" in claim.evidence


def test_peak_and_throughput_disagreeing_is_inconclusive() -> None:
    run = synthetic_run(variants=("flask-sync",), scenarios=("analyse",))
    run = modify(run, lambda p: replace(p, throughput_rps=p.throughput_rps * 3) if (p.users or 0) > 4 else p)
    claim = _claim(run, "flask-sync-holds-4")
    assert claim.status == "inconclusive" and "disagree" in claim.evidence


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
    assert set(verdict.not_tested) == set(VARIANTS) - {"flask-sync", "fastapi-async"}
    assert verdict.to_dict()["claims"][0]["status"] == "reproduced"


def test_latency_free_points_do_not_crash() -> None:
    run = synthetic_run(variants=("fastapi-async",), scenarios=("analyse",), users=(128,))
    run = modify(run, lambda p: replace(p, latency_ms=None))
    claim = _claim(run, "fastapi-async-holds-100")
    assert claim.status == "not_reproduced" and "p95 unknown" in claim.evidence
    assert Percentiles  # the import documents what a point's latency holds


def test_the_quick_preset_decides_flask_but_not_fastapi() -> None:
    # quick: users 2, 8, 32 -> flask-sync saturates at 8, fastapi-async never sees 100 users
    run = synthetic_run(variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), users=(2, 8, 32))
    statuses = _statuses(run)
    assert statuses["flask-sync-holds-4"] == "reproduced"
    assert statuses["fastapi-async-holds-100"] == "inconclusive"


def test_points_invalid_for_a_peak_above_the_ceiling_block_a_reproduced_cap() -> None:
    # The sweep invalidates a point whose mock peak beats the predicted ceiling; a Flask that really held
    # 100+ would look just like that, so the verdict must not call the 4-cap reproduced past it.
    run = synthetic_run(variants=("flask-sync",), scenarios=("analyse",), users=(2, 8, 32, 128))
    reason = "mock peak in flight 128 above min(users, ceiling) = 4: upstream calls the harness did not see"
    run = modify(
        run,
        lambda p: (
            replace(p, valid=False, invalid_reasons=[reason], upstream_peak_in_flight=128)
            if p.users == 128
            else p
        ),
    )
    claim = _claim(run, "flask-sync-holds-4")
    assert claim.status == "inconclusive"
    assert "marked 1 level(s) invalid" in claim.evidence and "up to 128 at 128 users" in claim.evidence


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
