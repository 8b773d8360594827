"""`python -m servers`: the registry listing and the run command's one-line failures."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from loadtests.driver.processes import LOOPBACK, free_port, python_module_argv
from servers.variants import VARIANTS


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    full_env.update(env or {})
    return subprocess.run(
        python_module_argv("servers", *args), capture_output=True, text=True, timeout=timeout, env=full_env
    )


def test_list_table_and_json() -> None:
    table = _run("list")
    assert table.returncode == 0
    for v in VARIANTS:
        assert v.name in table.stdout
    data = json.loads(_run("list", "--json").stdout)
    assert [d["name"] for d in data] == [v.name for v in VARIANTS]
    assert {
        "framework",
        "server",
        "worker_class",
        "workers",
        "threads",
        "connections",
        "predicted_ceiling",
    } <= set(data[0])
    # The broker `run` starts for the Celery variants, as the harness records it: asked of the real binary.
    brokers = {d["name"]: d["broker"] for d in data}
    assert all(brokers[v.name] is None for v in VARIANTS if v.broker is None)
    for name in ("flask-celery", "flask-celery-threads"):
        assert re.fullmatch(r"redis \d+\.\d+\.\d+", brokers[name]), brokers[name]


def test_a_missing_broker_is_one_line(tmp_path: Path) -> None:
    result = _run("run", "flask-celery", "--port", str(free_port()), env={"PATH": str(tmp_path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: variant flask-celery: broker redis-server not found"), lines


def test_a_broker_that_fails_to_start_is_one_line_naming_it(tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'fake redis-server refuses to start' >&2\nexit 3\n")
    fake.chmod(0o755)
    result = _run("run", "flask-celery-threads", "--port", str(free_port()), env={"PATH": str(tmp_path)})
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]  # after the broker's own output
    assert last == (
        "error: variant flask-celery-threads: broker redis-server failed to start: it exited with code 3; "
        "see its log output above"
    ), last


def test_unknown_variant_is_one_line() -> None:
    result = _run("run", "flask-turbo", "--port", str(free_port()))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown variant 'flask-turbo'" in lines[0] and "fastapi-async" in lines[0]


def test_busy_port_is_one_line() -> None:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = _run("run", "fastapi-async", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} on {LOOPBACK} is in use; choose another with --port"
    ]


def test_bad_setting_names_the_key() -> None:
    result = _run("run", "flask-sync", "--port", str(free_port()), env={"BENCH_RATE_LIMIT": "lots"})
    assert result.returncode == 2
    assert "BENCH_RATE_LIMIT" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("variant", ["flask-sync", "flask-granian"])
def test_app_that_fails_to_boot_is_named(tmp_path: Path, variant: str) -> None:
    # A broken module shadowing a dependency: the server dies on import, the CLI says why in its last line.
    (tmp_path / "flask_sock.py").write_text("raise ImportError('flask_sock is broken on purpose')\n")
    result = _run("run", variant, "--port", str(free_port()), env={"PYTHONPATH": str(tmp_path)}, timeout=90)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: variant {variant}: the app failed to boot: ImportError"), last
    assert "flask_sock is broken on purpose" in last


def test_the_public_default_token_is_refused_beyond_loopback() -> None:
    result = _run("run", "flask-sync", "--host", "0.0.0.0", "--port", str(free_port()))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--host 0.0.0.0" in lines[0] and "default token" in lines[0], lines


def test_settings_never_show_their_secrets() -> None:
    from servers.settings import load_settings

    settings = load_settings(
        {"BENCH_JOB_DB": "unused", "BENCH_API_TOKENS": "tok-s3cr3t", "BENCH_UPSTREAM_API_KEY": "sk-s3cr3t"}
    )
    assert settings.api_tokens == ("tok-s3cr3t",) and settings.upstream_api_key == "sk-s3cr3t"
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings)


def _tree(pid: int) -> list[int]:
    import psutil

    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


def _gone(pids: list[int], timeout_s: float = 20.0) -> list[int]:
    import time

    import psutil

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        alive = [
            p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def test_sighup_stops_the_server_and_its_workers(tmp_path: Path) -> None:
    """SIGHUP (a closed terminal) stops `servers run` and its server cleanly, like SIGTERM. (A SIGKILLed
    driver's children: PR_SET_PDEATHSIG, tested with ManagedProcess in tests/loadtests/test_sweep_safety.py;
    gunicorn and uvicorn also notice a lost parent themselves.)"""
    import signal
    import time

    import psutil

    from loadtests.driver.processes import http_ok

    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    for sig in (signal.SIGHUP,):
        port = free_port()
        argv = python_module_argv("servers", "run", "flask-sync", "--port", str(port), "--workers", "2")
        with open(tmp_path / f"run-{sig.name}.log", "wb") as log:
            driver = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            end = time.monotonic() + 60
            while not http_ok(f"http://{LOOPBACK}:{port}/health"):
                assert driver.poll() is None and time.monotonic() < end, sig
                time.sleep(0.1)
            while len(tree := _tree(driver.pid)) < 3:  # gunicorn master and its two workers
                assert time.monotonic() < end, tree
                time.sleep(0.1)
            os.kill(driver.pid, sig)
            code = driver.wait(timeout=30)
            assert code == 0, (sig, code)
            assert _gone(tree) == [], (sig, tree)
        finally:
            if driver.poll() is None:
                driver.kill()
            for pid in _tree(driver.pid) if psutil.pid_exists(driver.pid) else []:
                os.kill(pid, signal.SIGKILL)


def test_sigterm_and_sigint_stop_every_worker_of_the_new_servers(tmp_path: Path) -> None:
    """granian (a supervisor and its worker process), gunicorn's asgi worker, hypercorn and the Celery
    variants' whole stack stop with `run` on SIGTERM and on SIGINT, leaving no process behind; started
    together to keep the test short."""
    import signal
    import time

    import psutil

    from loadtests.driver.processes import http_ok

    cases = [
        ("flask-granian", signal.SIGTERM),
        ("fastapi-granian", signal.SIGINT),
        ("fastapi-gunicorn-asgi", signal.SIGINT),
        ("quart-async", signal.SIGTERM),  # hypercorn's supervisor and its spawned worker
        ("flask-celery", signal.SIGTERM),  # Redis, the Celery worker and its pool, gunicorn and its workers
        ("flask-celery-threads", signal.SIGINT),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    drivers: list[tuple[str, signal.Signals, int, subprocess.Popen[bytes]]] = []
    try:
        for variant, sig in cases:
            port = free_port()
            argv = python_module_argv("servers", "run", variant, "--port", str(port))
            with open(tmp_path / f"run-{variant}.log", "wb") as log:
                proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            drivers.append((variant, sig, port, proc))
        end = time.monotonic() + 90
        trees = {}
        for variant, _sig, port, proc in drivers:
            while not http_ok(f"http://{LOOPBACK}:{port}/health"):
                assert proc.poll() is None and time.monotonic() < end, variant
                time.sleep(0.1)
            while len(tree := _tree(proc.pid)) < 2:  # the server and (at least) one worker process
                assert time.monotonic() < end, (variant, tree)
                time.sleep(0.1)
            trees[variant] = tree
        for _variant, sig, _port, proc in drivers:
            os.kill(proc.pid, sig)
        for variant, sig, _port, proc in drivers:
            assert proc.wait(timeout=30) == 0, (variant, sig)
            assert _gone(trees[variant]) == [], (variant, sig, trees[variant])
    finally:
        for _variant, _sig, _port, proc in drivers:
            if proc.poll() is None:
                proc.kill()
            for pid in _tree(proc.pid) if psutil.pid_exists(proc.pid) else []:
                os.kill(pid, signal.SIGKILL)


def test_a_killed_run_takes_the_celery_stack_with_it(tmp_path: Path) -> None:
    """SIGKILL gives `run` no chance to stop anything: its children die by PR_SET_PDEATHSIG (Redis too,
    though it has a process group of its own), and the Celery worker takes its pool down."""
    import signal
    import time

    from loadtests.driver.processes import http_ok

    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    port = free_port()
    with open(tmp_path / "run-killed.log", "wb") as log:
        driver = subprocess.Popen(
            python_module_argv("servers", "run", "flask-celery", "--port", str(port)),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    tree: list[int] = []
    try:
        end = time.monotonic() + 90
        while not http_ok(f"http://{LOOPBACK}:{port}/health"):
            assert driver.poll() is None and time.monotonic() < end
            time.sleep(0.1)
        tree = _tree(driver.pid)
        names = " ".join(" ".join(psutil_cmdline(pid)) for pid in tree)
        assert "redis-server" in names and "celery" in names and "gunicorn" in names, names
        driver.kill()
        driver.wait(timeout=10)
        assert _gone(tree, timeout_s=30) == [], tree
    finally:
        if driver.poll() is None:
            driver.kill()
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def psutil_cmdline(pid: int) -> list[str]:
    import psutil

    try:
        return list(psutil.Process(pid).cmdline())
    except psutil.Error:
        return []
