"""The latency spectrum: latency by percentile (the HdrHistogram view, "1 in N" requests at least this
slow), from the raw records of the claim's variants at one load.

Read from ``raw/`` beside results.json, cut to each point's measured window, every successful request
counted; the percentiles go as far as the sample supports (the last one is 1 - 1/n, the maximum).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.analysis.rawdata import cut_window, read_records
from loadtests.analysis.stats import nearest_rank
from loadtests.results import Point, RunResults

ARTICLE_PAIR = ("flask-sync", "fastapi-async")
# Percentiles drawn: a 1-2-5 ladder of "1 in N", from the median to 1 in 100,000.
LADDER = tuple(
    sorted({1 - 1 / n for d in range(1, 6) for n in (2 * 10 ** (d - 1), 5 * 10 ** (d - 1), 10**d)})
)


@dataclass(frozen=True, kw_only=True)
class Spectrum:
    variant: str
    scenario: str
    users: int
    count: int  # successful requests in the window
    percentiles: list[tuple[float, float]]  # (percentile 0-100, latency ms), as far as the sample reaches


def spectrum_of(point: Point, run_dir: Path) -> Spectrum | None:
    """The spectrum of one point's window, or None without its raw records."""
    if not point.raw_file or point.users is None:
        return None
    path = run_dir / point.raw_file
    start = point.extra.get("window_start")
    if not path.exists() or not isinstance(start, int | float):
        return None
    window = cut_window(read_records([path]), float(start), float(start) + point.duration_s)
    ordered = sorted(window.latencies_ms)
    n = len(ordered)
    if n < 2:
        return None
    shown = [q for q in LADDER if q <= 1 - 1 / n]
    pairs = [(round(q * 100, 5), nearest_rank(ordered, q * 100)) for q in shown]
    pairs.append((round((1 - 1 / n) * 100, 5), ordered[-1]))
    return Spectrum(
        variant=point.variant, scenario=point.scenario, users=point.users, count=n, percentiles=pairs
    )


def claim_spectra(
    run: RunResults, run_dir: Path | None, variants: Sequence[str] = ARTICLE_PAIR
) -> list[Spectrum]:
    """The claim's variants at the highest load both measured validly in one closed-loop scenario (the
    first of analyse, stream, chat that has one); empty without raw records."""
    if run_dir is None:
        return []
    for scenario in ("analyse", "stream", "chat"):
        valid = [p for p in run.points if p.scenario == scenario and p.load_model == "closed" and p.valid]
        loads = [{p.users for p in valid if p.variant == v} for v in variants]
        common = set.intersection(*loads) if loads else set()
        if not common:
            continue
        users = max(u for u in common if u is not None)
        found = []
        for variant in variants:
            point = max(
                (p for p in valid if p.variant == variant and p.users == users), key=lambda p: p.completed
            )
            spectrum = spectrum_of(point, run_dir)
            if spectrum is not None:
                found.append(spectrum)
        if found:
            return found
    return []


def one_in(percentile: float) -> float:
    """'1 in N' for a percentile: the axis of the spectrum (50 -> 2, 99 -> 100)."""
    return 1.0 / max(1e-12, 1.0 - percentile / 100.0) if percentile < 100 else math.inf
