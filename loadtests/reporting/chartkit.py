"""The chart kit: what every chart of the report is built from (its context, figure, series, legend, notes
and footer, log axes, word wrap), so each chart module only says what it draws.

Every chart is built on ``matplotlib.figure.Figure`` (no pyplot state), so the report can render many
without leaks. Valid levels are drawn filled and joined by a line; levels with no valid repeat are drawn
hollow, never joined, and named in a note under the chart. Each data line carries an SVG id
``series-<kind>-<variant>`` so the written SVG can be checked for its series.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.textpath import TextToPath
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator

from loadtests.analysis.claims import upstream_latency
from loadtests.analysis.levels import Level, levels_of, select
from loadtests.analysis.memory import MemoryFit
from loadtests.reporting.chart_style import Style
from loadtests.results import RunResults

_TEXT_PATH = TextToPath()


ONLY_VALID = "the only variant with valid points here"


ARTICLE_LOW = "flask-sync"


ARTICLE_HIGH = "fastapi-async"


# overhead runs against an instant mock; a jobs request returns its 202 before the upstream call.
NO_UPSTREAM_WAIT = frozenset({"overhead", "jobs"})


@dataclass(kw_only=True)
class Chart:
    name: str  # file stem, e.g. "analyse-throughput"
    kind: str
    scenario: str
    title: str  # the finding
    subtitle: str  # what is plotted
    figure: Figure
    series: list[str] = field(default_factory=list)  # SVG ids of the data lines
    invalid: list[str] = field(default_factory=list)  # the hollow points, described


@dataclass(frozen=True, kw_only=True)
class ChartContext:
    run: RunResults
    levels: list[Level]
    big_l: float | None
    style: Style
    order: list[str]  # variants in a stable order: colour index
    ceilings: dict[str, int]
    footer: str
    fits: list[MemoryFit]  # memory per call in flight (the run's analysis, computed once)
    looks: dict[str, tuple[str, str]]  # (colour, marker) per variant, none shared (Style.looks)


def save_chart(chart: Chart, out_dir: Path, style: Style) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{chart.name}.png"
    svg = out_dir / f"{chart.name}.svg"
    with rc_context(style.rc()):
        chart.figure.savefig(png, dpi=2 * style.dpi, metadata={"Software": None})
        # The layout is settled by the first save; freezing it spares the second save a second layout pass.
        chart.figure.set_layout_engine("none")
        chart.figure.savefig(svg, metadata={"Date": None, "Creator": None})
    return png, svg


def footer_text(run: RunResults) -> str:
    md = run.metadata
    big_l = upstream_latency(run)
    parts = [
        f"mock profile {md.get('mock_profile', '?')}",
        f"time scale {md.get('time_scale', '?')}",
        f"L = {big_l:g} s" if big_l else "L unknown",
        f"preset {md.get('preset', '?')}",
        f"{md.get('cpu_model', 'unknown CPU')}, {md.get('cpu_count', '?')} CPUs",
    ]
    if md.get("started_at"):
        parts.append(str(md["started_at"])[:10])
    if md.get("git_commit"):
        parts.append(f"git {str(md['git_commit'])[:7]}" + (" (dirty)" if md.get("git_dirty") else ""))
    if md.get("synthetic"):
        parts.append("SYNTHETIC DATA, not a measurement")
    return " · ".join(parts)


def make_context(run: RunResults, style: Style, fits: list[MemoryFit]) -> ChartContext:
    levels = levels_of(run)
    order = list(dict.fromkeys([v.name for v in run.variants] + [lv.variant for lv in levels]))
    # 0: nothing predicted (your own app's target without a ceiling): no dashed ceiling, no marker.
    ceilings = {v.name: v.predicted_ceiling for v in run.variants if v.predicted_ceiling}
    for lv in levels:
        if lv.predicted_ceiling:
            ceilings.setdefault(lv.variant, lv.predicted_ceiling)
    return ChartContext(
        run=run,
        levels=levels,
        big_l=upstream_latency(run),
        style=style,
        order=order,
        ceilings=ceilings,
        footer=footer_text(run),
        fits=fits,
        looks=style.looks(order),
    )


def upstream_wait(ctx: ChartContext, scenario: str) -> float | None:
    """L for scenarios whose requests wait on one upstream call; None where L means nothing."""
    return None if scenario in NO_UPSTREAM_WAIT else ctx.big_l


def scenarios_of(ctx: ChartContext, load_model: str) -> list[str]:
    declared = [s for s in ctx.run.metadata.get("scenarios", []) if isinstance(s, str)]
    present = [lv.scenario for lv in ctx.levels if lv.load_model == load_model]
    return [s for s in dict.fromkeys(declared + sorted(set(present))) if s in present]


def series_of(ctx: ChartContext, scenario: str, load_model: str) -> dict[str, list[Level]]:
    out: dict[str, list[Level]] = defaultdict(list)
    for lv in select(ctx.levels, scenario=scenario, load_model=load_model):
        out[lv.variant].append(lv)
    return {v: sorted(out[v], key=lambda lv: lv.load) for v in ctx.order if v in out}


def variant_colour(ctx: ChartContext, variant: str) -> str:
    return ctx.looks[variant][0] if variant in ctx.looks else ctx.style.muted


def variant_marker(ctx: ChartContext, variant: str) -> str:
    return ctx.looks[variant][1] if variant in ctx.looks else "o"


def peak_of(lv: Level) -> float:
    return float(lv.peak_in_flight) if lv.peak_in_flight is not None else math.nan


def plot_series(
    ctx: ChartContext,
    ax: Axes,
    kind: str,
    variant: str,
    levels: Sequence[Level],
    value: Callable[[Level], float],
    *,
    linestyle: Any = "-",
    legend: bool = True,
    marker_scale: float = 1.0,
    label: str | None = None,
) -> str:
    colour = variant_colour(ctx, variant)
    marker = variant_marker(ctx, variant)
    gid = f"series-{kind}-{variant}"
    valid = [lv for lv in levels if lv.valid]
    invalid = [lv for lv in levels if not lv.valid]
    (line,) = ax.plot(
        [lv.load for lv in valid],
        [value(lv) for lv in valid],
        color=colour,
        marker=marker,
        linestyle=linestyle,
        markersize=ctx.style.marker_pt * marker_scale,
        label=(label or variant) if legend else None,
        zorder=4 if variant in (ARTICLE_LOW, ARTICLE_HIGH) else 3,
    )
    line.set_gid(gid)
    if invalid:
        hollow = ax.plot(
            [lv.load for lv in invalid],
            [value(lv) for lv in invalid],
            linestyle="none",
            marker=marker,
            markerfacecolor=ctx.style.bg,
            markeredgecolor=colour,
            markersize=ctx.style.marker_pt * marker_scale,
            markeredgewidth=ctx.style.line_w * 0.7,
            zorder=5,
        )[0]
        hollow.set_gid(f"{gid}-invalid")
    return gid


def new_figure(ctx: ChartContext) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(ctx.style.width_in, ctx.style.height_in), layout="constrained")
    return fig, fig.add_subplot()


def finish_chart(
    ctx: ChartContext,
    fig: Figure,
    axes: Sequence[Axes],
    kind: str,
    scenario: str,
    title: str,
    subtitle: str,
    ids: list[str],
    series: dict[str, list[Level]],
    extra: list[Line2D],
    *,
    variants: bool = True,
    require_valid: bool = True,  # the title speaks of valid levels only (capacity entries are their own)
) -> Chart:
    """The title (the finding), the subtitle (what is plotted), at most two lines of caveats and the run
    under the plot, and a legend sized to the height they leave."""
    invalid = [lv.describe() + invalid_reason(lv) for lvs in series.values() for lv in lvs if not lv.valid]
    if require_valid and not valid_only(series):
        title = f"No valid point to draw a finding from ({scenario} scenario): every point is hollow"
    plot_height_pt = _texts(ctx, fig, title, subtitle, _notes(ctx, series, invalid))
    _legend(ctx, axes, extra, with_variants=variants, with_hollow=bool(invalid), height_pt=plot_height_pt)
    return Chart(
        name=f"{scenario}-{kind}",
        kind=kind,
        scenario=scenario,
        title=title,
        subtitle=subtitle,
        figure=fig,
        series=ids,
        invalid=invalid,
    )


LEGEND_ROW = 1.55  # a legend entry's height in units of its font size (text, spacing)


def _legend(
    ctx: ChartContext,
    axes: Sequence[Axes],
    extra: list[Line2D],
    *,
    with_variants: bool,
    with_hollow: bool,
    height_pt: float,
) -> None:
    """Outside the first row's last axes (constrained layout makes room, no data is covered), in as many
    columns as the plot's height needs, so it never runs into the notes below."""
    style = ctx.style
    handles: list[Any] = []
    if with_variants:
        handles += axes[0].get_legend_handles_labels()[0]
    handles += extra
    if with_hollow:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                markerfacecolor=style.bg,
                markeredgecolor=style.fg,
                label="hollow: invalid point",
            )
        )
    if not handles:
        return
    size = style.font_pt * (0.85 if len(handles) <= 12 else 0.75)
    rows_fit = max(1, int(height_pt / (size * LEGEND_ROW)))
    columns = math.ceil(len(handles) / rows_fit)
    anchor = axes[min(len(axes), row_length(axes)) - 1]
    anchor.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, ncol=columns,
        fontsize=size, columnspacing=1.0, handlelength=1.6,
    )  # fmt: skip


