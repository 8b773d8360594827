"""The README's five-line answer to the article, written from a run's ``results.json`` and its verdict
(never by hand): the article's two halves, what decides instead of the framework, the price in memory, and
where the numbers come from. Each line's status is the verdict's claim; each number is a measured point
or a capacity search of the run. What the run lacks is said to be missing, never filled in.
"""

from __future__ import annotations

from typing import Any

from loadtests.analysis.capacity import entry_interval, interval_text
from loadtests.results import Point, RunResults

SCENARIO = "analyse"
# (variant, how the line names it) for "the serving model decides": one per way of holding a call.
SERVING_MODELS = (
    ("flask-gevent", "Flask on gevent workers"),
    ("flask-granian", "Flask on granian"),
    ("flask-sync-64", "Flask on 64 sync workers"),
    ("fastapi-def", "FastAPI with a plain `def` endpoint"),
    ("fastapi-blocking", "FastAPI with a blocking call in `async def`"),
)


def _status(verdict: dict[str, Any], claim_id: str) -> str:
    for claim in verdict.get("claims", []):
        if claim.get("id") == claim_id:
            return str(claim.get("status", "inconclusive")).replace("_", " ")
    return "not judged"


def _closed(points: list[Point], variant: str) -> list[Point]:
    return [
        p
        for p in points
        if (p.variant, p.scenario, p.load_model) == (variant, SCENARIO, "closed")
        and p.users is not None
        and not p.extra.get("capacity_search")
    ]


def _level(points: list[Point], variants: tuple[str, ...]) -> int | None:
    """The highest closed-loop level every one of ``variants`` ran (the figures table's column)."""
    levels = [{p.users for p in _closed(points, v) if p.users is not None} for v in variants]
    common = set.intersection(*levels) if levels and all(levels) else set()
    return max(common) if common else None


def _at(points: list[Point], variant: str, users: int | None) -> Point | None:
    found = [p for p in _closed(points, variant) if p.users == users and p.valid and p.latency_ms]
    return found[0] if found else None


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _capacity(run: RunResults, variant: str) -> str:
    for entry in run.capacity:
        if (entry.get("variant"), entry.get("scenario")) == (variant, SCENARIO):
            lo, hi = entry_interval(entry)
            unit = " user" if (lo, hi) == (1, None) else " users"  # "4-5 users", "1+ user"
            return f"{interval_text(entry, unit=unit)} (`{entry.get('bound', '?')}`)"
    return "no capacity search"


def _article_sync(run: RunResults, verdict: dict[str, Any], users: int | None, big_l: float) -> str:
    status = _status(verdict, "flask-sync-holds-4")
    head = f"**Flask + Gunicorn, 4 sync workers: 4 in flight, then a queue** ({status})."
    peaks = [p.upstream_peak_in_flight for p in _closed(run.points, "flask-sync") if p.valid]
    peaks = [p for p in peaks if p is not None]
    if not peaks:
        return f"{head} flask-sync: no valid point in this run."
    at = _at(run.points, "flask-sync", users)
    queue = ""
    if at is not None and at.latency_ms is not None:
        p50 = at.latency_ms.p50
        queue = (
            f"; at {users} users: {at.throughput_rps:.1f} rps, "
            f"p50 {_seconds(p50)} ({p50 / 1000 / big_l:.1f} x L)"
        )
    return (
        f"{head} flask-sync never had more than {max(peaks)} upstream calls in flight{queue}; "
        f"capacity within the SLO: {_capacity(run, 'flask-sync')}."
    )


def _article_async(run: RunResults, verdict: dict[str, Any], users: int | None, big_l: float) -> str:
    head = f"**FastAPI + Uvicorn, async: 100+ comfortably** ({_status(verdict, 'fastapi-async-holds-100')})."
    at = _at(run.points, "fastapi-async", users)
    if at is None or at.latency_ms is None:
        return f"{head} fastapi-async: no valid point at the common level in this run."
    p95 = at.latency_ms.p95
    return (
        f"{head} fastapi-async at {users} users: {at.upstream_peak_in_flight} in flight, "
        f"{at.throughput_rps:.1f} rps, p95 {_seconds(p95)} ({p95 / 1000 / big_l:.2f} x L); "
        f"capacity within the SLO: {_capacity(run, 'fastapi-async')}."
    )


def _serving_model(run: RunResults, verdict: dict[str, Any]) -> str:
    measured = {p.variant for p in run.points}
    parts = [f"{name} {_capacity(run, v)}" for v, name in SERVING_MODELS if v in measured]
    found = "; ".join(parts) if parts else "none of its variants is in this run"
    return (
        "**The framework alone does not set the limit; the serving model does** (the claim that it does: "
        f"{_status(verdict, 'framework-decides')}). Capacity within the SLO: {found}."
    )


def _memory(run: RunResults, verdict: dict[str, Any], users: int | None) -> str:
    status = _status(verdict, "price-of-128-sync-vs-async")
    head = f"**Sync workers pay in memory** (the price of 128 in flight: {status})."
    held = []
    for variant in ("flask-sync-64", "fastapi-async"):
        at = _at(run.points, variant, users)
        if at is not None and at.server_uss_mb:
            held.append(
                f"{variant} held {at.upstream_peak_in_flight} calls in flight with {at.server_uss_mb:,.0f} MB"
            )
    if not held:
        return f"{head} No measured memory for flask-sync-64 or fastapi-async at one level in this run."
    return f"{head} At {users} users, {' and '.join(held)} (USS, the whole process tree)."


def answer_block(run: RunResults, verdict: dict[str, Any], *, run_name: str) -> str:
    """Five numbered lines: the article's two halves, the serving model, memory, and the run they are from."""
    big_l = float(run.metadata.get("upstream_latency_s") or 1.0)
    users = _level(run.points, ("flask-sync", "fastapi-async"))
    md = run.metadata
    source = (
        f"Measured on real processes: `{run_name}` (preset `{md.get('preset')}`, L = {big_l:g} s per "
        f"upstream call, {md.get('cpu_count')} CPUs, commit `{str(md.get('git_commit', '?'))[:10]}`); "
        "capacity is the most closed-loop users whose point met p95 <= 1.25 x L with no failure, and what "
        "stopped the next level."
    )
    lines = [
        _article_sync(run, verdict, users, big_l),
        _article_async(run, verdict, users, big_l),
        _serving_model(run, verdict),
        _memory(run, verdict, users),
        source,
    ]
    return "\n".join(f"{n}. {line}" for n, line in enumerate(lines, 1))
