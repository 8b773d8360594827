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
