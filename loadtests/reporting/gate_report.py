"""What the gate shows people: a chart of every round's figures, and the step summary around the table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.analysis.compare import METRICS, Comparison
from loadtests.reporting.compare_doc import COLUMNS
from loadtests.results import RunResults

FIGURES: tuple[tuple[str, str, Any], ...] = tuple(
    (COLUMNS[name], name, METRICS[name][0])
    for name in ("cpu", "cpu_rel", "overhead_p50_rel", "overhead_p95_rel", "throughput_rel", "memory")
)
BAR_WIDTH = 28


def _values(run: RunResults, key: tuple[str, str, str, float], get: Any) -> list[tuple[int, float]]:
    return sorted((p.repeat, float(v)) for p in run.points if p.key == key and (v := get(p)) is not None)


def _keys(runs: dict[str, RunResults]) -> list[tuple[str, str, str, float]]:
    return sorted({p.key for run in runs.values() for p in run.points})


def chart(runs: dict[str, RunResults], path: Path) -> Path | None:
    """Every round's value of each gated figure, base beside head, one panel per figure and point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = _keys(runs)
    if not keys:
        return None
    fig, axes = plt.subplots(
        len(keys), len(FIGURES), figsize=(3.2 * len(FIGURES), 2.4 * len(keys)), squeeze=False
    )
    for row, key in enumerate(keys):
        for col, (title, _, get) in enumerate(FIGURES):
            ax = axes[row][col]
            for x, side, color in ((0, "base", "#4C72B0"), (1, "head", "#DD8452")):
                values = _values(runs[side], key, get)
                xs = [x + 0.08 * (i - (len(values) - 1) / 2) for i in range(len(values))]
                ax.scatter(xs, [v for _, v in values], color=color, s=18, zorder=3)
                if values:
                    mid = sorted(v for _, v in values)[len(values) // 2]
                    ax.hlines(mid, x - 0.3, x + 0.3, color=color, linewidth=2)
            ax.set_xticks([0, 1], ["base", "head"])
            ax.set_xlim(-0.6, 1.6)
            ax.set_title(f"{key[0]}\n{title}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Gate: each dot one round (fresh processes), the bar its median", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def text_chart(runs: dict[str, RunResults]) -> list[str]:
    """The CPU-per-request rounds as bars (with the gated figure, relative to the mock's CPU per request),
    for places that show no image (a step summary)."""
    lines = []
    for key in _keys(runs):
        series = {side: _values(runs[side], key, FIGURES[0][2]) for side in ("base", "head")}
        relative = {side: dict(_values(runs[side], key, FIGURES[1][2])) for side in ("base", "head")}
        top = max((v for s in series.values() for _, v in s), default=0.0)
        if top <= 0:
            continue
        lines.append(f"{key[0]} · {key[1]} · {key[3]:g} users: server CPU ms/request (x mock's) per round")
        for side, values in series.items():
            for repeat, value in values:
                bar = "█" * max(1, round(value / top * BAR_WIDTH))
                rel = relative[side].get(repeat)
                shown = f" (x{rel:.1f})" if rel is not None else ""
                lines.append(f"  {side} r{repeat + 1}  {bar:<{BAR_WIDTH}} {value:6.2f}{shown}")
    return lines


def summary(
    comparison: Comparison,
    runs: dict[str, RunResults],
    *,
    table: str,
    sides: Sequence[Any],
    rounds: int,
    wall_s: float,
    chart: Path | None,
) -> str:
    base, head = sides
    verdict = "❌ regression" if comparison.failed else "✅ no regression"
    envs = ", ".join(
        f"{s.name}: {'this environment' if s.env_reused else 'its own environment'}" for s in sides
    )
    lines = [
        f"# Benchmark gate: {verdict}",
        "",
        f"Base `{base.short}` ({base.revision}) vs head `{head.short}` ({head.revision}), measured "
        f"interleaved on one runner: {rounds} rounds a side, fresh processes each round, {wall_s:.0f} s. "
        f"Servers from each revision's worktree, mock and load generator from the measurer ({envs}).",
        "",
        table.replace("## Benchmark comparison", "## Comparison", 1),
        "",
    ]
    bars = text_chart(runs)
    if bars:
        lines += ["## Server CPU per request, every round", "", "```", *bars, "```", ""]
    if chart is not None:
        lines.append(f"The chart of every gated figure per round is `{chart.name}` in the run's artifact.")
    return "\n".join(lines).rstrip() + "\n"
