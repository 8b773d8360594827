"""The report's charts: matplotlib figures whose titles state the finding, computed from the run.

Each chart kind is one function here, built from :mod:`loadtests.reporting.chartkit`.

Every chart is built on ``matplotlib.figure.Figure`` (no pyplot state), so the report can render many
without leaks. Valid levels are drawn filled and joined by a line; levels with no valid repeat are drawn
hollow, never joined, and named in a note under the chart. Each data line carries an SVG id
``series-<kind>-<variant>`` so the written SVG can be checked for its series.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from loadtests.analysis.capacity import interval_text
from loadtests.analysis.levels import Level
from loadtests.analysis.run_analysis import RunAnalysis
from loadtests.reporting.chart_style import Style
from loadtests.reporting.chartkit import (
    ARTICLE_HIGH,
    ARTICLE_LOW,
    ONLY_VALID,
    Chart,
    ChartContext,
    finish_chart,
    loads_of,
    log2_x,
    log2_y,
    log10_x,
    log10_y,
    make_context,
    new_figure,
    peak_of,
    plot_series,
    scenarios_of,
    series_of,
    upstream_wait,
    valid_only,
    variant_colour,
    variant_marker,
)
from loadtests.reporting.cpuchart import cpu_budget_charts
from loadtests.reporting.memchart import memory_chart, reach_chart
from loadtests.results import Point, RunResults

CHART_KINDS = (
    "throughput", "inflight", "latency", "ttft", "errors", "cpu", "breakdown", "open-latency", "capacity",
    "goodput", "memory", "reach",
)  # fmt: skip


def build_charts(run: RunResults, style: Style, analysis: RunAnalysis) -> list[Chart]:
    """Every chart the run has data for, in reading order."""
    ctx = make_context(run, style, analysis.fits)
    charts: list[Chart] = []
    with rc_context(style.rc()):
        for scenario in scenarios_of(ctx, "closed"):
            for builder in (
                throughput_chart,
                inflight_chart,
                _latency,
                _ttft,
                _errors,
                _cpu,
                breakdown_chart,
                memory_chart,
            ):
                chart = builder(ctx, scenario)
                if chart is not None:
                    charts.append(chart)
        for scenario in scenarios_of(ctx, "open"):
            chart = _open_latency(ctx, scenario)
            if chart is not None:
                charts.append(chart)
        for scenario in dict.fromkeys(str(e["scenario"]) for e in run.capacity):
            chart = capacity_chart(ctx, scenario)
            if chart is not None:
                charts.append(chart)
        if run.faults:
            charts.append(_faults(ctx))
        reach = reach_chart(ctx)
        if reach is not None:
            charts.append(reach)
        charts += cpu_budget_charts(ctx) if run.cpu else []
    return charts


# --- the charts -------------------------------------------------------------------------------------------


def throughput_chart(ctx: ChartContext, scenario: str) -> Chart | None:
    big_l = upstream_wait(ctx, scenario)
    series = series_of(ctx, scenario, "closed")
    if not series:
        return None
    fig, ax = new_figure(ctx)
    ids = []
    extra_note = ""
    held = _plateau_labels(series) if big_l and len(series) > ANNOTATE_MAX else {}
    for variant, levels in series.items():
        ceiling_label = (
            f"{variant} (C = {ctx.ceilings[variant]})" if big_l and variant in ctx.ceilings else variant
        ) + held.get(variant, "")
        ids.append(
            plot_series(
                ctx, ax, "throughput", variant, levels, lambda lv: lv.throughput_rps, label=ceiling_label
            )
        )
        if big_l and variant in ctx.ceilings:
            ceiling = ctx.ceilings[variant]
            # The corner at users = C is drawn even when no level was measured there.
            loads = sorted({lv.load for lv in levels} | {float(ceiling)})
            loads = [u for u in loads if u <= max(lv.load for lv in levels)]
            ax.plot(
                loads,
                [min(u, ceiling) / big_l for u in loads],
                linestyle=(0, (4, 3)),
                linewidth=ctx.style.line_w * 0.6,
                color=variant_colour(ctx, variant),
                alpha=0.7,
                zorder=1,
            )
    log2_x(ax, loads_of(series))
    log2_y(ax)
    ax.set_xlabel("concurrent users (log scale)")
    ax.set_ylabel("throughput (requests/s, log)")
    if big_l and len(series) <= ANNOTATE_MAX:
        _annotate_knees(ctx, ax, series, lambda cap: cap / big_l if big_l else cap)
    elif not big_l:
        extra_note = " · no upstream wait in this scenario, so no Little's-law ceiling"
    vs = valid_only(series)
    low, high = _pair(vs, lambda lv: lv.throughput_rps)
    title = "Throughput"
    if low and high:
        lo, hi = (
            _top(vs[low], lambda lv: lv.throughput_rps),
            _top(vs[high], lambda lv: lv.throughput_rps),
        )
        title = (
            f"{low} levels off at {lo.throughput_rps:.3g} requests/s; "
            f"{high} reaches {hi.throughput_rps:.3g} requests/s at {hi.users} users"
        )
    elif low:
        lo = _top(vs[low], lambda lv: lv.throughput_rps)
        title = f"{low} reaches {lo.throughput_rps:.3g} requests/s at {lo.users} users ({ONLY_VALID})"
    subtitle = (
        f"{scenario} scenario · closed loop · solid: measured · dashed: Little's-law ceiling "
        "min(users, C) / L, C = the variant's predicted concurrency (in the legend)"
        if big_l
        else f"{scenario} scenario · closed loop{extra_note}"
    )
    extra = (
        [Line2D([], [], color=ctx.style.muted, linestyle=(0, (4, 3)), label="ceiling min(users, C) / L")]
        if big_l
        else []
    )
    return finish_chart(ctx, fig, [ax], "throughput", scenario, title, subtitle, ids, series, extra)


def inflight_chart(ctx: ChartContext, scenario: str) -> Chart | None:
    series = {
        v: lvs
        for v, lvs in series_of(ctx, scenario, "closed").items()
        if any(lv.peak_in_flight is not None for lv in lvs)
    }
    if not series:
        return None
    fig, ax = new_figure(ctx)
    loads = loads_of(series)
    ax.plot(loads, loads, color=ctx.style.muted, linestyle=":", linewidth=ctx.style.line_w * 0.7, zorder=1)
    held = _plateau_labels(series) if len(series) > ANNOTATE_MAX else {}
    ids = [
        plot_series(
            ctx,
            ax,
            "inflight",
            v,
            [lv for lv in lvs if lv.peak_in_flight is not None],
            peak_of,
            label=v + held.get(v, ""),
        )
        for v, lvs in series.items()
    ]
    log2_x(ax, loads)
    log2_y(ax)
    ax.set_xlabel("concurrent users (log scale)")
    ax.set_ylabel("upstream calls in flight (log)")
    if upstream_wait(ctx, scenario) and len(series) <= ANNOTATE_MAX:
        _annotate_knees(ctx, ax, series, float)
    vs = valid_only(series)
    low, high = _pair(vs, peak_of)
    title = "Upstream calls in flight"
    if low and high:
        title = f"{low} {_follows(vs[low])}; {high} {_follows(vs[high])}"
    elif low:
        title = f"{low} {_follows(vs[low])} ({ONLY_VALID})"
    subtitle = (
        f"{scenario} scenario · closed loop · the mock's ground truth: the most upstream calls it saw "
        "at once · dotted: every user in flight"
    )
    extra = [Line2D([], [], color=ctx.style.muted, linestyle=":", label="every user in flight")]
    return finish_chart(ctx, fig, [ax], "inflight", scenario, title, subtitle, ids, series, extra)


SMALL_MULTIPLES_MAX = 6  # more variants than this: latency at one load, one row per variant
ANNOTATE_MAX = 5  # more variants than this: the plateaus are named in the legend, not over the lines


def _latency(ctx: ChartContext, scenario: str) -> Chart | None:
    series = {
        v: [lv for lv in lvs if lv.p50_ms is not None]
        for v, lvs in series_of(ctx, scenario, "closed").items()
        if any(lv.p50_ms is not None for lv in lvs)
    }
    if not series:
        return None
    if len(series) > SMALL_MULTIPLES_MAX or len(loads_of(series)) < 2:
        return _latency_at_load(ctx, scenario, series)
    return _latency_panels(ctx, scenario, series)


def _common_load(series: dict[str, list[Level]]) -> float:
    """The load the most variants measured (the highest of those): where they are compared."""
    counts: dict[float, int] = defaultdict(int)
    for levels in series.values():
        for load in {lv.load for lv in levels}:
            counts[load] += 1
    return max(counts, key=lambda load: (counts[load], load))


def _latency_at_load(ctx: ChartContext, scenario: str, series: dict[str, list[Level]]) -> Chart:
    """p50, p95 (with its 95 % interval) and p99 of every variant at one load, a row each, fastest first."""
    big_l = upstream_wait(ctx, scenario)
    load = _common_load(series)
    rows = {v: lv for v, lvs in series.items() for lv in lvs if lv.load == load}
    names = sorted(rows, key=lambda v: rows[v].p50_ms or math.inf)
    fig, ax = new_figure(ctx)
    ids = []
    for y, variant in enumerate(names):
        lv = rows[variant]
        colour, marker = variant_colour(ctx, variant), variant_marker(ctx, variant)
        face = colour if lv.valid else ctx.style.bg
        if lv.p95_ci_ms is not None and lv.p95_ci_ms[0] != lv.p95_ci_ms[1]:
            ax.plot([v / 1000 for v in lv.p95_ci_ms], [y, y], color=colour, linewidth=ctx.style.line_w * 2.5,
                    alpha=0.35, solid_capstyle="butt", zorder=2)  # fmt: skip
        for pct, shape, scale in (("p50", marker, 1.0), ("p95", "|", 1.6), ("p99", "x", 1.0)):
            value = getattr(lv, f"{pct}_ms")
            if value is None:
                continue
            (dot,) = ax.plot(
                [value / 1000], [y], linestyle="none", marker=shape, color=colour, markerfacecolor=face,
                markersize=ctx.style.marker_pt * scale, zorder=3,
            )  # fmt: skip
            dot.set_gid(f"series-latency-{pct}-{variant}")
            ids.append(dot.get_gid())
    if big_l:
        ax.axvline(big_l, color=ctx.style.muted, linewidth=ctx.style.line_w * 0.5, zorder=0)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=ctx.style.font_pt * (0.9 if len(names) <= 12 else 0.75))
    for tick, name in zip(ax.get_yticklabels(), names, strict=True):
        tick.set_color(variant_colour(ctx, name))
    ax.invert_yaxis()
    ax.set_xscale("log")
    log10_x(ax)
    ax.set_xlabel("latency (s, log)")
    fastest, slowest = rows[names[0]], rows[names[-1]]
    title = (
        f"At {load:g} users {fastest.variant} answers in {_secs(fastest.p50_ms)} (p50), "
        f"{slowest.variant} in {_secs(slowest.p50_ms)}"
    )
    if big_l and slowest.p50_ms:
        title += f" ({slowest.p50_ms / 1000 / big_l:.2g} x L)"
    subtitle = f"{scenario} scenario · closed loop at {load:g} users · the variants' latency percentiles" + (
        " · grey line: upstream latency L" if big_l else ""
    )
    extra = [
        Line2D([], [], linestyle="none", marker="o", color=ctx.style.fg, label="p50"),
        Line2D([], [], linestyle="none", marker="|", color=ctx.style.fg, markersize=ctx.style.marker_pt * 1.6,
               label="p95 (band: its 95 % interval)"),
        Line2D([], [], linestyle="none", marker="x", color=ctx.style.fg, label="p99"),
    ]  # fmt: skip
    shown = {v: [rows[v]] for v in names}
    return finish_chart(
        ctx, fig, [ax], "latency", scenario, title, subtitle, ids, shown, extra, variants=False
    )


def _latency_panels(ctx: ChartContext, scenario: str, series: dict[str, list[Level]]) -> Chart:
    """One panel per variant: p50, p95 (with its 95 % interval as a band) and p99 against users."""
    big_l = upstream_wait(ctx, scenario)
    n = len(series)
    # Wide slides take up to 4 panels a row; the blog's shape suits a squarer grid (4 -> 2 x 2).
    cols = min(4, n) if ctx.style.size == "talk" else min(4, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(ctx.style.width_in, ctx.style.height_in), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    flat = [a for row in axes for a in row]
    loads = loads_of(series)
    ids: list[str] = []
    styles = (("p50", "-", "p50_ms"), ("p95", (0, (5, 2)), "p95_ms"), ("p99", ":", "p99_ms"))
    for ax, (variant, levels) in zip(flat, series.items(), strict=False):
        for label, linestyle, attr in styles:
            ids.append(
                plot_series(
                    ctx,
                    ax,
                    f"latency-{label}",
                    variant,
                    levels,
                    lambda lv, a=attr: (getattr(lv, a) or math.nan) / 1000,
                    linestyle=linestyle,
                    legend=False,
                    marker_scale=0.7,
                )
            )
        banded = [lv for lv in levels if lv.valid and lv.p95_ci_ms is not None]
        if banded:
            ax.fill_between([lv.load for lv in banded], [lv.p95_ci_ms[0] / 1000 for lv in banded],  # type: ignore[index]
                            [lv.p95_ci_ms[1] / 1000 for lv in banded], color=variant_colour(ctx, variant),  # type: ignore[index]
                            alpha=0.2, linewidth=0, zorder=1)  # fmt: skip
        if big_l:
            ax.axhline(big_l, color=ctx.style.muted, linewidth=ctx.style.line_w * 0.5, zorder=0)
        ax.set_title(
            variant, color=variant_colour(ctx, variant), fontsize=ctx.style.font_pt * 0.9, loc="left"
        )
        log2_x(ax, loads, sparse=True)
        log10_y(ax, dense=rows <= 2)
    for ax in flat[n:]:
        ax.set_visible(False)
    # Axis labels once, on the outer panels' side, not once a panel.
    for i, ax in enumerate(flat[:n]):
        if i + cols >= n:
            ax.xaxis.set_tick_params(labelbottom=True)
    flat[(rows - 1) * cols if (rows - 1) * cols < n else 0].set_xlabel("users (log scale)")
    flat[0].set_ylabel("latency (s)")
    vs = valid_only(series)
    low, high = _pair(vs, lambda lv: -(lv.p50_ms or 0))
    title = "Latency"
    if low and big_l:
        lo, hi = _at_common_load(vs[low], vs[high] if high else None)
        title = (
            f"At {lo.users} users {low} answers in {_secs(lo.p50_ms)} "
            f"(p50, {(lo.p50_ms or 0) / 1000 / big_l:.2g} x L)"
        )
        title += f"; {high} in {_secs(hi.p50_ms)}" if high and hi else f" ({ONLY_VALID})"
    subtitle = f"{scenario} scenario · one panel per variant · log axes · band: p95's 95 % interval" + (
        " · grey line: upstream latency L" if big_l else ""
    )
    extra = [Line2D([], [], color=ctx.style.fg, linestyle=ls, label=label) for label, ls, _ in styles] + [
        Line2D([], [], color=ctx.style.muted, linewidth=ctx.style.line_w * 0.5, label="L")
    ]
    return finish_chart(
        ctx, fig, flat[:n], "latency", scenario, title, subtitle, ids, series, extra, variants=False
    )


def _ttft(ctx: ChartContext, scenario: str) -> Chart | None:
    series = {
        v: [lv for lv in lvs if lv.ttft_p50_ms is not None]
        for v, lvs in series_of(ctx, scenario, "closed").items()
        if any(lv.ttft_p50_ms is not None for lv in lvs)
    }
    if not series:
        return None
    fig, ax = new_figure(ctx)
    ids = [
        plot_series(ctx, ax, "ttft", v, lvs, lambda lv: (lv.ttft_p50_ms or math.nan) / 1000)
        for v, lvs in series.items()
    ]
    log2_x(ax, loads_of(series))
    log10_y(ax)
    ax.set_xlabel("concurrent users (log scale)")
    ax.set_ylabel("time to first chunk, p50 (s, log)")
    vs = valid_only(series)
    low, high = _pair(vs, lambda lv: -(lv.ttft_p50_ms or 0))
    title = "Time to first chunk"
    if low:
        lo, hi = _at_common_load(vs[low], vs[high] if high else None)
        title = f"At {lo.users} users {low} sends the first chunk after {_secs(lo.ttft_p50_ms)}"
        title += f"; {high} after {_secs(hi.ttft_p50_ms)}" if high and hi else f" ({ONLY_VALID})"
    subtitle = f"{scenario} scenario · median time from request to first streamed chunk"
    return finish_chart(ctx, fig, [ax], "ttft", scenario, title, subtitle, ids, series, [])


def _errors(ctx: ChartContext, scenario: str) -> Chart | None:
    series = series_of(ctx, scenario, "closed")
    if not series:
        return None
    fig, ax = new_figure(ctx)
    ids = [
        plot_series(ctx, ax, "errors", v, lvs, lambda lv: 100 * lv.error_rate) for v, lvs in series.items()
    ]
    log2_x(ax, loads_of(series))
    worst = max(
        (lv for lvs in series.values() for lv in lvs if lv.valid), key=lambda lv: lv.error_rate, default=None
    )
    top = worst.error_rate * 100 if worst else 0.0
    ax.set_ylim(-0.02 * max(5.0, top * 1.15), max(5.0, top * 1.15))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.set_xlabel("concurrent users (log scale)")
    ax.set_ylabel("failed requests (% of finished)")
    if worst is None or worst.failed == 0:
        title = f"No request failed in any valid point of the {scenario} scenario"
    else:
        statuses = ", ".join(
            f"{k}: {v}" for k, v in sorted(worst.failures_by_status.items(), key=lambda kv: -kv[1])[:3]
        )
        title = (
            f"{worst.variant} fails {worst.error_rate:.1%} of requests at {worst.users} users ({statuses})"
        )
    subtitle = f"{scenario} scenario · failed / (completed + failed) inside the measured window"
    return finish_chart(ctx, fig, [ax], "errors", scenario, title, subtitle, ids, series, [])


def _cpu(ctx: ChartContext, scenario: str) -> Chart | None:
    big_l = upstream_wait(ctx, scenario)
    series = {
        v: [lv for lv in lvs if lv.server_cpu_ms is not None]
        for v, lvs in series_of(ctx, scenario, "closed").items()
        if any(lv.server_cpu_ms is not None for lv in lvs)
    }
    if not series:
        return None
    fig, ax = new_figure(ctx)
    ids = [
        plot_series(ctx, ax, "cpu", v, lvs, lambda lv: lv.server_cpu_ms or math.nan)
        for v, lvs in series.items()
    ]
    log2_x(ax, loads_of(series))
    top = max((lv.server_cpu_ms or 0.0 for lvs in series.values() for lv in lvs), default=1.0)
    ax.set_ylim(0, top * 1.15 or 1.0)  # headroom, so the highest point is not cut by the frame
    ax.set_xlabel("concurrent users (log scale)")
    ax.set_ylabel("server CPU per request (ms)")
    medians = {
        v: statistics.median(lv.server_cpu_ms or 0.0 for lv in lvs if lv.valid)
        for v, lvs in series.items()
        if any(lv.valid for lv in lvs)
    }
    title = "Server CPU per request"
    if medians:
        cheap = min(medians, key=lambda v: medians[v])
        dear = max(medians, key=lambda v: medians[v])
        if medians[dear] <= 1.10 * medians[cheap]:
            title = (
                f"Server CPU per request: about {medians[dear]:.2g} ms for "
                f"{'every variant' if len(medians) > 1 else dear}"
            )
        else:
            low, high = f"{medians[cheap]:.2g} ms ({cheap})", f"{medians[dear]:.2g} ms ({dear})"
            title = f"Server CPU per request: {low} to {high}"
        if big_l:
            share = medians[dear] / (big_l * 1000)
            title += f", at most {share:.1%} of the {big_l:g} s upstream wait"
    subtitle = (
        f"{scenario} scenario · server process CPU time / completed requests · title: medians over all loads"
    )
    return finish_chart(ctx, fig, [ax], "cpu", scenario, title, subtitle, ids, series, [])


BREAKDOWN_PARTS = (
    ("before_upstream", "before the upstream call (queue, server work)"),
    ("upstream", "the upstream call (the mock's time)"),
    ("after_upstream", "after it (server work, the way back)"),
)


def breakdown_chart(ctx: ChartContext, scenario: str) -> Chart | None:
    """Where a request's time goes, per variant, at its highest valid load: p50 of each part."""
    big_l = upstream_wait(ctx, scenario)
    chosen: dict[str, Point] = {}
    for p in ctx.run.points:
        if p.scenario != scenario or p.load_model != "closed" or not p.valid or not p.breakdown_ms:
            continue
        if any(p.breakdown_ms.get(part) is None for part, _ in BREAKDOWN_PARTS):
            continue
        best = chosen.get(p.variant)
        if best is None or (p.users or 0) > (best.users or 0):
            chosen[p.variant] = p
    if not chosen:
        return None
    variants = [v for v in ctx.order if v in chosen]
    fig, ax = new_figure(ctx)
    shades = (ctx.style.muted, ctx.style.neutral, ctx.style.grid)
    lefts = [0.0] * len(variants)
    handles: list[Any] = []
    for (part, label), shade in zip(BREAKDOWN_PARTS, shades, strict=True):
        widths = [chosen[v].breakdown_ms[part]["p50"] / 1000.0 for v in variants]  # type: ignore[index]
        bars = ax.barh(
            range(len(variants)), widths, left=lefts, color=shade, edgecolor=ctx.style.fg, linewidth=0.4,
            label=label,
        )  # fmt: skip
        for bar in bars:
            bar.set_gid(f"series-breakdown-{part}")
        handles.append(bars)
        lefts = [a + b for a, b in zip(lefts, widths, strict=True)]
    ax.set_yticks(range(len(variants)))
    ax.set_yticklabels([f"{v} ({chosen[v].users} users)" for v in variants])
    ax.invert_yaxis()
    ax.set_xlabel("p50 of each part (s)")
    ax.set_xlim(0, max(lefts) * 1.08 or 1.0)
    waits = {v: chosen[v].breakdown_ms["before_upstream"]["p50"] for v in variants}  # type: ignore[index]
    worst = max(waits, key=lambda v: waits[v])
    least = min(waits, key=lambda v: waits[v])
    unit = (lambda ms: f"{ms / 1000 / big_l:.3g} L") if big_l else (lambda ms: f"{ms:.3g} ms")
    title = f"{worst} spends {unit(waits[worst])} before its upstream call at {chosen[worst].users} users"
    if least != worst:
        title += f"; {least} {waits[least]:.3g} ms"
    subtitle = (
        f"{scenario} scenario · each request joined with its upstream call by x-request-id (one monotonic "
        "clock) · p50 of each part at each variant's highest valid load"
    )
    series = {v: [lv for lv in series_of(ctx, scenario, "closed").get(v, []) if lv.valid] for v in variants}
    return finish_chart(
        ctx, fig, [ax], "breakdown", scenario, title, subtitle, [], series, handles, variants=False
    )


