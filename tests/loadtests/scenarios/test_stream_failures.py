"""A stream the server ends with its error marker is a failure in the load generator's records, not a
success: real Locust, real server, a mock that fails every stream after it has started."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from loadtests.driver.processes import LOOPBACK, ManagedProcess, free_port, python_module_argv

REPO = Path(__file__).resolve().parents[3]
TOKEN = "tok-stream"


def test_a_stream_ended_by_the_error_marker_is_a_failure(tmp_path: Path) -> None:
    mock_port, server_port = free_port(), free_port()
    mock = ManagedProcess(
        "mock",
        python_module_argv("mock_llm", "--host", LOOPBACK, "--port", str(mock_port), "--time-scale", "0.05",
                           "--error-rate", "1", "--errors", "stream_error"),
        log_path=tmp_path / "mock.log", ready_url=f"http://{LOOPBACK}:{mock_port}/health",
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update({"BENCH_API_TOKENS": TOKEN, "BENCH_RATE_LIMIT": "off", "BENCH_UPSTREAM_MAX_RETRIES": "0"})
    server = ManagedProcess(
        "server",
        python_module_argv("servers", "run", "fastapi-async", "--host", LOOPBACK, "--port", str(server_port),
                           "--upstream", f"http://{LOOPBACK}:{mock_port}"),
        log_path=tmp_path / "server.log", ready_url=f"http://{LOOPBACK}:{server_port}/health", env=env,
    )  # fmt: skip
    mock.start(ready_timeout=60)
    try:
        server.start(ready_timeout=60)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "locust", "-f", str(REPO / "loadtests/scenarios/stream.py"),
                 "--headless", "-u", "2", "-r", "10", "-t", "2s", "--only-summary", "--loglevel", "WARNING",
                 "--host", f"http://{LOOPBACK}:{server_port}", "--bench-raw", str(tmp_path / "raw")],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        finally:
            server.stop()
    finally:
        mock.stop()
    files = list(tmp_path.glob("raw.*.csv"))
    assert files, done.stderr[-2000:]
    rows = []
    for path in files:
        with path.open() as handle:
            rows += [row for row in csv.DictReader(handle) if row["status"] != "unfinished"]
    assert len(rows) >= 4, rows
    # Every stream got its 200 and first chunks, then the marker: none is a success.
    assert all(row["ok"] == "0" and row["status"] == "stream-error" for row in rows), rows[:3]
    assert all(row["ttft_ms"] for row in rows)
