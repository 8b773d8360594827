"""python -m loadtests reach: its plan (printed before anything runs), its bad options, and Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from loadtests.commands.reach import main
from loadtests.driver.reach import level_latency_s
from loadtests.errors import UserError

REPO = Path(__file__).resolve().parents[3]


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


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_a_background_run_stops_on_ctrl_c_with_every_child_and_keeps_its_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "loadtests", "reach", "--variants", "fastapi-async", "--streams", "20",
               "--min-latency", "60", "--window", "5", "--budget", "5", "--out", str(run_dir)]  # fmt: skip
    # `trap '' INT` then exec: SIGINT arrives ignored, as for `cmd &` in a script or under nohup.
    driver = subprocess.Popen(
        ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            children = _descendants(driver.pid)
            if any("locust" in " ".join(c.cmdline()) for c in children if c.is_running()):
                break  # mock, server and load generator all up: mid-level
            time.sleep(0.2)
        assert driver.poll() is None, driver.communicate()[0][-2000:]
        children = _descendants(driver.pid)
        driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=90)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for child in _descendants(driver.pid) + children:
            if child.is_running():
                child.kill()
    assert driver.returncode == 130, output[-2000:]
    assert "interrupted: every process stopped" in output
    _, alive = psutil.wait_procs(children, timeout=10)
    assert [" ".join(p.cmdline())[:80] for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
    stored = json.loads((run_dir / "results.json").read_text())
    assert stored["metadata"]["command_line"] and stored["points"] == []  # the level never finished
    assert not (run_dir / "tmp").exists()  # the variant's working files went with its processes