def capacity_chart(ctx: ChartContext, scenario: str) -> Chart | None:
    """Each variant's capacity as an interval: the bar to the most users that passed, the whisker on to
    the fewest above that failed (an arrow when none did), the predicted ceiling as a diamond."""
    entries = [e for e in ctx.run.capacity if e["scenario"] == scenario]
    if not entries:
        return None
    entries.sort(key=lambda e: ctx.order.index(e["variant"]) if e["variant"] in ctx.order else 0)
    fig, ax = new_figure(ctx)
    names = [str(e["variant"]) for e in entries]
    spans = [_span(e) for e in entries]
    bars = ax.barh(range(len(entries)), [max(lo, 0.7) for lo, _ in spans],
                   color=[variant_colour(ctx, n) for n in names], height=0.6)  # fmt: skip
    for bar, name in zip(bars, names, strict=True):
        bar.set_gid(f"series-capacity-{name}")
    right = max(max(lo, 1) for lo, _ in spans)
    for y, (lo, hi) in enumerate(spans):
        end = hi if hi is not None else lo * 2
        ax.annotate("", xy=(end, y), xytext=(max(lo, 0.7), y), arrowprops={
            "arrowstyle": "->" if hi is None else "|-|,widthA=0.3,widthB=0.3",
            "color": ctx.style.fg, "lw": ctx.style.line_w * 0.6, "shrinkA": 0, "shrinkB": 0,
        })  # fmt: skip
        right = max(right, end)
    predicted = [ctx.ceilings.get(n) for n in names]
    marks = ax.plot(
        [p if p else math.nan for p in predicted], range(len(entries)), linestyle="none", marker="D",
        markerfacecolor=ctx.style.bg, markeredgecolor=ctx.style.fg, label="predicted ceiling",
    )[0]  # fmt: skip
    right = max([right, *(p or 1 for p in predicted)])
    ax.set_xscale("log", base=2)
    ax.set_xlim(0.7, right * 1.5)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    size = ctx.style.font_pt * (0.9 if len(names) <= 12 else 0.75)
    ax.set_yticks(range(len(entries)))
    ax.set_yticklabels(names, fontsize=size)
    ax.invert_yaxis()
    # The interval and its bound as the right-hand tick labels: laid out with the axes, never over them.
    labels = ax.twinx()
    labels.set_ylim(ax.get_ylim())
    labels.set_yticks(range(len(entries)))
    bound = [str(e["bound"]).replace("_", " ") for e in entries]
    texts = [f"{interval_text(e, unit='')} ({b})" for e, b in zip(entries, bound, strict=True)]
    labels.set_yticklabels(texts, fontsize=size)
    labels.tick_params(length=0)
    labels.grid(False)
    ax.set_xlabel("concurrent users within the SLO (log scale)")
    slo = str(entries[0].get("slo", "the SLO"))
    top = max(entries, key=lambda e: int(e["users"]))
    low = min(entries, key=lambda e: int(e["users"]))
    title = f"Capacity under the SLO: {top['variant']} {interval_text(top)}"
    if low is not top:
        title += f", {low['variant']} {interval_text(low)}"
    subtitle = (
        f"{scenario} scenario · most closed-loop users meeting {slo} · bar: the most that passed; whisker: "
        "up to the fewest that failed (arrow: none did); diamond: the predicted ceiling · right: the "
        "interval and what bound it"
    )
    marks.set_label("_predicted")  # named in the subtitle: a legend would crowd the labels on the right
    return finish_chart(
        ctx, fig, [ax], "capacity", scenario, title, subtitle, [], {}, [], variants=False, require_valid=False
    )


