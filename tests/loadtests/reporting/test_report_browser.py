"""report.html in a real browser: headless Chromium (Debian's package, driven by Playwright) opens the
rendered report; every image (the charts are data: URIs) and every inline SVG must load, the console must
stay free of errors, and screenshots are kept in the test's directory. A second test plants a broken
image, a missing one and a console error in a copy of the page and checks that each is caught."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from browserkit import VIEWPORT, chromium, find_chromium, page_problems
from PIL import Image
from playwright.sync_api import BrowserContext


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One headless Chromium for the module; a skip only where none can be installed."""
    executable = find_chromium()
    if executable is None:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            pytest.fail("no chromium on PATH, but this machine can install it: run `make browser`")
        pytest.skip(
            "report browser check: no chromium on PATH and no root apt-get to install it (make browser)"
        )
    with chromium(executable, tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


def _screen(png: Path) -> np.ndarray:
    with Image.open(png) as image:
        assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
        return np.asarray(image.convert("RGB")).astype(int)


def _coloured_pixels(png: Path) -> int:
    """Pixels of a saturated colour: a chart's series, not text, grid or a broken-image frame (all grey)."""
    rgb = _screen(png)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 80).sum())


def test_the_report_loads_in_chromium_with_every_chart(
    rendered_run: tuple[Path, list[Path]], browser: BrowserContext, tmp_path: Path
) -> None:
    run_dir, _ = rendered_run
    html = run_dir / "report.html"
    assert page_problems(browser, html, tmp_path / "report.png") == []
    charts = len(list((run_dir / "charts").glob("*.svg")))
    assert charts > 0
    assert len(re.findall(r"<img\b", html.read_text())) >= charts  # every chart of the run is shown
    # The first chart on screen, drawn: a plot's colours, not a blank or a broken-image frame.
    first = re.search(r'<figure id="([^"]+)"', html.read_text())
    assert first is not None
    assert page_problems(browser, html, tmp_path / "chart.png", at=first.group(1)) == []
    assert _coloured_pixels(tmp_path / "chart.png") > 1000
    assert len(np.unique(_screen(tmp_path / "report.png").reshape(-1, 3), axis=0)) > 20  # text, not blank


def test_the_check_catches_a_broken_image_and_a_console_error(
    rendered_run: tuple[Path, list[Path]], browser: BrowserContext, tmp_path: Path
) -> None:
    """The same check on a copy with one chart's data URI corrupted, an image whose file is missing and a
    script that logs an error: each is reported, and the intact charts are not."""
    text = (rendered_run[0] / "report.html").read_text()
    marker = "data:image/svg+xml;base64,"
    start = text.index(marker, text.index(marker) + 1) + len(marker)  # the second chart's payload
    broken = text[:start] + "!!corrupted!!" + text[start + 40 :]
    planted = '<img src="missing-chart.png" alt="gone"><script>console.error("planted error")</script>'
    broken = broken.replace("</main>", planted + "</main>", 1)
    html = tmp_path / "report.html"
    html.write_text(broken)
    problems = page_problems(browser, html, tmp_path / "broken.png")
    assert any(p.startswith("image 1 ") and "did not load" in p for p in problems), problems
    assert any("missing-chart.png" in p and "did not load" in p for p in problems), problems
    assert "console error: planted error" in problems, problems
    assert not any(p.startswith("image 0 ") for p in problems), problems
