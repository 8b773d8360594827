"""The document kit: a report as a list of blocks (headings, paragraphs, claims, tables, figures), rendered
as Markdown and as one self-contained HTML page.

Both renderings take the same blocks, so report.md and report.html can never disagree. Inline markup is
limited to **bold**, `code` and [links](path), which the HTML renderer translates after escaping.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

STATUS_LABEL = {
    "reproduced": "Reproduced",
    "not_reproduced": "Not reproduced",
    "depends": "Depends",
    "inconclusive": "Inconclusive",
}


@dataclass(frozen=True, kw_only=True)
class ChartEntry:
    name: str
    scenario: str
    kind: str
    title: str
    subtitle: str
    png: str  # relative to the run directory
    svg_text: str
    invalid: list[str]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Claims:
    items: list[tuple[str, str, str]]  # status, statement, evidence


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class FigureBlock:
    entry: ChartEntry


Block = Heading | Para | Claims | Table | FigureBlock


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Para):
            out.append(block.text)
        elif isinstance(block, Claims):
            out.append(
                "\n".join(
                    f"- **{STATUS_LABEL[status]}**: {statement}.  \n  Evidence: {evidence}."
                    for status, statement, evidence in block.items
                )
            )
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(block.headers) + " |", "|" + "---|" * len(block.headers)]
            lines += [
                "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in block.rows
            ]
            out.append("\n".join(lines))
        else:
            e = block.entry
            out.append(f"![{e.title}]({e.png})\n\n*{e.title}.* {e.subtitle}. ([SVG]({e.png[:-4]}.svg))")
    return "\n\n".join(out) + "\n"


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{inline(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        return f"<p>{inline(block.text)}</p>"
    if isinstance(block, Claims):
        items = "".join(
            f'<li><span class="status {status}">{STATUS_LABEL[status]}</span> {inline(statement)}.'
            f'<div class="evidence">Evidence: {inline(evidence)}.</div></li>'
            for status, statement, evidence in block.items
        )
        return f'<ul class="claims">{items}</ul>'
    if isinstance(block, Table):
        head = "".join(f"<th>{inline(h)}</th>" for h in block.headers)
        rows = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in block.rows)
        return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
    e = block.entry
    data = base64.b64encode(e.svg_text.encode()).decode()
    return (
        f'<figure id="{html.escape(e.name)}"><img src="data:image/svg+xml;base64,{data}" '
        f'alt="{html.escape(e.title)}"><figcaption><strong>{html.escape(e.title)}.</strong> '
        f"{html.escape(e.subtitle)}.</figcaption></figure>"
    )


def to_html(blocks: Sequence[Block], *, title: str, theme: str) -> str:
    """One self-contained page: every chart embedded as SVG, so the file can be mailed or attached."""
    colours = (
        {"bg": "#ffffff", "fg": "#1a1a1a", "muted": "#5f5f5f", "rule": "#e3e3e3"}
        if theme == "light"
        else {"bg": "#16181d", "fg": "#ececec", "muted": "#a9a9a9", "rule": "#30343c"}
    )
    css = _CSS.format(**colours)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{css}</style></head><body><main>\n"
        + "\n".join(_html_block(b) for b in blocks)
        + "\n</main></body></html>\n"
    )


_CSS = """
body {{ background: {bg}; color: {fg}; margin: 0;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }}
main {{ max-width: 1100px; margin: 0 auto; padding: 1.5rem; }}
h1, h2, h3 {{ line-height: 1.25; }}
code {{ font-size: 0.92em; }}
figure {{ margin: 1.5rem 0; }} figure img {{ width: 100%; height: auto; border: 1px solid {rule}; }}
figcaption {{ color: {muted}; font-size: 0.95em; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: 0.85em; font-variant-numeric: tabular-nums; }}
th, td {{ border-bottom: 1px solid {rule}; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }}
th:first-child, td:first-child {{ text-align: left; }}
.claims {{ list-style: none; padding: 0; }} .claims li {{ margin: 0.8em 0; }}
.evidence {{ color: {muted}; font-size: 0.92em; margin-left: 0.2em; }}
.status {{ display: inline-block; min-width: 8.5em; padding: 0 0.4em; border-radius: 4px; font-weight: 600;
  color: #fff; text-align: center; }}
.reproduced {{ background: #0072B2; }} .not_reproduced {{ background: #D55E00; }}
.depends {{ background: #CC79A7; }} .inconclusive {{ background: #6b6b6b; }}
"""


def inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', escaped)  # [text](relative link)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)