def _span(entry: dict[str, Any]) -> tuple[int, int | None]:
    """(lo, hi) of a capacity entry; an entry from before intervals: its users and first failing level."""
    interval = entry.get("interval")
    if interval:
        return int(interval[0]), None if interval[1] is None else int(interval[1])
    first = entry.get("first_failing_users")
    return int(entry["users"]), None if first is None else int(first)


def _faults(ctx: ChartContext) -> Chart:
    """Goodput and upstream calls per client request against the upstream's fault rate, per variant and
    retry budget (dashed: no retries)."""
    entries = ctx.run.faults
    fig = Figure(figsize=(ctx.style.width_in, ctx.style.height_in), layout="constrained")
    good, calls = fig.subplots(1, 2)
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        groups[(str(e["variant"]), int(e["retries"]))].append(e)
    ids = []
    for (variant, retries), rows in sorted(groups.items()):
        rows.sort(key=lambda e: float(e["fault_rate"]))
        rates = [float(e["fault_rate"]) * 100 for e in rows]
        style = dict(
            color=variant_colour(ctx, variant),
            marker=variant_marker(ctx, variant),
            linestyle="--" if retries == 0 else "-",
            label=f"{variant}, {retries} retries",
        )
        (line,) = good.plot(rates, [float(e["goodput_rps"]) for e in rows], **style)  # type: ignore[arg-type]
        line.set_gid(f"series-faults-goodput-{variant}-r{retries}")
        calls.plot(rates, [e["upstream_calls_per_request"] or math.nan for e in rows], **style)  # type: ignore[arg-type]
        ids.append(line.get_gid())
    good.set_xlabel("upstream fault rate (%)")
    good.set_ylabel("goodput: successful answers/s")
    good.set_ylim(bottom=0)
    calls.set_xlabel("upstream fault rate (%)")
    calls.set_ylabel("upstream calls per client request")
    calls.set_ylim(bottom=0.9)
    worst = max(entries, key=lambda e: e["upstream_calls_per_request"] or 0)
    kinds = "/".join(worst.get("errors", []))
    title = (
        f"Retries turn a {float(worst['fault_rate']):.0%} upstream fault rate ({kinds}) into "
        f"{worst['upstream_calls_per_request']:.2f} upstream calls per request ({worst['variant']}, "
        f"{worst['retries']} retries)"
    )
    subtitle = (
        f"closed loop at {worst['users']} users · goodput = successful answers/s; dashed: no SDK retries "
        "· the mock counts every call it gets"
    )
    return finish_chart(
        ctx, fig, [good, calls], "goodput", "faults", title, subtitle, ids, {}, [], require_valid=False
    )


