"""``python -m loadtests cpu``: py-spy on every process of a real variant under load; its budget adds up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.reporting.report import write_report
from loadtests.results import load_results

REPO = Path(__file__).resolve().parents[3]


def _profiler_or_skip() -> None:
    from loadtests.driver.profile import ProfilerError, check_attach

    try:
        check_attach()
    except ProfilerError as exc:
        pytest.skip(f"py-spy cannot profile a process on this machine: {exc}")


@pytest.mark.slow
def test_the_cpu_budget_of_every_worker_of_a_profiled_variant_adds_up(tmp_path: Path) -> None:
    _profiler_or_skip()
    run_dir = tmp_path / "cpu"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "cpu", "--variants", "flask-sync", "--users", "4",
         "--time-scale", "0.025", "--duration", "8", "--profile-rate", "50", "--seed", "5", "--out",
         str(run_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run = load_results(run_dir)
    (entry,) = run.cpu
    measured = entry["cpu_ms_per_request"]
    profiled = sum(entry["components"].values())
    # Each thread's CPU (the kernel's) split as its samples fell: together they must be the CPU psutil
    # measured for the whole tree (a worker py-spy missed would leave a gap), nearly all of it named.
    assert entry["classified_share"] >= 0.9, entry["unclassified_modules"]
    assert abs(profiled / measured - 1) <= 0.10, (profiled, measured, entry["problems"])
    assert entry["adds_up"], entry["problems"]
    # Every gunicorn worker that did work was sampled (py-spy follows the whole tree).
    total = sum(p["cpu_s"] for p in entry["processes"])
    busy = [p for p in entry["processes"] if p["cpu_s"] > 0.05 * total]
    assert len(busy) >= 4 and all(p["samples"] > 0 for p in busy), entry["processes"]
    # The profiled point is marked and kept out of the run's points; the unprofiled one gives the overhead.
    assert entry["point"]["extra"]["profiled"] is True
    assert [p.extra.get("profiled") for p in run.points] == [None]
    assert entry["cpu_ms_per_request_unprofiled"] == run.points[0].server_cpu_ms_per_request
    assert entry["profiler_overhead"] is not None
    plain, overhead = entry["cpu_ms_per_request_unprofiled"], entry["profiler_overhead"]
    print(
        f"flask-sync at 4 users: {measured} ms CPU per request profiled, {plain} ms without the profiler "
        f"({overhead:+.1%}); py-spy's own {entry['profiler_own_cpu_ms_per_request']} ms per request; "
        f"components vs psutil {entry['budget_error']:+.1%}, on-CPU share {entry['on_cpu_share']}, "
        f"py-spy's rounds in R vs the kernel's {entry['sampling_ratio']}; "
        f"components {entry['components']}"
    )
    svg = (run_dir / entry["flamegraph"]).read_text()
    assert all(f"process {p['pid']}" in svg for p in busy)
    raw = (run_dir / entry["raw_profile"]).read_text()
    assert "flask/app.py" in raw and str(REPO) not in raw  # frames by module path, no machine path
    write_report(run_dir)
    report = (run_dir / "report.md").read_text()
    assert "## Where the CPU goes" in report and f"[SVG]({entry['flamegraph']})" in report
    assert (run_dir / "charts" / "analyse-cpu-budget.svg").exists()


def test_a_profiler_that_cannot_attach_is_one_line_and_nothing_starts(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_PYSPY": "/bin/false"}  # a py-spy that fails as one without ptrace does
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "cpu", "--variants", "flask-sync", "--out", str(tmp_path / "x")],
        cwd=REPO, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "py-spy cannot attach" in lines[0], done.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--users", "4,8"], "--users"), (["--profile-rate", "0"], "--profile-rate"),
     (["--variants", "nope"], "nope")],
)  # fmt: skip
def test_bad_cpu_flags_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "cpu", *args, "--out", str(tmp_path / "x")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and needle in lines[0], done.stderr
