"""Charts of the cost of concurrency: memory against calls in flight (one per scenario), and reach (how
many concurrent streams each variant held, and what failed first).

Built from :mod:`loadtests.reporting.chartkit` like every chart (its figure, legend, notes and footer), kept
in their own module so the memory work does not crowd the sweep's charts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from loadtests.analysis.memory import worker_uss_mb
from loadtests.reporting.chartkit import (
    Chart,
    ChartContext,
    finish_chart,
    new_figure,
    variant_colour,
    variant_marker,
)


def memory_chart(ctx: ChartContext, scenario: str) -> Chart | None:
    """Peak USS of the server tree against the mock's mean calls in flight, per point; dashed: the fit."""
    if scenario == "overhead":  # an instant upstream: nothing stays in flight, so there is no slope to draw
        return None
    points = [
        p
        for p in ctx.run.points
        if p.scenario == scenario
        and p.load_model == "closed"
        and p.server_uss_mb is not None
        and p.in_flight_mean is not None
    ]
    if not points:
        return None
    fits = {f.variant: f for f in ctx.fits if f.scenario == scenario}
    by_variant: dict[str, list] = defaultdict(list)  # type: ignore[type-arg]
    for p in points:
        by_variant[p.variant].append(p)
    fig, ax = new_figure(ctx)
    ids: list[str] = []
    invalid: list[str] = []
    top = max(p.in_flight_mean or 0.0 for p in points)
    for variant in [v for v in ctx.order if v in by_variant]:
        pts = sorted(by_variant[variant], key=lambda p: p.in_flight_mean or 0.0)
        colour = variant_colour(ctx, variant)
        marker = variant_marker(ctx, variant)
        valid = [p for p in pts if p.valid]
        (line,) = ax.plot(
            [p.in_flight_mean for p in valid], [p.server_uss_mb for p in valid], color=colour,
            marker=marker, linestyle="none", markersize=ctx.style.marker_pt, label=variant,
        )  # fmt: skip
        line.set_gid(f"series-memory-{variant}")
        ids.append(line.get_gid())
        bad = [p for p in pts if not p.valid]
        if bad:
            ax.plot(
                [p.in_flight_mean for p in bad], [p.server_uss_mb for p in bad], linestyle="none",
                marker=marker, markerfacecolor=ctx.style.bg, markeredgecolor=colour,
                markersize=ctx.style.marker_pt,
            )  # fmt: skip
            invalid += [f"{variant} at {p.users} users" for p in bad]
        fit = fits.get(variant)
        if fit is not None and fit.usable and fit.mb_per_call is not None and fit.intercept_mb is not None:
            xs = [0.0, max(fit.in_flight_max, 1.0)]
            (fl,) = ax.plot(
                xs, [fit.intercept_mb + fit.mb_per_call * x for x in xs], color=colour, linestyle="--",
                linewidth=ctx.style.line_w * 0.8,
            )  # fmt: skip
            fl.set_gid(f"series-memory-fit-{variant}")
    ax.set_xlabel("upstream calls in flight (the mock's gauge, mean over the window)")
    ax.set_ylabel("peak USS of the server tree (MB)")
    ax.set_xlim(left=0, right=top * 1.08 + 1)
    ax.set_yscale("log")  # 60 MB for one event loop, 3,000 MB for 64 workers: both readable
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    title = _memory_title(fits, by_variant)
    subtitle = (
        f"{scenario} scenario · closed loop · one marker per point: peak USS of the whole tree (master, "
        "workers) sampled every 0.5 s · dashed: least-squares fit (the slope is memory per in-flight call)"
    )
    extra = [Line2D([], [], color=ctx.style.muted, linestyle="--", label="least-squares fit")]
    chart = finish_chart(
        ctx, fig, [ax], "memory", scenario, title, subtitle, ids, {}, extra, require_valid=False
    )
    chart.invalid = invalid
    return chart


