"""The article's remedies for Flask, judged from measured points: Celery for background work, Flask under
an ASGI server, and Quart (issue 23). Each claim is None when none of its variants ran, so older runs'
verdicts stay as they were.

* "Flask needs Celery (or similar) for background work": the ``jobs`` scenario at its highest valid level,
  jobs in flight as the mock's gauge saw them (each job is one upstream call). Plain Flask (flask-sync)
  runs its jobs in background threads of its own workers. **Not reproduced** when flask-sync held at least
  as many jobs in flight as the best Celery variant: Flask did the background work without Celery.
  **Reproduced** when flask-sync held no more than its workers while a Celery variant held more.
  Otherwise (or without the variants' valid jobs levels) **inconclusive**.
* "Flask under an ASGI server gets async concurrency" (flask-asgiref, flask-a2wsgi): the "100+" reading of
  async concurrency. **Not reproduced** when every adapter that ran shows a measured ceiling below
  COMFORT_MIN_USERS (the mock's gauge stopped following the users with nothing failing); **reproduced** when
  every one holds 100+ comfortably; **depends** when they differ; **inconclusive** otherwise.
* "Quart holds 100+": the "100+ comfortably" rule (``loadtests.analysis.verdict``), intervals included.
"""

from __future__ import annotations

from collections.abc import Sequence

from loadtests.analysis.claims import (
    COMFORT_MIN_USERS,
    Claim,
    ComfortSpec,
    Status,
    comfort_claim,
    figure,
    measured_ceiling,
    upstream_latency,
)
from loadtests.analysis.levels import Level, levels_of, select
from loadtests.results import RunResults

CELERY_ID = "flask-needs-celery"
CELERY_VARIANTS = ("flask-celery", "flask-celery-threads")
PLAIN_FLASK = "flask-sync"
PLAIN_FLASK_WORKERS = 4
ADAPTERS_ID = "flask-asgi-adapters-async"
ADAPTERS = ("flask-asgiref", "flask-a2wsgi")
QUART = ComfortSpec(
    id="quart-async-holds-100",
    variant="quart-async",
    statement="Quart (Flask's API, async def, AsyncAnthropic) on hypercorn holds 100+ concurrent requests",
)
CELERY_STATEMENT = "Flask needs Celery (or similar) for background work"
ADAPTERS_STATEMENT = (
    "Flask under an ASGI server (asgiref's WsgiToAsgi, a2wsgi) gets async concurrency: 100+ in flight"
)


def remedy_claims(run: RunResults, scenario: str | None) -> list[Claim]:
    """The remedies' claims whose variants ran; ``scenario``: the verdict's claim scenario."""
    levels = levels_of(run)
    ran = {p.variant for p in run.points}
    claims = []
    if ran & set(CELERY_VARIANTS):
        claims.append(celery_claim(levels))
    if ran & set(ADAPTERS):
        claims.append(adapters_claim(levels, scenario))
    if QUART.variant in ran:
        closed = _closed(levels, QUART.variant, scenario)
        claims.append(comfort_claim(QUART, closed, upstream_latency(run), scenario, "nuance"))
    return claims


def _closed(levels: Sequence[Level], variant: str, scenario: str | None) -> list[Level]:
    if scenario is None:
        return []
    found = select(levels, variant=variant, scenario=scenario, load_model="closed", valid=True)
    return sorted(found, key=lambda lv: lv.load)


def _jobs_top(levels: Sequence[Level], variant: str) -> Level | None:
    found = _closed(levels, variant, "jobs")
    return found[-1] if found else None


def _jobs_text(lv: Level) -> str:
    cycle = f", job cycle p50 {lv.p50_ms / 1000:.3g} s" if lv.p50_ms is not None else ""
    return f"{lv.variant} at {lv.users} users: {figure(lv.peak_in_flight)} jobs in flight{cycle}"


def celery_claim(levels: Sequence[Level]) -> Claim:
    plain = _jobs_top(levels, PLAIN_FLASK)
    celery = [lv for v in CELERY_VARIANTS if (lv := _jobs_top(levels, v)) is not None]
    if plain is None or not celery or plain.peak_in_flight is None:
        missing = [
            v for v, lv in ((PLAIN_FLASK, plain), *((v, _jobs_top(levels, v)) for v in CELERY_VARIANTS))
        ]
        why = "needs valid jobs levels of flask-sync and a Celery variant with the mock's gauge; missing: "
        return Claim(
            id=CELERY_ID,
            statement=CELERY_STATEMENT,
            status="inconclusive",
            evidence=why + ", ".join(v for v in missing if _jobs_top(levels, v) is None),
            source="nuance",
        )
    best = max(celery, key=lambda lv: lv.peak_in_flight or 0)
    evidence = "; ".join(_jobs_text(lv) for lv in [plain, *celery])
    status: Status
    if (plain.peak_in_flight or 0) >= (best.peak_in_flight or 0):
        status = "not_reproduced"
        evidence += (
            f"; plain Flask's own background threads held as many jobs at once as Celery's best "
            f"({best.variant}): Celery is one way to run them, not a need"
        )
    elif (plain.peak_in_flight or 0) <= PLAIN_FLASK_WORKERS:
        status = "reproduced"
    else:
        status = "inconclusive"
        evidence += "; Celery held more jobs at once, but plain Flask also ran jobs beyond its workers"
    return Claim(id=CELERY_ID, statement=CELERY_STATEMENT, status=status, evidence=evidence, source="nuance")


def adapters_claim(levels: Sequence[Level], scenario: str | None) -> Claim:
    outcomes: dict[str, str] = {}
    texts = []
    for variant in ADAPTERS:
        closed = _closed(levels, variant, scenario)
        if not closed:
            continue
        ceiling = measured_ceiling(closed)
        high = [lv for lv in closed if lv.users >= COMFORT_MIN_USERS and lv.failed == 0]
        if ceiling is not None and (ceiling.peak_in_flight or 0) < COMFORT_MIN_USERS:
            outcomes[variant] = "capped"
            texts.append(
                f"{variant}: measured ceiling {ceiling.peak_in_flight} in flight at {ceiling.users} users "
                f"({ceiling.throughput_rps:.3g} rps)"
            )
        elif any((lv.peak_in_flight or 0) >= COMFORT_MIN_USERS for lv in high):
            outcomes[variant] = "holds"
            top = max(high, key=lambda lv: lv.peak_in_flight or 0)
            texts.append(f"{variant}: {top.peak_in_flight} in flight at {top.users} users")
        else:
            texts.append(f"{variant}: no level decides (highest valid {closed[-1].users} users)")
    found = set(outcomes.values())
    status: Status = "inconclusive"
    if outcomes and len(outcomes) == len(texts):
        status = (
            "not_reproduced" if found == {"capped"} else "reproduced" if found == {"holds"} else "depends"
        )
    evidence = (
        f"({scenario}) " + "; ".join(texts) if texts else "neither adapter has a valid closed-loop level"
    )
    return Claim(
        id=ADAPTERS_ID, statement=ADAPTERS_STATEMENT, status=status, evidence=evidence, source="nuance"
    )
