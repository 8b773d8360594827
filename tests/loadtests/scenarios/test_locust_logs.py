"""Locust's logs carry no host name (they sit beside results that get committed): its line prefix and its
workers' ids name the load generator, not the machine. Locust runs in subprocesses (its gevent patching
stays out of this one)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HOST = socket.gethostname()


def test_a_locust_run_logs_no_host_name(tmp_path: Path) -> None:
    from loadtests.driver.processes import python_module_argv

    # A spawn rate over 100 a process: Locust warns, as it did in every committed sweep's logs.
    argv = [
        *python_module_argv("locust"), "-f", str(REPO / "loadtests" / "scenarios" / "analyse.py"),
        "--headless", "--host", "http://127.0.0.1:9",
        "-u", "1", "-r", "200", "-t", "1s", "--stop-timeout", "0", "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    log = done.stdout + done.stderr
    assert "] loadgen/WARNING/locust.runners: Your selected spawn rate is very high" in log, log[-2000:]
    short = HOST.split(".")[0]
    assert f"] {short}/" not in log and f"{HOST}_" not in log, log[-2000:]


def test_a_workers_id_in_a_message_names_the_load_generator() -> None:
    script = (
        "import logging, socket; import locust.log; import loadtests.scenarios.loadgen as lg; "
        "locust.log.setup_logging('WARNING'); lg._hide_host_name(); "
        "logging.getLogger('locust.runners').warning('worker %s missing', socket.gethostname() + '_0a1b')"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "worker loadgen_0a1b missing" in done.stderr and f"{HOST}_" not in done.stderr, done.stderr
