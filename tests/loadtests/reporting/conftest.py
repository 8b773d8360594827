"""Shared fixtures for the report, verdict and compare tests: synthetic runs, never a real sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.analysis.synthetic import synthetic_run
from loadtests.reporting.report import write_report

SMALL = {
    "variants": ("flask-sync", "fastapi-async"),
    "scenarios": ("analyse", "stream"),
    "users": (1, 4, 16, 128, 256),
    "rates": (2.0, 8.0),
}


@pytest.fixture(scope="module")
def rendered_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """One small synthetic run rendered once (light, blog) with one invalid point: the slow part, shared."""
    from dataclasses import replace

    from loadtests.analysis.synthetic import modify

    run = synthetic_run(**SMALL)  # type: ignore[arg-type]
    run = modify(
        run,
        lambda p: (
            replace(p, valid=False, invalid_reasons=["window too short for steady state"])
            if (p.variant, p.scenario, p.users) == ("flask-sync", "analyse", 256)
            else p
        ),
    )
    run_dir = tmp_path_factory.mktemp("run")
    run.save(run_dir)
    return run_dir, write_report(run_dir)
