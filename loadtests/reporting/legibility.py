"""Is a chart legible? Measured on matplotlib's own text extents after a draw, not on pixels.

Three faults, each counted:

* **overlaps**: two texts whose boxes intersect (tick labels, axis labels, titles, notes, annotations,
  legend entries), or a text over a legend it is not part of;
* **clipped**: a text that runs past the figure's edge;
* **shared styles**: two variants drawn with the same colour and the same marker (a reader cannot tell them
  apart in a legend or in greyscale).

``tests/loadtests/reporting/test_chart_legibility.py`` asserts zero of each on every chart of a run with
every variant, in both styles; the same counts on the committed reference say what a change fixed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

PAD_PX = 0.5  # boxes that merely touch are not an overlap


@dataclass(kw_only=True)
class Legibility:
    overlaps: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    shared_styles: list[str] = field(default_factory=list)

    @property
    def faults(self) -> int:
        return len(self.overlaps) + len(self.clipped) + len(self.shared_styles)


def _undrawn_tick_labels(fig: Figure) -> set[int]:
    """Tick labels of ticks outside their axis's view: matplotlib keeps them, but never draws them."""
    hidden: set[int] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = (high - low) * 1e-9
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                if not low - span <= tick.get_loc() <= high + span:
                    hidden |= {id(tick.label1), id(tick.label2)}
    return hidden


def _texts(fig: Figure) -> list[tuple[Text, Legend | None]]:
    """Every drawn, non-empty text of the figure, with the legend it belongs to (or None)."""
    legends = [leg for ax in fig.axes if (leg := ax.get_legend()) is not None] + list(fig.legends)
    owned = {id(t): leg for leg in legends for t in [*leg.get_texts(), leg.get_title()]}
    hidden = _undrawn_tick_labels(fig)
    found = []
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or id(text) in hidden:
            continue
        if text.axes is not None and not text.axes.get_visible():
            continue
        found.append((text, owned.get(id(text))))
    return found


def _shrunk(box: Bbox) -> Bbox:
    return Bbox.from_extents(box.x0 + PAD_PX, box.y0 + PAD_PX, box.x1 - PAD_PX, box.y1 - PAD_PX)


def check_figure(fig: Figure, name: str = "") -> Legibility:
    """Draw ``fig`` and count its overlapping and clipped texts."""
    canvas = FigureCanvasAgg(fig)  # a figure built without pyplot has no renderer of its own
    canvas.draw()
    renderer = canvas.get_renderer()
    found = Legibility()
    texts = [(t, leg, _shrunk(t.get_window_extent(renderer))) for t, leg in _texts(fig)]
    figure_box = fig.bbox
    for text, _, box in texts:
        if (
            box.x0 < figure_box.x0 - 1
            or box.y0 < figure_box.y0 - 1
            or box.x1 > figure_box.x1 + 1
            or (box.y1 > figure_box.y1 + 1)
        ):
            found.clipped.append(f"{name}: {text.get_text()[:40]!r}")
    for (a, _, box_a), (b, _, box_b) in itertools.combinations(texts, 2):
        if box_a.overlaps(box_b):
            found.overlaps.append(f"{name}: {a.get_text()[:30]!r} / {b.get_text()[:30]!r}")
    legends = [leg for ax in fig.axes if (leg := ax.get_legend()) is not None]
    for leg in legends:
        frame = _shrunk(leg.get_window_extent(renderer))
        for text, owner, box in texts:
            if owner is not leg and box.overlaps(frame):
                found.overlaps.append(f"{name}: {text.get_text()[:30]!r} over a legend")
    return found


def shared_styles(looks: dict[str, tuple[str, str]]) -> list[str]:
    """Variants that share both colour and marker."""
    by_look: dict[tuple[str, str], list[str]] = {}
    for variant, look in looks.items():
        by_look.setdefault(look, []).append(variant)
    return [" = ".join(names) for names in by_look.values() if len(names) > 1]


def looks_of(fig: Figure) -> dict[str, tuple[str, str]]:
    """(colour, marker) of each labelled data line of ``fig``'s legends (a variant's entry)."""
    looks: dict[str, tuple[str, str]] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            label = line.get_label()
            if (
                isinstance(line, Line2D)
                and label
                and not label.startswith("_")
                and line.get_marker()
                not in (
                    None,
                    "None",
                    "",
                )
            ):
                looks.setdefault(label, (str(line.get_color()), str(line.get_marker())))
    return looks


def check_charts(charts: Sequence[object]) -> Legibility:
    """Every chart's figure checked; shared styles counted per chart."""
    total = Legibility()
    for chart in charts:
        fig: Figure = chart.figure  # type: ignore[attr-defined]
        name: str = chart.name  # type: ignore[attr-defined]
        one = check_figure(fig, name)
        total.overlaps += one.overlaps
        total.clipped += one.clipped
        total.shared_styles += [f"{name}: {s}" for s in shared_styles(looks_of(fig))]
    return total
