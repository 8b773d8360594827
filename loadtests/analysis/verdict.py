"""The verdict on the article's claim, computed from the valid points of a run, numbers as evidence.

Two claims come from the article; the rest is the nuance it leaves out, one claim per variant that
ran. Every rule is here with its thresholds, so the report can print exactly what was measured:

* "holds at most C in flight" (flask-sync C=4, flask-async-views 4, fastapi-def 40, fastapi-blocking 1):
  needs a valid load level of at least CAP_SATURATION_FACTOR x C users (else inconclusive); judged on
  every valid level above C, from the mock's exact gauge, on both sides: reproduced when the highest peak
  in flight is exactly C and the best throughput is between CAP_THROUGHPUT_LOW and CAP_THROUGHPUT_SLACK
  times C / L; not
  reproduced, with the measured number, when the peak is above C *or below it* (a flask-sync with one
  worker does not "hold 4"); inconclusive without a gauge, with failures above CAP_MAX_FAILED_SHARE, or
  when the peak matches but the throughput does not. Invalid levels are not used (and are counted).
* "holds 100+ comfortably" (fastapi-async, flask-gevent, fastapi-workers): at a valid level of at
  least COMFORT_MIN_USERS users: no failed request, peak in flight >= COMFORT_MIN_USERS, p95 latency
  <= COMFORT_P95_FACTOR x L and throughput >= COMFORT_THROUGHPUT_FRACTION x users / L. Reproduced when
  the lowest such level passes, not reproduced when none does, and not reproduced when any valid level
  shows a measured ceiling below 100 (the mock's peak stopped following the users with no request
  failing: fastapi-async with an 8-connection pool holds 8, whatever was predicted); inconclusive only
  when no level reached 100 and none showed a ceiling.
* flask-gthread "holds 4 x N": at levels at or above its ceiling C, reproduced when the peak reaches
  FOLLOW_FRACTION x C with throughput >= FOLLOW_FRACTION x C / L, not reproduced when it stays at the
  worker count, depends in between.
* "Flask on granian holds 100+ with no code change" (flask-granian): the "100+ comfortably" rule above,
  its not-reproduced evidence starting "contradicted by the measurement" (``flask_granian_claim``).
* "the framework alone sets the limit": depends when any counterexample (gevent Flask holding 100+,
  gthread Flask beyond 4, a capped FastAPI variant) is reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from loadtests.analysis.claims import (
    COMFORT_DEFINITION,
    GTHREAD,
    CapSpec,
    Claim,
    ComfortSpec,
    cap_claim,
    comfort_claim,
    gthread_claim,
    no_data,
    sync_price_claim,
    upstream_latency,
)
from loadtests.analysis.levels import Level, levels_of, select
from loadtests.analysis.remedies import remedy_claims
from loadtests.results import RunResults

# The first of these with valid closed-loop points decides. Not overhead (no upstream wait) or jobs (the
# upstream call runs after the 202, so a request's latency is not the wait).
CLAIM_SCENARIOS = ("analyse", "stream", "chat")


@dataclass(frozen=True, kw_only=True)
class Verdict:
    claims: list[Claim]
    scenario: str | None
    upstream_latency_s: float | None
    not_tested: list[str]  # nuance claims whose variant did not run

    def to_dict(self) -> dict[str, Any]:
        return {
            "claims": [asdict(c) for c in self.claims],
            "scenario": self.scenario,
            "upstream_latency_s": self.upstream_latency_s,
            "comfortably": COMFORT_DEFINITION,
            "not_tested": self.not_tested,
        }


ARTICLE_FLASK = CapSpec(
    id="flask-sync-holds-4",
    variant="flask-sync",
    cap=4,
    statement="Flask + Gunicorn (4 sync workers) holds at most 4 requests in flight",
)
ARTICLE_FASTAPI = ComfortSpec(
    id="fastapi-async-holds-100",
    variant="fastapi-async",
    statement="FastAPI + Uvicorn (async def, AsyncAnthropic) handles 100+ concurrent requests comfortably",
)
GEVENT = ComfortSpec(
    id="flask-gevent-holds-100",
    variant="flask-gevent",
    statement="Flask on gunicorn gevent workers also handles 100+ concurrent requests comfortably",
)
WORKERS = ComfortSpec(
    id="fastapi-workers-holds-100",
    variant="fastapi-workers",
    statement="FastAPI on 4 uvicorn worker processes handles 100+ concurrent requests comfortably",
)
DEF_CAP = CapSpec(
    id="fastapi-def-caps-40",
    variant="fastapi-def",
    cap=40,
    statement=(
        "A plain `def` FastAPI endpoint with the sync client holds at most 40 in flight (anyio's threads)"
    ),
)
BLOCKING_CAP = CapSpec(
    id="fastapi-blocking-caps-1",
    variant="fastapi-blocking",
    cap=1,
    statement="A blocking sync call inside `async def` caps FastAPI at 1 request in flight",
)
ASYNC_VIEWS_CAP = CapSpec(
    id="flask-async-views-caps-4",
    variant="flask-async-views",
    cap=4,
    statement="Flask `async def` views on 4 sync workers add no concurrency: at most 4 in flight",
)
FRAMEWORK_ID = "framework-decides"
GRANIAN = ComfortSpec(
    id="flask-granian-holds-100",
    variant="flask-granian",
    statement="Flask on granian holds 100+ with no code change",
)


def compute_verdict(run: RunResults) -> Verdict:
    levels = levels_of(run)
    big_l = upstream_latency(run)
    scenario = _claim_scenario(levels)
    ran = {p.variant for p in run.points}
    ceilings = {v.name: v.predicted_ceiling for v in run.variants}
    workers = {v.name: v.workers for v in run.variants}

    def closed(variant: str, valid: bool = True) -> list[Level]:
        if scenario is None:
            return []
        return sorted(
            select(levels, variant=variant, scenario=scenario, load_model="closed", valid=valid),
            key=lambda lv: lv.load,
        )

    def invalid(variant: str) -> list[Level]:
        return closed(variant, False)

    claims: list[Claim] = []
    not_tested: list[str] = []
    claims.append(
        cap_claim(
            ARTICLE_FLASK,
            closed(ARTICLE_FLASK.variant),
            invalid(ARTICLE_FLASK.variant),
            big_l,
            scenario,
            "article",
        )
    )
    claims.append(comfort_claim(ARTICLE_FASTAPI, closed(ARTICLE_FASTAPI.variant), big_l, scenario, "article"))
    for spec in (GEVENT, GTHREAD, ASYNC_VIEWS_CAP, DEF_CAP, BLOCKING_CAP, WORKERS):
        name = spec if isinstance(spec, str) else spec.variant
        if name not in ran:
            not_tested.append(name)
            continue
        if isinstance(spec, CapSpec):
            claims.append(cap_claim(spec, closed(name), invalid(name), big_l, scenario, "nuance"))
        elif isinstance(spec, ComfortSpec):
            claims.append(comfort_claim(spec, closed(name), big_l, scenario, "nuance"))
        else:
            ceiling = ceilings.get(name) or _point_ceiling(closed(name)) or 0
            claims.append(gthread_claim(closed(name), ceiling, workers.get(name, 4), big_l, scenario))
    if GRANIAN.variant in ran:
        claims.append(flask_granian_claim(closed(GRANIAN.variant), big_l, scenario))
    else:
        not_tested.append(GRANIAN.variant)
    framework = _framework_claim(claims)
    if framework is not None:
        claims.append(framework)
    price = sync_price_claim(run)
    if price is not None:
        claims.append(price)
    claims += remedy_claims(run, scenario)
    return Verdict(claims=claims, scenario=scenario, upstream_latency_s=big_l, not_tested=not_tested)


def _claim_scenario(levels: Sequence[Level]) -> str | None:
    present = {lv.scenario for lv in levels if lv.load_model == "closed" and lv.valid}
    return next((s for s in CLAIM_SCENARIOS if s in present), min(present) if present else None)


def _point_ceiling(levels: Sequence[Level]) -> int | None:
    return levels[0].predicted_ceiling if levels else None


def flask_granian_claim(levels: list[Level], big_l: float | None, scenario: str | None) -> Claim:
    """The unchanged Flask app (sync views, sync client) on granian's WSGI thread pool, judged by the
    "100+ comfortably" rule from measured levels only: reproduced when the lowest level of 100+ users is
    comfortable; contradicted, with the measured number, when a level shows a ceiling below 100 or no
    level of 100+ users is comfortable; inconclusive without a level that decides. "No code change" is
    the registry's (the same app and mode as flask-sync, tested there), not something a run measures."""
    claim = comfort_claim(GRANIAN, levels, big_l, scenario, "nuance")
    if claim.status == "not_reproduced":
        return replace(claim, evidence="contradicted by the measurement: " + claim.evidence)
    return claim