def _open_latency(ctx: ChartContext, scenario: str) -> Chart | None:
    big_l = upstream_wait(ctx, scenario)
    series = {
        v: [lv for lv in lvs if lv.p50_ms is not None] for v, lvs in series_of(ctx, scenario, "open").items()
    }
    series = {v: lvs for v, lvs in series.items() if lvs}
    if not series:
        return None
    fig, ax = new_figure(ctx)
    ids = []
    for v, lvs in series.items():
        ids.append(plot_series(ctx, ax, "open-p50", v, lvs, lambda lv: (lv.p50_ms or math.nan) / 1000))
        ids.append(
            plot_series(
                ctx,
                ax,
                "open-p99",
                v,
                lvs,
                lambda lv: (lv.p99_ms or math.nan) / 1000,
                linestyle=":",
                legend=False,
            )
        )
    if big_l:
        ax.axhline(big_l, color=ctx.style.muted, linewidth=ctx.style.line_w * 0.5, zorder=0)
    log2_x(ax, loads_of(series))
    log10_y(ax)
    ax.set_xlabel("offered load (requests/s, log scale)")
    ax.set_ylabel("latency (s, log)")
    title = "Latency against offered load"
    if big_l:
        vs = valid_only(series)
        saturation = {v: _saturates_at(lvs, big_l) for v, lvs in vs.items()}
        first = min(saturation, key=lambda v: saturation[v] or math.inf, default="")
        last = max(saturation, key=lambda v: saturation[v] or math.inf, default="")
        if ARTICLE_LOW in vs and ARTICLE_HIGH in vs:
            first, last = ARTICLE_LOW, ARTICLE_HIGH
        if not vs:
            title = "No valid open-loop point: see the note"
        elif saturation[first] is not None and first != last:
            held = vs[last][-1]
            title = f"{first} falls behind from {saturation[first]:g} requests/s offered (p50 above 2 x L)"
            title += (
                f"; {last} holds p50 {_secs(held.p50_ms)} up to {held.load:g} requests/s"
                if saturation[last] is None
                else f"; {last} from {saturation[last]:g} requests/s"
            )
        else:
            top_rate = max(lv.load for lvs in vs.values() for lv in lvs)
            title = f"Every variant keeps p50 within 2 x L up to {top_rate:g} requests/s offered"
    subtitle = f"{scenario} scenario · open loop · solid: p50 · dotted: p99" + (
        " · grey line: upstream latency L" if big_l else ""
    )
    extra = [
        Line2D([], [], color=ctx.style.fg, linestyle="-", label="p50"),
        Line2D([], [], color=ctx.style.fg, linestyle=":", label="p99"),
    ]
    return finish_chart(ctx, fig, [ax], "open-latency", scenario, title, subtitle, ids, series, extra)


