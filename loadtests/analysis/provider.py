"""Goodput against the provider's limit: per point of a run whose mock enforced limits (``--rpm`` ...), what
was offered, what completed within the SLO, and the 429/529 answers as the clients saw them beside the ones
the mock gave (a server that retries hides some; one that gives up passes them on as its own errors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadtests.presets import SweepSettings
from loadtests.results import Point, RunResults

# What a server answers when its upstream refused the call and its retries ran out (servers/errors.py maps
# 429 and 529 to 503 with the upstream's Retry-After); a target app may pass 429 or 529 on unchanged.
REFUSED_STATUSES = ("429", "503", "529")


@dataclass(frozen=True, kw_only=True)
class ProviderRow:
    variant: str
    scenario: str
    load: str  # "64 users" or "20 rps"
    offered_rps: float  # requests the clients sent per second of the window
    limit_rps: float | None  # the request limit in the window's seconds (rpm over the scaled minute)
    goodput_rps: float  # successes within the SLO's latency per second
    goodput_within_ms: float
    throughput_rps: float  # every success per second, however late
    client_refused: int  # requests the clients saw end in 429, 503 or 529
    client_failed: int  # every failed request
    mock_rate_limited: int  # 429s the mock gave (its limits), all buckets
    mock_overloaded: int  # 529s the mock gave (its --max-in-flight)
    calls_per_request: float | None  # upstream calls per finished request: 1 + the retries
    valid: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def provider_limits(run: RunResults) -> dict[str, int]:
    """The limits the run's mock enforced, by flag; empty when its upstream had none."""
    stored = run.metadata.get("sweep_settings")
    if not isinstance(stored, dict):
        return {}
    try:
        return SweepSettings.from_dict(stored).provider_limits()
    except (TypeError, ValueError):
        return {}


def provider_rows(run: RunResults) -> list[ProviderRow]:
    return [row for p in run.points if (row := _row(p)) is not None]


def _row(p: Point) -> ProviderRow | None:
    provider = p.extra.get("provider")
    if not isinstance(provider, dict) or p.duration_s <= 0:
        return None
    rpm = (provider.get("limits") or {}).get("rpm")
    minute_s = provider.get("minute_s")
    finished = p.completed + p.failed
    return ProviderRow(
        variant=p.variant,
        scenario=p.scenario,
        load=f"{p.users} users" if p.load_model == "closed" else f"{p.rate:g} rps",
        offered_rps=float(p.extra.get("arrival_rate_rps") or 0.0),
        limit_rps=round(rpm / minute_s, 3) if rpm and minute_s else None,
        goodput_rps=float(provider.get("goodput_rps") or 0.0),
        goodput_within_ms=float(provider.get("goodput_within_ms") or 0.0),
        throughput_rps=p.throughput_rps,
        client_refused=sum(int(p.failures_by_status.get(s, 0)) for s in REFUSED_STATUSES),
        client_failed=p.failed,
        mock_rate_limited=sum(int(v) for v in (provider.get("rate_limited") or {}).values()),
        mock_overloaded=int(provider.get("overloaded") or 0),
        calls_per_request=round(p.upstream_requests / finished, 3)
        if p.upstream_requests and finished
        else None,
        valid=p.valid,
    )
