"""The sweep's guards: non-finite numbers refused, stored settings checked on --resume, one sweep per run
directory, the token kept off Locust's command line, and no child outliving a killed driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from loadtests.errors import UserError
from loadtests.results import RunResults
from loadtests.sweep import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "args",
    [
        ["--time-scale", "nan"],
        ["--duration", "inf"],
        ["--rate", "1,nan"],
        ["--warmup=-inf"],
        ["--rate", "inf"],
    ],
    ids=["nan-scale", "inf-duration", "nan-rate", "minus-inf-warmup", "inf-rate"],
)
def test_non_finite_numbers_are_refused(args: list[str], tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"{args[0].split('=')[0]}.*finite"):
        main([*args, "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("stored", "needle"),
    [({"time_scale": float("nan")}, "--time-scale"), ({"users": [2, -8]}, "--users"),
     ({"duration_s": "soon"}, "--duration"), ({"variants": ["flask-turbo"]}, "flask-turbo"),
     ({"bogus_only": 1, "variants": 3}, "not valid")],
    ids=["nan", "negative-users", "string-duration", "unknown-variant", "garbage"],
)  # fmt: skip
def test_resume_validates_the_stored_settings(stored: dict[str, object], needle: str, tmp_path: Path) -> None:
    settings = {"variants": ["flask-sync"], "scenarios": ["analyse"], "users": [2], "rates": [],
                "time_scale": 0.05, "duration_s": 1.0, **stored}  # fmt: skip
    RunResults(metadata={"preset": "default", "sweep_settings": settings}).save(tmp_path)
    with pytest.raises(UserError, match=needle) as info:
        main(["--resume", str(tmp_path)])
    assert str(info.value).startswith("--resume:") and "\n" not in str(info.value)


def test_a_run_directory_takes_one_sweep_at_a_time(tmp_path: Path) -> None:
    from loadtests.sweep import lock_run_dir

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    held = lock_run_dir(run_dir)  # as a running sweep holds it
    try:
        with pytest.raises(UserError, match="in use by another sweep"):
            main(["--users", "2", "--out", str(run_dir)])
        assert not (run_dir / "results.json").exists()
    finally:
        os.close(held)
    os.close(lock_run_dir(run_dir))  # free again once the holder is gone


def test_the_token_reaches_locust_through_the_environment_not_argv() -> None:
    from loadtests.driver.pointrun import PointSpec, Target, _locust_argv

    secret = "tok-never-in-argv"
    spec = PointSpec(
        variant="flask-sync", scenario="analyse", load_model="closed", users=2, rate=None, repeat=0
    )
    target = Target(url="http://127.0.0.1:1", mock_url="http://127.0.0.1:2", server_pid=1, mock_pid=1,
                    ceiling=4, latency_s=1.0, token=secret)  # fmt: skip
    for role in ("local", "master", "worker"):
        argv = _locust_argv(spec, target, raw_prefix=Path("raw"), role=role, processes=1, run_time_s=10,
                            seed=1, master_host="127.0.0.1", master_port=1, max_in_flight=10)  # fmt: skip
        assert not any(secret in arg for arg in argv), (role, argv)
    # loadgen.py (the locustfile) reads it from the variable pointrun sets.
    loadgen = (REPO / "loadtests" / "scenarios" / "loadgen.py").read_text()
    from loadtests.driver.pointrun import TOKEN_ENV

    assert f'TOKEN_ENV = "{TOKEN_ENV}"' in loadgen


def test_a_managed_child_dies_when_its_driver_is_killed(tmp_path: Path) -> None:
    """No orphan when the driver cannot clean up: the kernel sends the child SIGTERM (PR_SET_PDEATHSIG)."""
    driver_code = (
        "import sys, time; from pathlib import Path; from loadtests.driver.processes import ManagedProcess; "
        "p = ManagedProcess('sleeper', [sys.executable, '-c', 'import time; time.sleep(120)'], "
        "log_path=Path(sys.argv[1])).start(); print(p.pid, flush=True); time.sleep(120)"
    )
    driver = subprocess.Popen(
        [sys.executable, "-c", driver_code, str(tmp_path / "sleeper.log")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert driver.stdout is not None
        child = int(driver.stdout.readline())
        assert psutil.pid_exists(child)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=10)
        end = time.monotonic() + 10
        while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < end, "the child outlived its killed driver"
            time.sleep(0.05)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=10)
        if driver.stdout is not None:
            driver.stdout.close()