# --- helpers ---------------------------------------------------------------------------------------------


def _top(levels: Sequence[Level], value: Callable[[Level], float]) -> Level:
    valid = [lv for lv in levels if lv.valid] or list(levels)
    return max(valid, key=lambda lv: (value(lv), lv.load))


def _pair(series: dict[str, list[Level]], value: Callable[[Level], float]) -> tuple[str | None, str | None]:
    """The two variants a title contrasts: the article's pair when both ran, else the lowest and highest."""
    if ARTICLE_LOW in series and ARTICLE_HIGH in series:
        return ARTICLE_LOW, ARTICLE_HIGH
    scored = {v: value(_top(lvs, value)) for v, lvs in series.items() if lvs}
    scored = {v: s for v, s in scored.items() if not math.isnan(s)}
    if not scored:
        return None, None
    low, high = min(scored, key=lambda v: scored[v]), max(scored, key=lambda v: scored[v])
    return (low, high) if low != high else (low, None)


def _at_common_load(a: Sequence[Level], b: Sequence[Level] | None) -> tuple[Level, Level | None]:
    """The two series' levels at the highest load both measured validly (else each one's highest)."""
    if not b:
        return a[-1], None
    common = {lv.load for lv in a} & {lv.load for lv in b}
    if not common:
        return a[-1], b[-1]
    top = max(common)
    return next(lv for lv in a if lv.load == top), next(lv for lv in b if lv.load == top)


