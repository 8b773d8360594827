"""An app built on the OpenAI SDK as a target: the harness points OPENAI_BASE_URL at the mock's /v1 and
measures it with `capacity --target`, like the Anthropic-SDK examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.driver.targets import load_target
from loadtests.results import load_results

REPO = Path(__file__).resolve().parents[3]
TARGET = REPO / "examples" / "openai-assistant" / "target.toml"
L_MS = 2000 * 0.1  # the article profile's call at time scale 0.1


@pytest.mark.slow
def test_the_openai_example_is_measured_through_the_mocks_openai_endpoints(tmp_path: Path) -> None:
    # One level of 8 users (two at most when it fails, e.g. on a busy machine): under a minute.
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "capacity", "--target", str(TARGET), "--duration", "1",
         "--seed", "6", "--out", str(run_dir), "--time-scale", "0.1", "--max-users", "8",
         "--start-users", "8", "--max-points", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run = load_results(run_dir)
    assert run.metadata["targets"]["openai-assistant"]["sha256"] == load_target(TARGET).sha256
    (entry,) = run.capacity
    lo, hi = entry["interval"]  # type: ignore[misc]
    assert lo <= 8 and (hi is None or hi <= 8) and entry["levels"], entry  # None: 8 passed, the most asked
    # Whether a level passed depends on the machine (a busy one makes points invalid); what the app did
    # does not: every user's call reached the mock's OpenAI endpoints at once, and each request waited
    # for the upstream's L.
    for point in run.points:
        assert point.failed == 0 and point.completed > 0, point
        assert point.upstream_peak_in_flight == point.users, point
        assert point.latency_ms is not None and point.latency_ms.p50 >= 0.95 * L_MS, point
