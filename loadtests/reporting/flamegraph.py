"""A flame graph as one self-contained SVG, from the collapsed stacks of a profile.

Brendan Gregg's layout (flamegraph.pl): the root at the bottom, each frame as wide as the samples under it,
siblings in alphabetical order, so the widest towers are where the CPU went. Frames merge by function and
file (py-spy records line numbers; the raw profile beside the SVG keeps them). Each frame is coloured by
the component its module belongs to (grey: a shared module whose time goes to its caller), the same
colours as the report's budget chart, and carries a tooltip with its samples and share. The process frames
at the base show every server process the profiler sampled.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from loadtests.analysis.cpu_budget import COMPONENTS, Frame, Stack, component_of_module

COMPONENT_COLOURS = {  # Okabe-Ito, in COMPONENTS order; grey for other
    "server": "#E69F00",
    "framework": "#56B4E9",
    "validation": "#009E73",
    "sdk": "#0072B2",
    "http_client": "#D55E00",
    "json": "#F0E442",
    "app": "#CC79A7",
    "runtime": "#8C8C8C",
    "other": "#3A3A3A",
}
TRANSPARENT_COLOUR = "#D9D9D9"
WIDTH = 1200.0
FRAME_H = 16
TOP = 58  # title, subtitle, legend
MIN_WIDTH_PX = 0.4  # narrower frames are left out (their samples still count in their parents)
CHAR_PX = 6.6  # 11 px Verdana, about


@dataclass(kw_only=True)
class _Node:
    label: str
    colour: str
    count: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(stacks: Sequence[Stack], process_names: Mapping[int, str]) -> _Node:
    root = _Node(label="all server processes", colour=TRANSPARENT_COLOUR)
    for stack in stacks:
        root.count += stack.count
        node = root
        path: list[tuple[str, str]] = []
        if stack.pid is not None:
            name = process_names.get(stack.pid, "")
            path.append((f"process {stack.pid}" + (f" ({name})" if name else ""), TRANSPARENT_COLOUR))
        path += [(_label(f), _colour(f)) for f in stack.frames]
        for label, colour in path:
            node = node.children.setdefault(label, _Node(label=label, colour=colour))
            node.count += stack.count
    return root


def _label(frame: Frame) -> str:
    return f"{frame.name} ({frame.file})" if frame.file else frame.name


def _colour(frame: Frame) -> str:
    component = component_of_module(frame.module)
    return TRANSPARENT_COLOUR if component is None else COMPONENT_COLOURS[component]


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def flamegraph_svg(
    stacks: Sequence[Stack], *, title: str, subtitle: str, process_names: Mapping[int, str] | None = None
) -> str:
    """The SVG text: ``title`` states the finding, ``subtitle`` what was sampled."""
    root = _tree(stacks, process_names or {})
    height = TOP + _depth(root) * FRAME_H + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0f}" height="{height}" '
        f'viewBox="0 0 {WIDTH:.0f} {height}" font-family="Verdana, DejaVu Sans, sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="10" y="37" fill="#555555">{html.escape(subtitle)}</text>',
        *_legend(),
    ]
    if root.count:
        _draw(root, x=0.0, level=0, scale=WIDTH / root.count, total=root.count, height=height, out=out)
    else:
        out.append(f'<text x="10" y="{TOP + 14}">no sample of a running thread</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend() -> list[str]:
    items = [*COMPONENTS, "shared (charged to its caller)"]
    out, x = [], 10.0
    for name in items:
        colour = COMPONENT_COLOURS.get(name, TRANSPARENT_COLOUR)
        out.append(f'<rect x="{x:.0f}" y="45" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14:.0f}" y="54">{html.escape(name)}</text>')
        x += 14 + len(name) * CHAR_PX + 14
    return out


def _draw(
    node: _Node, *, x: float, level: int, scale: float, total: int, height: int, out: list[str]
) -> None:
    width = node.count * scale
    if width < MIN_WIDTH_PX:
        return
    y = height - 10 - (level + 1) * FRAME_H
    tip = f"{node.label}: {node.count} samples, {node.count / total:.1%}"
    fits = int((width - 6) / CHAR_PX)
    text = node.label if len(node.label) <= fits else (node.label[: fits - 2] + ".." if fits > 3 else "")
    out.append(
        f'<g><title>{html.escape(tip)}</title><rect x="{x:.2f}" y="{y}" width="{width:.2f}" '
        f'height="{FRAME_H - 1}" fill="{node.colour}" rx="1"/>'
        + (f'<text x="{x + 3:.2f}" y="{y + 11}">{html.escape(text)}</text>' if text else "")
        + "</g>"
    )
    child_x = x
    for key in sorted(node.children):
        child = node.children[key]
        _draw(child, x=child_x, level=level + 1, scale=scale, total=total, height=height, out=out)
        child_x += child.count * scale