def _follows(levels: Sequence[Level]) -> str:
    valid = [lv for lv in levels if lv.valid and lv.peak_in_flight is not None]
    if not valid:
        return "has no valid point"
    peak = max(valid, key=lambda lv: (lv.peak_in_flight or 0, lv.load))
    top = valid[-1]
    if (top.peak_in_flight or 0) < 0.9 * top.users:
        if top.server_cpu_bound:  # short of the load for lack of CPU, not at a concurrency ceiling
            return f"runs out of CPU at {top.users} users ({top.peak_in_flight} in flight)"
        return f"stops at {peak.peak_in_flight} requests in flight"
    return f"follows the load to {top.peak_in_flight}"


def _plateaus(series: dict[str, list[Level]]) -> dict[int, tuple[list[str], float]]:
    """Variants whose in-flight count stops below the load, grouped by where it stops, with the knee:
    the lowest measured load at which the plateau is reached (not the theoretical one, which may not
    have been measured)."""
    groups: dict[int, tuple[list[str], float]] = {}
    for variant, levels in series.items():
        valid = [lv for lv in levels if lv.valid and lv.peak_in_flight is not None]
        if len(valid) < 2:
            continue
        top = valid[-1]
        if top.server_cpu_bound:
            continue  # a CPU-bound server stops short for lack of CPU, not at a concurrency ceiling
        if (top.peak_in_flight or 0) < 0.9 * top.users:
            cap = max(lv.peak_in_flight or 0 for lv in valid)
            knee = min(lv.load for lv in valid if (lv.peak_in_flight or 0) >= cap)
            names, old_knee = groups.get(cap, ([], knee))
            groups[cap] = ([*names, variant], min(knee, old_knee))
    return dict(sorted(groups.items()))


