"""Every chart legible by construction, checked on matplotlib's own text extents (not pixels): no two texts
overlap, none sits over a legend it is not part of, none runs off the figure, and no two variants share
both colour and marker. On the committed reference run (13 variants, real data) and on a synthetic run
with every registered variant, in both styles, the catalogue and the story set alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib import rc_context

from loadtests.analysis.run_analysis import analyse_run
from loadtests.analysis.synthetic import VARIANTS, synthetic_run
from loadtests.reporting.chart_style import make_style
from loadtests.reporting.charts import build_charts
from loadtests.reporting.legibility import Legibility, check_charts
from loadtests.reporting.story import STORY_SERIES, build_story, models_of
from loadtests.results import RunResults, load_results

REPO = Path(__file__).resolve().parents[3]
STYLES = [("light", "blog"), ("dark", "talk")]


def _every_variant() -> RunResults:
    run = synthetic_run(variants=tuple(VARIANTS), scenarios=("analyse",), users=(1, 4, 16, 64, 128, 256))
    run.capacity = [
        {"variant": v, "scenario": "analyse", "users": 4 * (i + 1), "interval": [4 * (i + 1), 5 * (i + 1)],
         "throughput_rps": 4.0, "bound": "concurrency", "points": 6, "slo": "p95 <= 1.25 x L", "levels": []}
        for i, v in enumerate(VARIANTS)
    ]  # fmt: skip
    return run


def _check(run: RunResults, run_dir: Path | None, theme: str, size: str) -> Legibility:
    style = make_style(theme, size)  # type: ignore[arg-type]
    analysis = analyse_run(run, run_dir)
    charts = build_charts(run, style, analysis) + build_story(run, style, analysis)
    with rc_context(style.rc()):
        return check_charts(charts)


@pytest.mark.parametrize(("theme", "size"), STYLES)
def test_the_reference_runs_charts_are_legible(theme: str, size: str) -> None:
    reference = REPO / "results" / "reference"
    found = _check(load_results(reference), reference, theme, size)
    assert (found.overlaps, found.clipped, found.shared_styles) == ([], [], [])


@pytest.mark.parametrize(("theme", "size"), STYLES)
def test_every_variant_at_once_stays_legible(theme: str, size: str) -> None:
    found = _check(_every_variant(), None, theme, size)
    assert (found.overlaps, found.clipped, found.shared_styles) == ([], [], [])


def test_the_story_picks_one_variant_per_model_and_few_series() -> None:
    models = models_of(_every_variant())
    assert len(models) <= STORY_SERIES
    assert models["flask-sync"] == "worker processes" and models["fastapi-async"] == "an event loop"
    assert len(set(models.values())) == len(models)  # one per model
    style = make_style()
    run = _every_variant()
    story = build_story(run, style, analyse_run(run))
    assert [c.name for c in story][:2] == ["1-claim", "2-models"]
    for chart in story:
        assert len([line for ax in chart.figure.axes for line in ax.get_lines() if line.get_label()
                    and not line.get_label().startswith("_")]) <= 2 * STORY_SERIES  # fmt: skip


def test_the_checker_finds_an_overlap_and_a_clipped_text() -> None:
    from matplotlib.figure import Figure

    from loadtests.reporting.legibility import check_figure

    fig = Figure(figsize=(4, 3))
    fig.text(0.1, 0.5, "one label here")
    fig.text(0.12, 0.5, "another label")  # on top of the first
    fig.text(0.9, 0.9, "runs off the right edge of the figure")
    found = check_figure(fig, "probe")
    assert len(found.overlaps) == 1 and len(found.clipped) == 1
