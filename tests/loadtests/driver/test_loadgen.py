"""The load generator's processes: how they are started and what they are told."""

from __future__ import annotations

from pathlib import Path

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