def _plateau_labels(series: dict[str, list[Level]]) -> dict[str, str]:
    """': holds 4' for each variant whose calls in flight stop below the load (for the legend, when the
    lines are too many to name over the plot)."""
    return {
        variant: f": holds {cap}" for cap, (variants, _) in _plateaus(series).items() for variant in variants
    }


def _annotate_knees(
    ctx: ChartContext, ax: Axes, series: dict[str, list[Level]], y_of: Callable[[float], float]
) -> None:
    """Name each plateau at the right end of its line, with an arrow back to its knee.

    A label sits above its line unless the next plateau up is close (within 3x), then below it, so two
    neighbouring plateaus (32 and 40, say) never share a strip.
    """
    groups = _plateaus(series)
    caps = [c for c in groups if c >= 1]
    right = max(loads_of(series))
    for i, cap in enumerate(caps):
        variants, knee = groups[cap]
        below = i + 1 < len(caps) and caps[i + 1] / cap < 3
        names = ", ".join(variants)
        sep = "\n" if len(names) > 24 else " "
        colour = variant_colour(ctx, variants[0])
        ax.annotate(
            f"{names}:{sep}{cap} in flight, then requests queue",
            xy=(knee, y_of(cap)),
            xytext=(right, y_of(cap / 1.15 if below else cap * 1.15)),
            textcoords="data",
            ha="right",
            va="top" if below else "bottom",
            fontsize=ctx.style.font_pt * 0.85,
            color=colour,
            arrowprops={
                "arrowstyle": "->",
                "color": colour,
                "lw": ctx.style.line_w * 0.5,
                "relpos": (0.0, 1.0 if below else 0.0),
                "shrinkB": ctx.style.marker_pt,
            },
            zorder=6,
        )


def _saturates_at(levels: Sequence[Level], big_l: float) -> float | None:
    for lv in levels:
        if lv.valid and lv.p50_ms is not None and lv.p50_ms / 1000 > 2 * big_l:
            return lv.load
    return None


def _secs(ms: float | None) -> str:
    if ms is None:
        return "?"
    s = ms / 1000
    return f"{s:.2g} s" if s < 10 else f"{s:.0f} s"