def _framework_claim(claims: Sequence[Claim]) -> Claim | None:
    statement = "The framework alone sets the limit (Flask: 4, FastAPI: 100+)"
    by_id = {c.id: c for c in claims}
    counter = {
        GEVENT.id: "Flask on gevent workers holds 100+",
        "flask-gthread-holds-ceiling": "Flask on gthread goes beyond 4",
        DEF_CAP.id: "a `def` FastAPI endpoint stops at 40",
        BLOCKING_CAP.id: "a blocking call in `async def` stops FastAPI at 1",
    }
    shown = [
        f"{text} ({by_id[cid].status.replace('_', ' ')})"
        for cid, text in counter.items()
        if cid in by_id and by_id[cid].status in ("reproduced", "depends")
    ]
    if shown:
        return Claim(
            id=FRAMEWORK_ID,
            statement=statement,
            status="depends",
            evidence="the serving model decides, not the framework: " + "; ".join(shown),
            source="nuance",
        )
    decided = [by_id[c] for c in counter if c in by_id and by_id[c].status == "not_reproduced"]
    if len(decided) == len(counter):
        return Claim(
            id=FRAMEWORK_ID,
            statement=statement,
            status="reproduced",
            evidence="no counterexample: " + "; ".join(f"{c.id}: {c.evidence}" for c in decided),
            source="nuance",
        )
    if not any(c in by_id for c in counter):
        return None  # none of the variants that could say ran: nothing to report
    missing = [c for c in counter if c not in by_id or by_id[c].status == "inconclusive"]
    return no_data(
        FRAMEWORK_ID,
        statement,
        "nuance",
        "needs the gevent, gthread, def and blocking variants to decide; undecided here: "
        + ", ".join(missing),
    )
