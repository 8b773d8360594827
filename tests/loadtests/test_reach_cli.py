"""``python -m loadtests reach``: its plan (printed before anything runs) and its bad options.

The real reach run is a benchmark (minutes of machine time, committed under results/reach-*); here only
what is cheap: the plan's L per level keeps the request rate within --max-rate, and bad input is one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.driver.reach import level_latency_s, main
from loadtests.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def test_the_plan_keeps_the_rate_within_the_cap_and_prints_its_wall_time(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert level_latency_s(1_000, min_latency_s=60, max_rate=40) == 60
    assert level_latency_s(10_000, min_latency_s=60, max_rate=40) == 250
    assert main(["--dry-run", "--variants", "fastapi-async", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "expected wall time" in out and "10,000 streams  L = 250 s (40 streams/s)" in out
    assert not (tmp_path / "r").exists()  # a dry run runs nothing, writes nothing


def test_the_plan_runs_level_by_level_so_a_short_budget_cuts_the_largest_levels(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--dry-run", "--variants", "fastapi-async,flask-gevent", "--streams", "1000,5000"]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines() if "streams  L =" in line]
    first, second = ["fastapi-async", "flask-gevent"], ["1,000", "5,000"]
    assert rows == [[variant, streams] for streams in second for variant in first]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--variants", "flask-turbo"], "flask-turbo"),
        (["--loadgen-processes", "0"], "--loadgen-processes"),
        (["--upstream-pool", "0"], "--upstream-pool"),
    ],
)
def test_bad_options_fail_with_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=needle):
        main([*args, "--out", str(tmp_path / "run")])


def test_bad_levels_through_the_command_line_are_one_line_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "reach", "--streams", "1000,lots"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--streams" in lines[0]
