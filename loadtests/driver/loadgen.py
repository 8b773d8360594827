"""The load generator of one point: Locust processes (one local, or a master and its workers) started,
followed until every one has started its users, and stopped so that each flushes its records."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.driver.interrupts import deferred_interrupts
from loadtests.driver.pointspec import MAX_WINDOW_S, PointSpec, Target, Timing
from loadtests.driver.processes import LOOPBACK, ManagedProcess, free_port, python_module_argv

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
START_TIMEOUT_S = 60.0
TOKEN_ENV = "BENCH_LOADGEN_TOKEN"  # read by loadgen.py, a locustfile that cannot be imported here


class PointError(RuntimeError):
    """The load generator failed; the message names its log file."""


@dataclass(frozen=True, kw_only=True)
class RemoteWorkers:
    """Locust workers on other hosts that join each point's master (``count`` 0: none). They must see
    the run directory at the same path (a shared filesystem): their records are written there."""

    count: int = 0
    bind: str = LOOPBACK  # the master's listening address
    port: int = 5557

    def worker_command(self, total: int) -> str:
        """What to run on each other host, again after every point (a worker leaves with its master)."""
        return (
            f"BENCH_LOADGEN_TOKEN=<the first of BENCH_API_TOKENS> BENCH_LOADGEN_PROCS={total} "
            f"locust -f - --worker --master-host {self.bind} --master-port {self.port}"
        )


def locust_argv(
    spec: PointSpec,
    target: Target,
    *,
    raw_prefix: Path,
    role: str,
    processes: int,
    run_time_s: float,
    seed: int,
    master_host: str,
    master_port: int,
    max_in_flight: int,
) -> list[str]:
    locustfile = "target.py" if target.request is not None else f"{spec.scenario}.py"
    # -P: the working directory never comes first on the import path, so a loadtests/ or locust/ folder in
    # the user's repository cannot stand in for the load generator (checked at start); Locust puts its own
    # working directory there too, so it runs in SCENARIO_DIR (load_processes).
    argv = [*python_module_argv("locust"), "-f", str(SCENARIO_DIR / locustfile)]
    if role == "worker":
        return [
            *argv,
            "--worker",
            "--master-host",
            master_host,
            "--master-port",
            str(master_port),
            "--loglevel",
            "WARNING",
        ]
    users = spec.users if spec.load_model == "closed" else processes  # open loop: one scheduler each
    assert users is not None
    argv += [
        "--headless",
        "--host",
        target.url,
        "-u",
        str(users),
        "-r",
        str(max(users * 20, 1)),
        "-t",
        f"{math.ceil(run_time_s)}s",
        "--stop-timeout",
        "0",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--bench-raw",
        str(raw_prefix.resolve()),  # absolute: Locust runs in SCENARIO_DIR
        "--bench-model",
        spec.load_model,
        "--bench-spread",
        f"{target.latency_s:.4f}",
        "--bench-seed",
        str(seed),
        "--bench-poll-interval",
        f"{max(0.02, target.latency_s / 10):.4f}",
        "--bench-max-in-flight",
        str(max_in_flight),
    ]
    if spec.load_model == "open":
        argv += ["--bench-rate", f"{(spec.rate or 0) / processes:.6f}"]
    if role == "master":
        argv += [
            "--master",
            "--master-bind-host",
            master_host,
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(processes),
        ]
    return argv


def check_running(processes: Sequence[ManagedProcess]) -> None:
    for proc in processes:
        if not proc.running():
            raise PointError(f"load generator {proc.name} exited early; see {proc.log_path}")


def stop_all(processes: Sequence[ManagedProcess]) -> None:
    # SIGTERM every load process at once (each flushes its records), then reap them; a Ctrl-C waits.
    with deferred_interrupts():
        for proc in processes:
            if proc.running():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes:
            proc.stop(timeout=15.0)


def load_processes(
    spec: PointSpec,
    target: Target,
    timing: Timing,
    *,
    work: Path,
    logs: Path,
    local: int,
    remote: RemoteWorkers,
    seed: int,
    max_in_flight: int,
    env: dict[str, str],
) -> list[ManagedProcess]:
    """The point's Locust processes, not started: one process, or a master with ``local`` workers.

    Remote workers count as load processes everywhere (the users and the open-loop rate are split over all
    of them), but only the local ones are started, sampled for CPU and stopped here.
    """
    point_id = spec.point_id
    env = {**env, TOKEN_ENV: target.token}  # the environment, not argv: ps shows every process's argv
    if target.request is not None:
        env["BENCH_TARGET_REQUEST"] = json.dumps(target.request)
        env["BENCH_TARGET_SCENARIO"] = spec.scenario
    longest_window = max(MAX_WINDOW_S, timing.duration_s) + timing.latency_s
    warmup_bound = timing.warmup_s if timing.warmup_s is not None else timing.max_warmup_s
    total = local + remote.count
    distributed = total > 1
    if remote.count:
        master_host, master_port = remote.bind, remote.port
    else:
        master_host, master_port = LOOPBACK, (free_port() if distributed else 0)

    def argv(role: str) -> list[str]:
        return locust_argv(
            spec, target, raw_prefix=work / "raw", role=role, processes=total,
            run_time_s=warmup_bound + longest_window + 60.0,  # a safety net; the driver stops Locust itself
            seed=seed, master_host=master_host, master_port=master_port, max_in_flight=max_in_flight,
        )  # fmt: skip

    if not distributed:
        return [
            ManagedProcess(
                f"{point_id} locust",
                argv("local"),
                log_path=logs / f"{point_id}.locust.log",
                env=env,
                cwd=SCENARIO_DIR,
            )
        ]
    # Each worker's index is Locust's own worker_index (loadgen.proc_index), given by the master.
    worker_env = {**env, "BENCH_LOADGEN_PROCS": str(total)}
    return [
        ManagedProcess(
            f"{point_id} locust master",
            argv("master"),
            log_path=logs / f"{point_id}.locust-master.log",
            env=env,
            cwd=SCENARIO_DIR,
        ),
        *(
            ManagedProcess(
                f"{point_id} locust worker {index}",
                argv("worker"),
                log_path=logs / f"{point_id}.locust-worker{index}.log",
                env=worker_env,
                cwd=SCENARIO_DIR,
            )
            for index in range(local)
        ),
    ]


def start_load(
    processes: Sequence[ManagedProcess], *, work: Path, expected_markers: int, logs: Path
) -> float:
    """Start every load process and wait for their start markers; t0 is the latest one (every process has
    started its users by then). Remote workers write theirs to the shared run directory; a process given
    no user (1 user on 2 processes) never starts a recorder, so it writes none."""
    for proc in processes:
        proc.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        markers = sorted(work.glob("raw.*.start"))
        if len(markers) >= expected_markers:
            return max(float(path.read_text()) for path in markers)
        for proc in processes:
            if not proc.running():
                raise PointError(f"load generator {proc.name} exited before starting; see {proc.log_path}")
        time.sleep(0.05)
    raise PointError(f"load generator did not start within {START_TIMEOUT_S:.0f} s; see {logs}")
