"""The article's remedies as claims: Celery for background work, Flask under an ASGI server, Quart. The
outcomes on real processes are the servers' ceiling tests and the reference run; here synthetic runs reach
each branch of the rules."""

from __future__ import annotations

from loadtests.analysis.synthetic import synthetic_run
from loadtests.analysis.verdict import compute_verdict


def _claim(run, claim_id: str):  # type: ignore[no-untyped-def]
    return next(c for c in compute_verdict(run).claims if c.id == claim_id)


def test_plain_flask_holding_as_many_jobs_as_celery_contradicts_the_need_for_celery() -> None:
    variants = ("flask-sync", "flask-celery", "flask-celery-threads")
    run = synthetic_run(variants=variants, scenarios=("jobs",), users=(8, 128), ceilings={"flask-sync": 4000})
    claim = _claim(run, "flask-needs-celery")
    assert claim.status == "not_reproduced"
    assert "flask-sync at 128 users: 128 jobs in flight" in claim.evidence
    assert "flask-celery at 128 users: 2 jobs in flight" in claim.evidence  # prefork: one per CPU
    # A Flask whose jobs waited for its four workers would need the worker tier.
    capped = synthetic_run(variants=variants, scenarios=("jobs",), users=(8, 128))
    assert _claim(capped, "flask-needs-celery").status == "reproduced"


def test_flask_behind_asgi_adapters_is_capped_by_their_threads() -> None:
    run = synthetic_run(variants=("flask-asgiref", "flask-a2wsgi"), scenarios=("analyse",))
    claim = _claim(run, "flask-asgi-adapters-async")
    assert claim.status == "not_reproduced"
    assert "flask-asgiref: measured ceiling 1 in flight" in claim.evidence
    assert "flask-a2wsgi: measured ceiling 10 in flight" in claim.evidence
    one_holds = synthetic_run(
        variants=("flask-asgiref", "flask-a2wsgi"), scenarios=("analyse",), ceilings={"flask-a2wsgi": 1000}
    )
    assert _claim(one_holds, "flask-asgi-adapters-async").status == "depends"


def test_quart_is_judged_by_the_comfort_rule_and_absent_remedies_add_no_claim() -> None:
    run = synthetic_run(variants=("flask-sync", "quart-async"), scenarios=("analyse",))
    assert _claim(run, "quart-async-holds-100").status == "reproduced"
    ids = {c.id for c in compute_verdict(run).claims}
    assert "flask-needs-celery" not in ids and "flask-asgi-adapters-async" not in ids
