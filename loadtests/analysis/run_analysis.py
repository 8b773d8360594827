"""Everything the report derives from a run, computed once: the verdict, the memory fits and the capacity
plan. The charts and both renderings of the document read this; none of them computes it again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.analysis.memory import MemoryFit, memory_fits
from loadtests.analysis.plan import PlanRow, capacity_plan
from loadtests.analysis.provider import ProviderRow, provider_limits, provider_rows
from loadtests.analysis.spectrum import Spectrum, claim_spectra
from loadtests.analysis.verdict import Verdict, compute_verdict
from loadtests.results import RunResults


@dataclass(frozen=True, kw_only=True)
class RunAnalysis:
    verdict: Verdict
    fits: list[MemoryFit]  # memory per call in flight, from USS (what the report shows)
    fits_rss: list[MemoryFit]
    plan: list[PlanRow]
    spectra: list[Spectrum] = field(default_factory=list)  # the claim's latency by percentile (raw records)
    provider: list[ProviderRow] = field(default_factory=list)  # goodput against the provider's limits
    limits: dict[str, int] = field(default_factory=dict)  # the limits the mock enforced, by flag

    def memory_document(self) -> dict[str, Any]:
        """memory.json: the fits (USS and RSS) and the plan, as the report shows them."""
        return {
            "fits": [f.to_dict() for f in self.fits],
            "fits_rss": [f.to_dict() for f in self.fits_rss],
            "plan": [r.to_dict() for r in self.plan],
        }


def analyse_run(run: RunResults, run_dir: Path | None = None) -> RunAnalysis:
    """``run_dir``: where the raw records are (the spectrum needs them; without it there is none)."""
    fits = memory_fits(run, "uss")
    return RunAnalysis(
        verdict=compute_verdict(run),
        fits=fits,
        fits_rss=memory_fits(run, "rss"),
        plan=capacity_plan(run, fits=fits),
        spectra=claim_spectra(run, run_dir),
        provider=provider_rows(run),
        limits=provider_limits(run),
    )
