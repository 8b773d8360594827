"""Every documented entry point (python -m loadtests X, the kept python -m paths) fails a bad invocation in
one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

# Every entry point a user types: a bad invocation is one `error:` line and exit 2, never a usage block or
# a traceback.
ENTRY_POINTS = [
    ["-m", "loadtests", "sweep", "--bogus"],
    ["-m", "loadtests.commands.sweep", "--bogus"],
    ["-m", "loadtests", "capacity", "--max-users", "x"],
    ["-m", "loadtests", "report"],
    ["-m", "loadtests", "compare", "only-one"],
    ["-m", "loadtests", "gate", "--rounds", "1"],
    ["-m", "loadtests", "nosuch"],
    ["-m", "loadtests"],
    ["-m", "loadtests.driver.mockbench", "--bogus"],
    ["-m", "loadtests.reporting.workchart"],
    ["-m", "loadtests.driver.memcheck", "--users", "x"],
    ["-m", "servers"],
    ["-m", "servers", "run"],
    ["-m", "mock_llm", "--bogus"],
    ["-m", "loadtests", "sweep", "--preset", "quick", "--out", "/proc/no-such-dir/run"],
    ["-m", "loadtests", "readme", "--verdict", "README.md"],
]


@pytest.mark.parametrize("argv", ENTRY_POINTS, ids=" ".join)
def test_every_entry_point_fails_a_bad_invocation_in_one_line(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert not done.stdout.strip()
