"""The CPU budget chart: server CPU ms per request by component, one stacked bar per profiled variant (from
results.json's ``cpu`` list, ``python -m loadtests cpu``), with psutil's measured figure beside each bar so
the reader sees the budget add up, and the unprofiled point's figure so the profiler's cost shows too.

Built from :mod:`loadtests.reporting.chartkit` like every chart; the colours are the flame graphs'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from loadtests.analysis.cpu_budget import COMPONENTS
from loadtests.reporting.chartkit import Chart, ChartContext, finish_chart
from loadtests.reporting.flamegraph import COMPONENT_COLOURS


def cpu_budget_charts(ctx: ChartContext) -> list[Chart]:
    """One chart per profiled scenario."""
    scenarios = dict.fromkeys(str(e["scenario"]) for e in ctx.run.cpu if e.get("samples"))
    return [
        _chart(ctx, s, [e for e in ctx.run.cpu if e["scenario"] == s and e.get("samples")]) for s in scenarios
    ]


def _chart(ctx: ChartContext, scenario: str, entries: Sequence[dict[str, Any]]) -> Chart:
    entries = sorted(entries, key=lambda e: float(e.get("cpu_ms_per_request") or 0.0))
    height = max(ctx.style.height_in, 1.6 + 0.5 * len(entries))
    fig = Figure(figsize=(ctx.style.width_in, height), layout="constrained")
    ax = fig.add_subplot()
    rows = range(len(entries))
    ids = []
    for component in COMPONENTS:
        widths = [float(e["components"].get(component, 0.0)) for e in entries]
        lefts = [sum(float(e["components"].get(c, 0.0)) for c in COMPONENTS[: COMPONENTS.index(component)])
                 for e in entries]  # fmt: skip
        if not any(widths):
            continue
        bars = ax.barh(
            list(rows), widths, left=lefts, height=0.6, color=COMPONENT_COLOURS[component],
            edgecolor=ctx.style.bg, linewidth=0.5, label=component.replace("_", " "),
        )  # fmt: skip
        for bar in bars:
            bar.set_gid(f"series-cpu-budget-{component}")
        ids.append(f"series-cpu-budget-{component}")
    measured = ax.plot(
        [float(e.get("cpu_ms_per_request") or 0.0) for e in entries], list(rows), linestyle="none",
        marker="|", markersize=ctx.style.marker_pt * 3, markeredgewidth=2, color=ctx.style.fg,
    )[0]  # fmt: skip
    measured.set_gid("series-cpu-budget-measured")
    plain = [(i, e["cpu_ms_per_request_unprofiled"]) for i, e in enumerate(entries)
             if e.get("cpu_ms_per_request_unprofiled")]  # fmt: skip
    if plain:
        ax.plot([v for _, v in plain], [i for i, _ in plain], linestyle="none", marker="o",
                markerfacecolor="none", markeredgecolor=ctx.style.fg,
                markersize=ctx.style.marker_pt)  # fmt: skip
    ax.set_yticks(list(rows), [f"{e['variant']}{'' if e.get('adds_up') else ' (!)'}" for e in entries])
    ax.set_xlabel("server CPU per request (ms), all processes")
    ax.set_xlim(left=0)
    extra = [
        Line2D([], [], linestyle="none", marker="|", markersize=10, markeredgewidth=2, color=ctx.style.fg,
               label="measured (psutil), profiled"),
        Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", markeredgecolor=ctx.style.fg,
               label="measured, no profiler"),
    ]  # fmt: skip
    return finish_chart(
        ctx, fig, [ax], "cpu-budget", scenario, _title(entries), _subtitle(entries), ids, {},
        extra if plain else extra[:1], require_valid=False,
    )  # fmt: skip


def _title(entries: Sequence[dict[str, Any]]) -> str:
    top = entries[-1]
    total = sum(float(v) for v in top["components"].values()) or 1.0
    ranked = sorted(top["components"].items(), key=lambda kv: -float(kv[1]))[:2]
    shares = " and ".join(f"{c.replace('_', ' ')} ({float(v) / total:.0%})" for c, v in ranked)
    return (
        f"{top['variant']} spends {top['cpu_ms_per_request']} ms of CPU per request, most of it in {shares}"
    )


def _subtitle(entries: Sequence[dict[str, Any]]) -> str:
    users = sorted({e.get("users") for e in entries if e.get("users")})
    short = [e["variant"] for e in entries if not e.get("adds_up")]
    return (
        f"{entries[0]['scenario']} scenario · closed loop at {', '.join(map(str, users))} users · bars: each "
        "thread's CPU split as py-spy's samples fell (by the module of the innermost owned frame) · tick: "
        "psutil's measure of the window"
        + (f" · (!) budget does not add up: {', '.join(short)}" if short else "")
    )
