"""A report page in a real browser: Debian's headless Chromium driven by Playwright (its own browser
download is not used), and everything wrong with the page as the browser shows it.

Used by tests/loadtests/reporting/test_report_browser.py, and run as a script to make the committed
example screenshot, which it writes only for a page that passes the same check:

    .venv/bin/python tests/browserkit.py results/reference/report.html docs/report-screenshot.png \
        --at analyse-throughput

(A uniquely named module: the root conftest puts tests/ on sys.path for every suite.)
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import BrowserContext, sync_playwright

# Quiet and hermetic: no first-run pages, no update or sync traffic, nothing but the file:// page.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 1000}
LOAD_TIMEOUT_MS = 60_000  # a 2-core machine under a test suite's load

IMAGES_JS = """() => [...document.images].map((img, index) => ({
    index, alt: img.alt, src: img.getAttribute('src').slice(0, 48),
    complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}))"""
# Outermost inline <svg> elements only (a nested one is part of its parent's drawing).
SVGS_JS = """() => [...document.querySelectorAll('svg')].filter(s => !s.parentElement.closest('svg'))
    .map((s, index) => {
        const r = s.getBoundingClientRect();
        return {index, width: r.width, height: r.height};
    })"""


def find_chromium() -> str | None:
    """Debian's chromium on PATH (``make browser`` installs it), or None."""
    return shutil.which("chromium")


@contextlib.contextmanager
def chromium(executable: str, profile: Path) -> Iterator[BrowserContext]:
    """One headless Chromium with a fresh profile directory (``--user-data-dir``) of its own."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
            timeout=LOAD_TIMEOUT_MS,
        )
        try:
            yield context
        finally:
            context.close()


def page_problems(
    context: BrowserContext, html: Path, screenshot: Path, *, at: str | None = None
) -> list[str]:
    """Everything wrong with the page as Chromium shows it: console errors, uncaught exceptions, failed
    requests, images that did not decode, inline SVGs drawn at no size, images the DOM lost. The
    screenshot shows one screen: the top, or the element whose id is ``at`` at the top."""
    problems: list[str] = []
    page = context.new_page()
    page.on(
        "console",
        lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url[:80]} ({req.failure})"))
    try:
        page.goto(html.resolve().as_uri(), wait_until="load", timeout=LOAD_TIMEOUT_MS)
        images = page.evaluate(IMAGES_JS)
        svgs = page.evaluate(SVGS_JS)
        if at is not None:
            found = page.evaluate(
                "(id) => { const e = document.getElementById(id); if (e) e.scrollIntoView(); return !!e; }",
                at,
            )
            if not found:
                problems.append(f"no element with id {at!r} to show")
        page.screenshot(path=str(screenshot), timeout=LOAD_TIMEOUT_MS)
    finally:
        page.close()
    in_source = len(re.findall(r"<img\b", html.read_text()))
    if len(images) != in_source:
        problems.append(f"{len(images)} images in the page, {in_source} <img> tags in the file")
    problems += [
        f"image {i['index']} ({i['alt']!r}, {i['src']}...) did not load: complete={i['complete']}, "
        f"naturalWidth={i['width']}"
        for i in images
        if not (i["complete"] and i["width"] > 0 and i["height"] > 0)
    ]
    problems += [
        f"inline svg {s['index']} drawn at {s['width']}x{s['height']}" for s in svgs if not s["width"]
    ]
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tests/browserkit.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, help="a report.html")
    parser.add_argument("png", type=Path, help="where the screenshot goes (written only if the page passes)")
    parser.add_argument("--at", help="the id of the element to show at the top (a chart: its name)")
    args = parser.parse_args(argv)
    executable = find_chromium()
    if executable is None:
        print("error: no chromium on PATH; run `make browser` (Debian, as root)", file=sys.stderr)
        return 2
    if not args.html.is_file():
        print(f"error: {args.html}: no such file", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "screen.png"
        with chromium(executable, Path(tmp) / "profile") as context:
            problems = page_problems(context, args.html, shot, at=args.at)
        if problems:
            print("\n".join(f"{args.html}: {p}" for p in problems), file=sys.stderr)
            return 1
        shutil.copyfile(shot, args.png)
    print(f"{args.png}: {args.html} in headless Chromium, every image loaded, no console error")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