def _memory_title(fits: dict[str, Any], by_variant: dict[str, list[Any]]) -> str:
    """The slope of the dearest and the cheapest variant; for ceiling variants (no slope), a worker's cost."""
    usable = [f for f in fits.values() if f.usable and f.mb_per_call is not None]
    if usable:
        best = max(usable, key=lambda f: f.mb_per_call or 0.0)
        title = f"Memory per call in flight: {best.variant} {_kb(best.mb_per_call)} per call"
        low = min(usable, key=lambda f: f.mb_per_call or 0.0)
        if low is not best:
            title += f", {low.variant} {_kb(low.mb_per_call)}"
    else:
        title = "Memory against calls in flight: no variant spanned enough calls for a slope"
    workers = {
        variant: worker
        for variant, fit in fits.items()
        if not fit.usable
        and (worker := worker_uss_mb(by_variant[variant])) is not None
        and fit.processes
        and fit.processes > 2
    }
    if workers:
        # A ceiling, no slope: what one more worker process costs is the figure to read (the dearest and
        # the cheapest; every one is in the report's memory table).
        dear = max(workers, key=lambda v: workers[v])
        cheap = min(workers, key=lambda v: workers[v])
        title += f"; a worker process costs {workers[cheap]:,.0f} MB ({cheap})" + (
            f" to {workers[dear]:,.0f} MB ({dear})" if dear != cheap else ""
        )
    return title


def reach_chart(ctx: ChartContext) -> Chart | None:
    """Streams attempted against streams held (the mock's peak), per variant; annotated with what failed."""
    entries = [e for e in ctx.run.reach if e.get("first_failure") != "not run"]
    if not entries:
        return None
    fig, ax = new_figure(ctx)
    groups: dict[str, list[dict]] = defaultdict(list)  # type: ignore[type-arg]
    for e in entries:
        groups[str(e["variant"])].append(e)
    levels = sorted({int(e["streams"]) for e in entries})
    ax.plot(levels, levels, color=ctx.style.muted, linestyle=":", linewidth=ctx.style.line_w * 0.7)
    ids = []
    for variant in sorted(groups, key=lambda v: ctx.order.index(v) if v in ctx.order else 99):
        rows = sorted(groups[variant], key=lambda e: int(e["streams"]))
        colour = variant_colour(ctx, variant)
        marker = variant_marker(ctx, variant)
        label = variant + (f" (pool {rows[0]['upstream_pool']})" if rows[0].get("upstream_pool") else "")
        (line,) = ax.plot(
            [int(e["streams"]) for e in rows], [max(int(e.get("held") or 0), 1) for e in rows], color=colour,
            marker=marker, markersize=ctx.style.marker_pt, label=label,
        )  # fmt: skip
        line.set_gid(f"series-reach-{variant}")
        ids.append(line.get_gid())
        for e in rows:
            if e.get("first_failure") and e["first_failure"] != "nothing":
                ax.annotate(
                    str(e["first_failure"]), (int(e["streams"]), max(int(e.get("held") or 0), 1)),
                    xytext=(6, -12), textcoords="offset points", fontsize=ctx.style.font_pt * 0.7,
                    color=colour,
                )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xticks(levels)
    ax.set_xlim(min(levels) / 1.5, max(levels) * 2.5)
    ax.set_xlabel("concurrent streams attempted (closed-loop users, log scale)")
    ax.set_ylabel("streams the mock saw in flight at once (log)")
    held = [e for e in entries if e.get("ok")]
    best = max(held, key=lambda e: int(e["streams"])) if held else None
    title = (
        f"Reach: {best['variant']} held {int(best['streams']):,} concurrent streams"
        if best is not None
        else "Reach: no variant held its first level"
    )
    worst = [e for e in entries if not e.get("ok")]
    if worst:
        first = min(worst, key=lambda e: int(e["streams"]))
        title += (
            f"; first failure: {first['variant']} at {int(first['streams']):,} ({first['first_failure']})"
        )
    big_l = entries[0].get("latency_s")
    subtitle = (
        "stream scenario · each level held for a window after one L"
        + (
            f" (L = {big_l:g} s at the smallest level, longer above)"
            if isinstance(big_l, int | float)
            else ""
        )
        + " · dotted: every stream held · labels: what failed first"
    )
    extra = [Line2D([], [], color=ctx.style.muted, linestyle=":", label="every stream held")]
    return finish_chart(
        ctx, fig, [ax], "reach", "stream", title, subtitle, ids, {}, extra, require_valid=False
    )


def _kb(mb: float | None) -> str:
    if mb is None or not math.isfinite(mb):
        return "unknown"
    return f"{mb * 1024:,.0f} KB"
