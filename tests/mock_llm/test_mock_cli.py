"""``python -m mock_llm`` as a user meets it: --help, bad flags, a busy port, clean stops."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from mockkit import API_HEADERS, LOOPBACK, http_request, messages_body, mock_argv, running_mock

from loadtests.driver.processes import free_port, python_module_argv


def run_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        python_module_argv("mock_llm", *args), capture_output=True, text=True, timeout=timeout, check=False
    )


def test_help_documents_every_option() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for option in (
        "--host",
        "--port",
        "--profile",
        "--time-scale",
        "--seed",
        "--error-rate",
        "--errors",
        "--api-key",
    ):
        assert option in result.stdout
    for word in ("article", "instant", "haiku", "sonnet", "opus", "stream_error", "stall", "x-mock-fault"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--port", "9", "--bogus"), "unrecognized arguments: --bogus"),
        (("--port", "9", "--time-scale", "-1"), "--time-scale"),
        (("--port", "9", "--time-scale", "fast"), "--time-scale"),
        (("--port", "9", "--time-scale", "1001"), "at most 1000"),  # a 2 s call would take 33 minutes
        (("--port", "9", "--time-scale", "1e308"), "at most 1000"),
        (("--port", "9", "--profile", "gpt"), "--profile"),
        (("--port", "9", "--errors", "429,418"), "'418'"),
        (("--port", "9", "--error-rate", "1.5"), "--error-rate"),
        (
            (
                "--port",
                "70000",
            ),
            "--port",
        ),
        ((), "--port"),
    ],
)
def test_bad_flags_give_one_line_and_a_nonzero_exit(args: tuple[str, ...], fragment: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_the_config_refuses_a_time_scale_past_the_bound() -> None:
    from mock_llm.config import MAX_TIME_SCALE, MockConfig

    assert MockConfig(time_scale=MAX_TIME_SCALE).time_scale == MAX_TIME_SCALE
    with pytest.raises(ValueError, match="time_scale"):
        MockConfig(time_scale=MAX_TIME_SCALE * 1.001)


def test_busy_port_is_one_clear_line() -> None:
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli("--host", LOOPBACK, "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: port {port} on {LOOPBACK} is in use; choose another with --port"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_it_cleanly_even_during_a_stall(mock_log_dir: Path, sig: signal.Signals) -> None:
    statuses: list[int] = []
    with running_mock(mock_log_dir, f"mock-signal-{sig.name}", "--profile", "instant") as server:

        def stalled_call() -> None:
            headers = API_HEADERS | {"x-mock-fault": "stall"}
            body = messages_body()
            statuses.append(
                http_request(server.port, "POST", "/v1/messages", body=body, headers=headers).status
            )

        caller = threading.Thread(target=stalled_call)
        caller.start()
        deadline = time.monotonic() + 10
        while server.stats()["in_flight"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        popen = server.process.popen
        assert popen is not None
        started = time.monotonic()
        popen.send_signal(sig)
        code = popen.wait(timeout=15)
        caller.join(timeout=15)
        assert time.monotonic() - started < 10
    assert code == 0
    assert statuses == [529]  # the stalled call was answered ("shutting down"), not dropped
    assert "Traceback" not in server.process.log_path.read_text()


def test_argv_helper_binds_loopback() -> None:
    port = free_port()
    argv = mock_argv(port)
    assert argv[-4:] == ["--host", LOOPBACK, "--port", str(port)]
