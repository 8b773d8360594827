"""``python -m loadtests faults``: retries multiply the upstream's load, on real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.reporting.report import write_report
from loadtests.results import load_results

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_retries_multiply_the_calls_a_failing_upstream_gets(tmp_path: Path) -> None:
    run_dir = tmp_path / "faults"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "faults", "--variants", "fastapi-async", "--fault-rate", "0.5",
         "--errors", "529", "--retries", "0,1", "--users", "4", "--time-scale", "0.05", "--duration", "1",
         "--seed", "4", "--out", str(run_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run = load_results(run_dir)
    by_retries = {e["retries"]: e for e in run.faults}
    assert set(by_retries) == {0, 1} and run.points == []  # the entries keep their own points
    plain, retried = by_retries[0], by_retries[1]
    # Half the calls fail and nothing retries: about half the requests fail, one call each.
    assert 0.3 <= plain["failed_share"] <= 0.7, plain
    assert plain["upstream_calls_per_request"] <= 1.1, plain
    assert plain["failures_by_status"].keys() == {"503"}  # 529 overloaded -> 503, as the contract says
    # One retry: fewer failures (about a quarter), paid for with about 1.5 calls per request.
    assert retried["failed_share"] < plain["failed_share"], (plain, retried)
    assert retried["upstream_calls_per_request"] >= 1.3, retried
    write_report(run_dir)
    assert "## Under upstream faults" in (run_dir / "report.md").read_text()
    assert (run_dir / "charts" / "faults-goodput.svg").exists()


def test_bad_fault_flags_are_one_line(tmp_path: Path) -> None:
    for args, needle in ((["--fault-rate", "1.5"], "--fault-rate"), (["--errors", "418"], "418"),
                         (["--users", "4,8"], "one number")):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "loadtests", "faults", *args, "--out", str(tmp_path / "x")],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and needle in lines[0], done.stderr