def _notes(ctx: ChartContext, series: dict[str, list[Level]], invalid: list[str]) -> list[str]:
    """At most two caveats, each a line: the charts point to the report's tables for the detail."""
    notes = []
    if len(invalid) == 1:
        notes.append(f"Hollow marker: an invalid level, left out of every finding: {invalid[0]}")
    elif invalid:
        notes.append(
            f"Hollow markers: {len(invalid)} invalid levels, left out of every finding (the report's table "
            "of invalid points says why)"
        )
    cpu_bound = [lv for lvs in series.values() for lv in lvs if lv.valid and lv.server_cpu_bound]
    if cpu_bound:
        where = (
            loads_where(series, lambda lv: lv.valid and lv.server_cpu_bound)
            if len(cpu_bound) <= 2
            else (f"{len(cpu_bound)} levels, in the report's table of points")
        )
        notes.append(
            f"CPU-bound (a server process near 100% of a core: this machine's CPU, not a concurrency "
            f"ceiling, set the limit): {where}"
        )
    return [*notes, ctx.footer]


def _texts(ctx: ChartContext, fig: Figure, title: str, subtitle: str, notes: list[str]) -> float:
    """Title and subtitle above the plot, notes below it, each wrapped to the figure's width; the plot
    gets the height they leave, which is returned (points)."""
    style = ctx.style
    width_pt = style.width_in * 72 * 0.97
    title_text = wrap_text(_two_lines(title, width_pt, style.title_pt), width_pt, style.title_pt, bold=True)
    sub_text = wrap_text(subtitle, width_pt, style.font_pt * 0.9)
    small = style.font_pt * 0.72
    note_text = "\n".join(wrap_text(n, width_pt, small) for n in notes)
    height = style.height_in
    pad = 0.12
    title_h = (title_text.count("\n") + 1) * style.title_pt * 1.3 / 72
    sub_h = (sub_text.count("\n") + 1) * style.font_pt * 0.9 * 1.35 / 72
    note_h = (note_text.count("\n") + 1) * small * 1.4 / 72
    top = 1 - (pad + title_h + sub_h + pad) / height
    bottom = (pad + note_h + pad * 0.5) / height
    fig.get_layout_engine().set(rect=(0, bottom, 1, top - bottom))  # type: ignore[union-attr]
    fig.text(
        0.01, 1 - pad / height, title_text, ha="left", va="top", fontsize=style.title_pt, fontweight="bold"
    )
    fig.text(
        0.01,
        1 - (pad + title_h) / height,
        sub_text,
        ha="left",
        va="top",
        fontsize=style.font_pt * 0.9,
        color=style.muted,
    )
    fig.text(0.01, pad / height, note_text, ha="left", va="bottom", fontsize=small, color=style.muted)
    return (top - bottom) * height * 72 * 0.92  # the axes' height, less their label's room


