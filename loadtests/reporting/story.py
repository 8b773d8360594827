"""The story set: a few charts that tell the finding in order, each with one message and at most
STORY_SERIES series, chosen by rule from the run so it works for any run.

1. the article's claim: its two variants (flask-sync, fastapi-async), calls in flight against users;
2. the serving model decides: one variant per concurrency model (processes, threads, green threads, an
   event loop, a thread pool, granian's threads), their capacities as intervals;
3. the price in memory: the same variants' memory against calls in flight;
4. where the time goes: the same variants' time before, during and after the upstream call;
5. the latency spectrum: latency by percentile for the claim's variants at one load (raw records).

A chart is left out when the run has nothing for it. The catalogue (``charts.build_charts``) stays
complete; these are built from the same chart functions over the chosen variants only.
"""

from __future__ import annotations

import dataclasses
import math

from matplotlib import rc_context
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from loadtests.analysis.run_analysis import RunAnalysis
from loadtests.analysis.spectrum import Spectrum, one_in
from loadtests.reporting import charts as catalogue
from loadtests.reporting.chart_style import Style
from loadtests.reporting.chartkit import (
    ARTICLE_HIGH,
    ARTICLE_LOW,
    Chart,
    ChartContext,
    finish_chart,
    log10_y,
    make_context,
    new_figure,
    variant_colour,
    variant_marker,
)
from loadtests.reporting.memchart import memory_chart
from loadtests.results import RunResults

STORY_SERIES = 6
# One variant per way of holding calls in flight, in the order the story tells them; the first of each
# row that the run measured stands for its model.
MODELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("worker processes", ("flask-sync", "flask-sync-64")),
    ("threads", ("flask-gthread", "flask-a2wsgi")),
    ("green threads", ("flask-gevent",)),
    ("an event loop", ("fastapi-async", "quart-async", "fastapi-granian", "fastapi-gunicorn-asgi")),
    ("a thread pool", ("fastapi-def",)),
    ("granian's threads", ("flask-granian",)),
)


def models_of(run: RunResults) -> dict[str, str]:
    """variant -> its model's name, one variant per model the run measured (at most STORY_SERIES)."""
    measured = {p.variant for p in run.points if p.valid}
    chosen: dict[str, str] = {}
    for model, candidates in MODELS:
        found = next((v for v in candidates if v in measured), None)
        if found is not None and len(chosen) < STORY_SERIES:
            chosen[found] = model
    return chosen


def subset(run: RunResults, variants: set[str]) -> RunResults:
    """The run with only ``variants``' points, capacities and variant records."""
    return dataclasses.replace(
        run,
        variants=[v for v in run.variants if v.name in variants],
        points=[p for p in run.points if p.variant in variants],
        capacity=[e for e in run.capacity if e.get("variant") in variants],
        faults=[],
        reach=[],
    )


def build_story(run: RunResults, style: Style, analysis: RunAnalysis) -> list[Chart]:
    """The story's charts, numbered in reading order ("1-claim", "2-models", ...)."""
    story: list[Chart] = []
    pair = {ARTICLE_LOW, ARTICLE_HIGH} & {p.variant for p in run.points}
    models = models_of(run)
    with rc_context(style.rc()):
        if len(pair) == 2:
            ctx = make_context(subset(run, pair), style, analysis.fits)
            story.append(_named(catalogue.inflight_chart(ctx, _scenario(ctx)), "1-claim"))
        if models:
            ctx = make_context(subset(run, set(models)), style, analysis.fits)
            scenario = _scenario(ctx)
            shown = catalogue.capacity_chart(ctx, scenario) or catalogue.throughput_chart(ctx, scenario)
            story.append(_named(_with_models(shown, models), "2-models"))
            story.append(_named(memory_chart(ctx, scenario), "3-memory"))
            story.append(_named(catalogue.breakdown_chart(ctx, scenario), "4-time"))
        if analysis.spectra:
            ctx = make_context(subset(run, {s.variant for s in analysis.spectra}), style, analysis.fits)
            story.append(spectrum_chart(ctx, analysis.spectra))
    return [chart for chart in story if chart is not None]


def _scenario(ctx: ChartContext) -> str:
    """The scenario the story speaks of: the claim's (analyse, then stream, then chat)."""
    present = {lv.scenario for lv in ctx.levels if lv.load_model == "closed" and lv.valid}
    return next((s for s in ("analyse", "stream", "chat") if s in present), min(present, default="analyse"))


def _with_models(chart: Chart | None, models: dict[str, str]) -> Chart | None:
    """The capacity chart's rows named by their model too: 'fastapi-async (an event loop)'."""
    if chart is None or chart.kind != "capacity":
        return chart
    axis = chart.figure.axes[0]
    labels = [label.get_text() for label in axis.get_yticklabels()]
    axis.set_yticks(
        axis.get_yticks(), [f"{name} ({models[name]})" if name in models else name for name in labels]
    )
    return chart


def _named(chart: Chart | None, name: str) -> Chart | None:
    return None if chart is None else dataclasses.replace(chart, name=name)


def spectrum_chart(ctx: ChartContext, spectra: list[Spectrum]) -> Chart:
    """Latency by percentile, '1 in N' on a log axis: where each variant's slowest requests are."""
    fig, ax = new_figure(ctx)
    ids = []
    for spectrum in spectra:
        xs = [one_in(q) for q, _ in spectrum.percentiles]
        ys = [ms / 1000.0 for _, ms in spectrum.percentiles]
        (line,) = ax.plot(
            xs, ys, color=variant_colour(ctx, spectrum.variant), marker=variant_marker(ctx, spectrum.variant),
            markersize=ctx.style.marker_pt * 0.8, label=f"{spectrum.variant} ({spectrum.count:,} requests)",
        )  # fmt: skip
        line.set_gid(f"series-spectrum-{spectrum.variant}")
        ids.append(line.get_gid())
    if ctx.big_l:
        ax.axhline(ctx.big_l, color=ctx.style.muted, linewidth=ctx.style.line_w * 0.5, zorder=0)
    ax.set_xscale("log")
    top = max(one_in(q) for s in spectra for q, _ in s.percentiles)
    ticks = [t for t in (2, 10, 100, 1_000, 10_000, 100_000) if t <= top * 1.01]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 - 100 / v:g}%"))
    ax.xaxis.set_minor_locator(NullLocator())
    log10_y(ax)
    ax.set_xlabel("percentile (log scale of '1 in N': 90% = 1 in 10, 99% = 1 in 100)")
    ax.set_ylabel("latency (s, log)")
    users = spectra[0].users
    scenario = spectra[0].scenario
    title = "; ".join(
        f"{s.variant}: half its requests within {_secs(s.percentiles[0][1])}, the slowest "
        f"{_secs(s.percentiles[-1][1])}"
        for s in spectra
    )
    subtitle = (
        f"{scenario} scenario · closed loop at {users} users · every successful request of the measured "
        "window · grey line: upstream latency L"
    )
    return dataclasses.replace(
        finish_chart(ctx, fig, [ax], "spectrum", scenario, title, subtitle, ids, {}, [], require_valid=False),
        name="5-spectrum",
    )


def _secs(ms: float) -> str:
    s = ms / 1000.0
    return f"{s:.3g} s" if not math.isnan(s) else "?"
