"""The report's section on the provider's limit: goodput against the limit the mock enforced, and the
refusals as the clients saw them beside the ones the mock gave. Renders rows computed by
:mod:`loadtests.analysis.provider`; blocks of :mod:`loadtests.reporting.dockit`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loadtests.analysis.provider import ProviderRow
from loadtests.reporting.dockit import Block, Heading, Para, Table


def provider_blocks(rows: Sequence[ProviderRow], limits: Mapping[str, int]) -> list[Block]:
    if not rows:
        return []
    given = ", ".join(f"`--{flag} {value}`" for flag, value in limits.items()) or "limits"
    within = rows[0].goodput_within_ms
    headers = [
        "variant", "scenario", "load", "offered rps", "limit rps", "goodput rps", "all successes rps",
        "client 429/503/529", "client failed", "mock 429", "mock 529", "upstream calls per request", "valid",
    ]  # fmt: skip
    table = [
        [
            r.variant,
            r.scenario,
            r.load,
            f"{r.offered_rps:.3g}",
            "" if r.limit_rps is None else f"{r.limit_rps:.3g}",
            f"{r.goodput_rps:.3g}",
            f"{r.throughput_rps:.3g}",
            str(r.client_refused),
            str(r.client_failed),
            str(r.mock_rate_limited),
            str(r.mock_overloaded),
            "" if r.calls_per_request is None else f"{r.calls_per_request:.2f}",
            "yes" if r.valid else "no",
        ]
        for r in rows
    ]
    return [
        Heading(2, "Against the provider's limit"),
        Para(
            f"The mock enforced {given} as the Claude API does (token buckets refilled continuously, a "
            "minute being 60 s x the time scale): a call beyond them got 429 with retry-after, or 529. "
            f"Goodput = successes within {within:,.0f} ms (1.25 x L) per second of the window; limit rps = "
            "the request limit over the scaled minute. Client columns count what the load generator got "
            "back, mock columns what the mock refused: the difference is what the server's retries absorbed "
            "(upstream calls per request above 1) or turned into errors of its own."
        ),
        Table(headers, table),
    ]