def _two_lines(title: str, width_pt: float, size_pt: float) -> str:
    """A title that wraps to more than two lines loses its last clauses ('; ...'): the finding first."""
    clauses = title.split("; ")
    while (
        len(clauses) > 1
        and wrap_text("; ".join(clauses) + "; ...", width_pt, size_pt, bold=True).count("\n") > 1
    ):
        clauses.pop()
    return "; ".join(clauses) + ("; ..." if len(clauses) < len(title.split("; ")) else "")


def row_length(axes: Sequence[Axes]) -> int:
    first = axes[0].get_subplotspec()
    return first.get_gridspec().ncols if first is not None else 1


def wrap_text(text: str, width_pt: float, size_pt: float, *, bold: bool = False) -> str:
    """Greedy word wrap measured with the real font, so a line neither runs off the figure nor stops short."""
    prop = FontProperties(family="DejaVu Sans", size=size_pt, weight="bold" if bold else "normal")
    lines: list[str] = []
    for word in text.split(" "):
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and _TEXT_PATH.get_text_width_height_descent(candidate, prop, ismath=False)[0] <= width_pt:
            lines[-1] = candidate
        else:
            lines.append(word)
    return "\n".join(lines)


def invalid_summary(series: dict[str, list[Level]]) -> str:
    """'flask-sync 2, 8, 32 users; fastapi-async 128 users': compact, complete; reasons are in the report."""
    shown = loads_where(series, lambda lv: not lv.valid)
    return shown + " (reasons in the report's table of invalid points)"


