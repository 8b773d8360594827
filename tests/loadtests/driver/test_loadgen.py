"""The load generator's processes: how they are started and what they are told."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def test_the_token_reaches_locust_through_the_environment_not_argv() -> None:
    from loadtests.driver.loadgen import locust_argv as _locust_argv
    from loadtests.driver.pointspec import PointSpec, Target

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
    # loadgen.py (the locustfile) reads it from the variable the driver sets.
    loadgen = (REPO / "loadtests" / "scenarios" / "loadgen.py").read_text()
    from loadtests.driver.loadgen import TOKEN_ENV

    assert f'TOKEN_ENV = "{TOKEN_ENV}"' in loadgen


def test_locust_runs_the_harness_locustfile_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's repository with folders named loadtests/ and locust/: the Locust process a point starts is
    still the harness's, and so is its locustfile (it loads and lists its user class)."""
    import subprocess

    from loadtests.driver.loadgen import RemoteWorkers, load_processes
    from loadtests.driver.pointspec import PointSpec, Target, Timing

    for name in ("loadtests", "locust"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise SystemExit('the fake {name} ran')\n")
    monkeypatch.chdir(tmp_path)
    spec = PointSpec(
        variant="flask-sync", scenario="analyse", load_model="closed", users=1, rate=None, repeat=0
    )
    target = Target(url="http://127.0.0.1:1", mock_url="http://127.0.0.1:2", server_pid=1, mock_pid=1,
                    ceiling=4, latency_s=1.0, token="t")  # fmt: skip
    timing = Timing(warmup_s=1.0, duration_s=1.0, max_warmup_s=1.0, latency_s=1.0)
    (proc,) = load_processes(spec, target, timing, work=Path("work"), logs=Path("logs"), local=1,
                             remote=RemoteWorkers(), seed=1, max_in_flight=10, env=dict(os.environ),
                             )  # fmt: skip
    done = subprocess.run(
        [*proc.argv, "--list"], cwd=proc.cwd, env=proc.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "AnalyseUser" in done.stdout, done.stdout[-500:] + done.stderr[-500:]
    assert str(tmp_path / "work" / "raw") in proc.argv  # where the driver looks for its records
