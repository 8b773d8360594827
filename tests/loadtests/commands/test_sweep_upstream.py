"""A sweep against a rate-limited upstream: the harness starts the mock with the provider's limits, the
server's retries meet its 429s, and the report sets goodput against the limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.analysis.provider import provider_limits, provider_rows
from loadtests.results import load_results

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_a_rate_limited_sweep_holds_throughput_to_the_limit_and_reports_goodput(tmp_path: Path) -> None:
    # 16 users at L = 0.2 s offer about 80 requests/s; 120 per (scaled) minute of 6 s is 20/s.
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "sweep", "--variants", "fastapi-async", "--scenarios", "analyse",
         "--users", "16", "--rate", "none", "--time-scale", "0.1", "--duration", "3s", "--warmup", "2s",
         "--seed", "4", "--rpm", "120", "--out", str(run_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-2000:]  # 1: an invalid point
    run = load_results(run_dir)
    assert provider_limits(run) == {"rpm": 120}
    (row,) = provider_rows(run)
    assert row.limit_rps == pytest.approx(20.0)
    assert row.mock_rate_limited > 0, row  # the limit reached the mock and load reached the limit
    assert row.calls_per_request is not None and row.calls_per_request > 1.0, row  # the server retried
    # Without the limit this point completes about 80 requests/s; with it, what the bucket refills (20/s)
    # plus the calls admitted before the window that end inside it.
    assert row.throughput_rps <= 1.3 * row.limit_rps, row
    assert row.goodput_rps <= row.throughput_rps
    report = subprocess.run(
        [sys.executable, "-m", "loadtests", "report", str(run_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
    md = (run_dir / "report.md").read_text()
    assert "## Against the provider's limit" in md and "`--rpm 120`" in md


def test_a_limit_that_is_not_a_positive_whole_number_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "sweep", "--preset", "quick", "--rpm", "0",
         "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        done.stderr.strip().splitlines()[-1].endswith("--rpm must be positive, not '0'")
        or "--rpm" in done.stderr
    )


@pytest.mark.slow
def test_a_sweep_replays_a_timing_file_and_says_how_close_it_came(tmp_path: Path) -> None:
    trace = tmp_path / "calls.jsonl"  # 60 calls of 0.2-0.79 s (0.1-0.4 s at time scale 0.5), one at a time
    trace.write_text(
        "".join(f'{{"ttft_s": {0.1 + i / 100:.2f}, "total_s": {0.2 + i / 100:.2f}}}\n' for i in range(60))
    )
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "sweep", "--variants", "fastapi-async", "--scenarios", "analyse",
         "--users", "4", "--rate", "none", "--time-scale", "0.5", "--duration", "4s", "--warmup", "1s",
         "--seed", "4", "--mock-profile", f"replay:{trace.name}", "--out", str(run_dir)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-2000:]
    run = load_results(run_dir)
    assert run.metadata["mock_profile"] == "replay:calls.jsonl"  # as given: no path of the machine
    (point,) = run.points
    replay = point.extra["replay"]
    assert replay["records"] == 60 and replay["replayed"] >= 20, replay
    total = replay["ks"]["total_s"]
    assert total["d"] <= total["critical_05"], total  # the replayed calls' durations match the file's


def test_a_replay_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "sweep", "--preset", "quick", "--mock-profile", "replay:none.csv",
         "--out", str(tmp_path / "run")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--mock-profile" in done.stderr and "none.csv" in done.stderr
    assert "Traceback" not in done.stderr