def loads_where(series: dict[str, list[Level]], keep: Callable[[Level], bool]) -> str:
    """'flask-sync at 2, 8 users; fastapi-async at 128 users': the levels ``keep`` picks, per variant."""
    parts = []
    for variant, levels in series.items():
        loads = [lv for lv in levels if keep(lv)]
        if loads:
            unit = "users" if loads[0].load_model == "closed" else "requests/s"
            parts.append(f"{variant} at {', '.join(f'{lv.load:g}' for lv in loads)} {unit}")
    return "; ".join(parts)


def invalid_reason(lv: Level) -> str:
    return f" ({', '.join(lv.invalid_reasons)})" if lv.invalid_reasons else ""


def loads_of(series: dict[str, list[Level]]) -> list[float]:
    return sorted({lv.load for lvs in series.values() for lv in lvs})


MIN_TICK_OCTAVES = 0.4  # closer labels on a log2 axis overlap (a capacity search's 86, 107, 128)
MAX_TICKS = 8  # over a wide axis (1 to 512 users) the talk style's large labels need a full octave apart


def log2_x(ax: Axes, loads: Sequence[float], *, sparse: bool = False) -> None:
    ax.set_xscale("log", base=2)
    ticks: list[float] = []
    span = math.log2(max(loads) / min(loads)) if loads else 0.0
    apart = max(MIN_TICK_OCTAVES, span / MAX_TICKS)
    for load in sorted(loads):
        if not ticks or math.log2(load) - math.log2(ticks[-1]) >= apart:
            ticks.append(load)
    if sparse and len(ticks) > 5:
        ticks = ticks[:: math.ceil(len(ticks) / 5)]
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    if loads:
        ax.set_xlim(min(loads) / 1.25, max(loads) * 1.25)


def log2_y(ax: Axes) -> None:
    ax.set_yscale("log", base=2)
    lo, hi = ax.get_ylim()
    lo = max(lo, 1e-3)
    exps = range(math.floor(math.log2(lo)), math.ceil(math.log2(hi)) + 1)
    step = max(1, math.ceil(len(exps) / 10))
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator([2.0**e for e in exps[::step]]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylim(lo, hi)


def valid_only(series: dict[str, list[Level]]) -> dict[str, list[Level]]:
    """What a title may speak of: valid levels, and only variants that have one."""
    out = {v: [lv for lv in lvs if lv.valid] for v, lvs in series.items()}
    return {v: lvs for v, lvs in out.items() if lvs}


def _log10_ticks(axis: Any, lo: float, hi: float, *, dense: bool) -> None:
    decades = math.log10(hi / lo) if lo > 0 else 3
    if not dense:  # a small panel: few labels, or they run into each other
        subs: tuple[float, ...] = (1.0, 3.0) if decades < 1.5 else (1.0,)
    elif decades < 1.2:
        subs = (1.0, 2.0, 3.0, 5.0)
    elif decades < 2.2:
        subs = (1.0, 2.0, 5.0)
    elif decades < 3.5:
        subs = (1.0, 3.0)
    else:
        subs = (1.0,)
    axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def log10_y(ax: Axes, *, dense: bool = True) -> None:
    """Log y axis labelled 1-2-5 per decade (``dense``), so a short range still gets readable ticks."""
    ax.set_yscale("log")
    _log10_ticks(ax.yaxis, *ax.get_ylim(), dense=dense)


def log10_x(ax: Axes) -> None:
    """Log x axis labelled like :func:`log10_y`."""
    ax.set_xscale("log")
    _log10_ticks(ax.xaxis, *ax.get_xlim(), dense=True)
