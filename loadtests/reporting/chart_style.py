"""Themes, sizes and the colour-blind-safe palette every chart shares.

Colours are Okabe & Ito's (2008) palette, fixed per variant so a variant has the same colour and marker
in every chart; markers differ too, so the charts survive greyscale printing and overlapping lines.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Theme = Literal["light", "dark"]
Size = Literal["blog", "talk"]
THEMES: tuple[Theme, ...] = ("light", "dark")
SIZES: tuple[Size, ...] = ("blog", "talk")

# Okabe-Ito. Black and yellow swap with the theme: black vanishes on dark, yellow on white.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
# Each variant's colour and marker, the same in every chart. Families share a hue (Flask's process and
# thread servers warm, FastAPI's cool, the ASGI adapters and Quart their own), the marker tells the members
# apart: no two variants share both, so a legend and a greyscale print still name every line.
_VARIANT_LOOKS: dict[str, tuple[str, str]] = {
    "flask-sync": ("vermillion", "o"),
    "flask-sync-64": ("vermillion", "s"),
    "flask-async-views": ("vermillion", "^"),
    "flask-celery": ("vermillion", "X"),
    "flask-gthread": ("orange", "o"),
    "flask-granian": ("orange", "D"),
    "flask-celery-threads": ("orange", "X"),
    "flask-gevent": ("purple", "o"),
    "flask-asgiref": ("purple", "s"),
    "flask-a2wsgi": ("purple", "^"),
    "fastapi-async": ("blue", "o"),
    "fastapi-workers": ("blue", "s"),
    "fastapi-shedding": ("blue", "^"),
    "fastapi-def": ("sky", "o"),
    "fastapi-blocking": ("sky", "v"),
    "fastapi-granian": ("green", "D"),
    "fastapi-gunicorn-asgi": ("green", "s"),
    "quart-async": ("neutral", "P"),
}
_COLOUR_NAMES = ("blue", "vermillion", "green", "orange", "purple", "sky", "neutral", "accent")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")


@dataclass(frozen=True, kw_only=True)
class Style:
    theme: Theme
    size: Size
    width_in: float
    height_in: float
    dpi: int  # the 1x resolution; PNGs are written at 2x this
    font_pt: float
    title_pt: float
    line_w: float
    marker_pt: float
    fg: str
    bg: str
    muted: str
    grid: str
    neutral: str  # the palette's black (light) or its stand-in on dark
    accent: str

    def rc(self) -> dict[str, Any]:
        return {
            "figure.facecolor": self.bg,
            "axes.facecolor": self.bg,
            "savefig.facecolor": self.bg,
            "axes.edgecolor": self.muted,
            "axes.labelcolor": self.fg,
            "axes.titlecolor": self.fg,
            "text.color": self.fg,
            "xtick.color": self.muted,
            "ytick.color": self.muted,
            "xtick.labelcolor": self.fg,
            "ytick.labelcolor": self.fg,
            "grid.color": self.grid,
            "grid.linewidth": 0.6,
            "axes.grid": True,
            "axes.grid.which": "major",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": self.font_pt,
            "axes.labelsize": self.font_pt,
            "xtick.labelsize": self.font_pt * 0.9,
            "ytick.labelsize": self.font_pt * 0.9,
            "legend.fontsize": self.font_pt * 0.85,
            "legend.frameon": False,
            "lines.linewidth": self.line_w,
            "lines.markersize": self.marker_pt,
            "svg.fonttype": "none",  # text stays text: smaller files, searchable labels
            "svg.hashsalt": "llm-wait-bench",  # stable ids, so reruns give identical SVGs
            "font.family": "DejaVu Sans",
        }

    def colour_of(self, name: str) -> str:
        if name == "neutral":
            return self.neutral
        if name == "accent":
            return self.accent
        return OKABE_ITO[name]

    def looks(self, variants: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(colour, marker) per variant: the table's for known variants, then the first free pair for the
        rest (your own apps), so no two of ``variants`` share both."""
        taken = {_VARIANT_LOOKS[v] for v in variants if v in _VARIANT_LOOKS}
        free = (pair for pair in itertools.product(_COLOUR_NAMES, _MARKERS) if pair not in taken)
        names = {v: _VARIANT_LOOKS[v] if v in _VARIANT_LOOKS else next(free) for v in variants}
        return {v: (self.colour_of(c), m) for v, (c, m) in names.items()}


def make_style(theme: Theme = "light", size: Size = "blog") -> Style:
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, not {theme!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    colours = (
        {"fg": "#1a1a1a", "bg": "#ffffff", "muted": "#5f5f5f", "grid": "#e3e3e3", "neutral": "#000000"}
        | {"accent": "#8c8c8c"}
        if theme == "light"
        else {"fg": "#ececec", "bg": "#16181d", "muted": "#a9a9a9", "grid": "#30343c", "neutral": "#F0E442"}
        | {"accent": "#bdbdbd"}
    )
    if size == "blog":
        dims = {"width_in": 9.0, "height_in": 5.6, "dpi": 100, "font_pt": 10.5, "title_pt": 13.0}
        dims |= {"line_w": 1.8, "marker_pt": 5.5}
    else:  # 16:9 for slides, type readable from the back of the room
        dims = {"width_in": 40 / 3, "height_in": 7.5, "dpi": 144, "font_pt": 17.0, "title_pt": 22.0}
        dims |= {"line_w": 3.0, "marker_pt": 9.0}
    return Style(theme=theme, size=size, **colours, **dims)  # type: ignore[arg-type]
