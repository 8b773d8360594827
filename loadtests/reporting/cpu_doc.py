"""The report's CPU budget section (``python -m loadtests cpu``): a table of CPU ms per request by component
per profiled variant, whether each budget adds up, what the profiler cost, and links to the flame graphs.

Blocks of :mod:`loadtests.reporting.dockit`, so Markdown and HTML stay identical.
"""

from __future__ import annotations

from typing import Any

from loadtests.analysis.cpu_budget import BUDGET_TOLERANCE, COMPONENTS, MIN_CLASSIFIED
from loadtests.reporting.dockit import Block, Heading, Para, Table
from loadtests.results import RunResults


def cpu_blocks(run: RunResults) -> list[Block]:
    if not run.cpu:
        return []
    headers = [
        "variant", "scenario", "users", "measured ms", *(c.replace("_", " ") for c in COMPONENTS),
        "profile sum", "classified", "adds up", "no profiler ms", "profiler cost", "flame graph",
    ]  # fmt: skip
    rows = [_row(e) for e in sorted(run.cpu, key=lambda e: (e["scenario"], e["variant"]))]
    short = [e for e in run.cpu if not e.get("adds_up")]
    blocks: list[Block] = [
        Heading(2, "Where the CPU goes"),
        Para(
            "One closed-loop level per variant measured with py-spy attached to every server process for the "
            "window (`python -m loadtests cpu`); that point is used for nothing else. Server CPU ms per "
            "request: measured = psutil over the window, all the server's processes; the component columns "
            "split it as the samples fell: each thread's CPU (the kernel's, over the profiled interval) over "
            "the components of its samples, a sample going to the component of the innermost frame whose "
            "module belongs to one (the standard library and shared protocol libraries are charged to their "
            "caller). The budget adds up when the components account for psutil's CPU of the whole tree "
            f"within {BUDGET_TOLERANCE:.0%} and at least {MIN_CLASSIFIED:.0%} of the samples are classified. "
            "No profiler = the same level measured just before without py-spy; profiler cost = the server's "
            "extra CPU per request with it attached (py-spy's own CPU is in results.json)."
        ),
        Table(headers, rows),
    ]
    warned = [e for e in run.cpu if e.get("warnings")]
    if warned:
        blocks.append(
            Para(
                "**Read with care**: "
                + "; ".join(f"{e['variant']} {e['scenario']}: {'; '.join(e['warnings'])}" for e in warned)
            )
        )
    if short:
        blocks.append(
            Para(
                "**Budgets that do not add up**: "
                + "; ".join(
                    f"{e['variant']} {e['scenario']}: {'; '.join(e.get('problems', []))}" for e in short
                )
            )
        )
    return blocks


def _row(e: dict[str, Any]) -> list[str]:
    components = e.get("components", {})
    overhead = e.get("profiler_overhead")
    link = f"[SVG]({e['flamegraph']}) · [raw]({e['raw_profile']})" if e.get("flamegraph") else ""
    return [
        str(e["variant"]),
        str(e["scenario"]),
        str(e.get("users", "")),
        _ms(e.get("cpu_ms_per_request")),
        *(_ms(components.get(c)) for c in COMPONENTS),
        _ms(e.get("profiled_cpu_ms_per_request")),
        f"{float(e.get('classified_share', 0.0)):.0%}",
        "yes" if e.get("adds_up") else "**no**",
        _ms(e.get("cpu_ms_per_request_unprofiled")),
        "" if overhead is None else f"{float(overhead):+.0%}",
        link,
    ]


def _ms(value: Any) -> str:
    return "" if value is None else f"{float(value):.2f}"
