"""Child processes: free ports, and a child that dies with its driver."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from loadtests.driver.processes import LOOPBACK, ephemeral_port_range, free_port


def test_free_ports_lie_below_the_ephemeral_range_and_are_never_repeated() -> None:
    low, high = ephemeral_port_range()
    assert 0 < low <= high <= 65535
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    if low > 16000:  # room below the range: every port must come from there
        assert all(port < low for port in ports), [p for p in ports if p >= low][:5]


def test_a_free_port_survives_a_burst_of_outgoing_connections() -> None:
    """The CI failure: the port bind(0) gave was taken by a connection before the server bound it."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.create_server((LOOPBACK, 0), backlog=512))
        clients = [stack.enter_context(socket.create_connection(listener.getsockname())) for _ in range(200)]
        assert all(client.getsockname()[1] != port for client in clients)
        server = stack.enter_context(socket.socket())
        server.bind((LOOPBACK, port))  # raises if the port was taken


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


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_daemon_that_left_its_process_group_is_stopped_too(tmp_path: Path) -> None:
    """A child that double-forks into a session of its own escapes killpg; stop() finds it all the same."""
    from loadtests.driver.processes import ManagedProcess

    pid_file = tmp_path / "daemon.pid"
    daemon = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "        time.sleep(120)\n"
        "    os._exit(0)\n"
        "time.sleep(120)\n"
    )
    proc = ManagedProcess("daemonizer", [sys.executable, "-c", daemon], log_path=tmp_path / "d.log").start()
    end = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < end, "the daemon never wrote its pid"
        time.sleep(0.02)
    pid = int(pid_file.read_text())
    try:
        assert os.getsid(pid) != os.getpgid(proc.pid)  # out of the group stop() signals
        proc.stop()
        end = time.monotonic() + 10
        while not _gone(pid):
            assert time.monotonic() < end, "the daemon outlived stop()"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_program_that_is_not_installed_is_one_line(tmp_path: Path) -> None:
    from loadtests.driver.processes import ManagedProcess
    from loadtests.errors import ProcessStartError

    with pytest.raises(ProcessStartError) as info:
        ManagedProcess("target app", ["no-such-program-anywhere", "--x"], log_path=tmp_path / "a.log").start()
    assert "target app could not start: no-such-program-anywhere" in str(info.value)
    assert "\n" not in str(info.value)


def _fake_packages(where: Path, *names: str) -> Path:
    """Packages named like the harness's in ``where`` (a user's repository): running one leaves a mark."""
    for name in names:
        (where / name).mkdir(parents=True)
        (where / name / "__init__.py").write_text(f"open({str(where / 'FAKE-RAN')!r}, 'a').write('{name}')\n")
        (where / name / "__main__.py").write_text("")
    return where / "FAKE-RAN"


def test_the_harness_children_run_the_harness_code_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a directory holding its own mock_llm/ and servers/, the mock started as the harness starts it
    answers as the real mock, and `servers` is the real one."""
    from loadtests.driver.processes import ManagedProcess, python_module_argv

    mark = _fake_packages(tmp_path, "mock_llm", "servers", "loadtests")
    monkeypatch.chdir(tmp_path)
    port = free_port()
    mock = ManagedProcess(
        "mock", python_module_argv("mock_llm", "--host", LOOPBACK, "--port", str(port)),
        log_path=tmp_path / "logs" / "mock.log", ready_url=f"http://{LOOPBACK}:{port}/health",
    )  # fmt: skip
    with mock.start(ready_timeout=60):
        pass
    listed = subprocess.run(
        python_module_argv("servers", "list"), capture_output=True, text=True, timeout=120, check=False
    )
    assert listed.returncode == 0 and "fastapi-async" in listed.stdout, listed.stderr[-500:]
    assert not mark.exists(), mark.read_text()


def test_a_pythonpath_that_shadows_the_harness_is_refused_in_one_line(tmp_path: Path) -> None:
    from loadtests.driver.processes import ManagedProcess, python_module_argv
    from loadtests.errors import ProcessStartError

    mark = _fake_packages(tmp_path / "repo", "mock_llm")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "repo")}
    mock = ManagedProcess("mock for x", python_module_argv("mock_llm"), log_path=tmp_path / "m.log", env=env)
    with pytest.raises(ProcessStartError) as info:
        mock.start()
    message = str(info.value)
    assert "\n" not in message and "mock for x: mock_llm would be imported from" in message, message
    assert str(tmp_path / "repo" / "mock_llm") in message and "PYTHONPATH" in message
    assert mock.popen is None and not mark.exists()
