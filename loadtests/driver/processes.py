"""Start, wait for and stop the real processes a measurement or a test needs.

One small piece shared by the sweep driver, the mock's own benchmark and the test suites, so every
child process is started the same way: in its own process group (so its workers die with it), its
output in a log file, ready only when its health URL answers 200, and killed by the kernel if the
driver dies without stopping it (``servers.lifetime``).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from loadtests.driver.direct import open_direct
from loadtests.errors import ProcessStartError
from servers.lifetime import die_with_this_process

LOOPBACK = "127.0.0.1"
HARNESS_ROOT = Path(__file__).resolve().parents[2]
HARNESS_PACKAGES = ("loadtests", "mock_llm", "servers")
# Every child carries a tag of its own in its environment; whatever still carries it at stop is killed,
# also a daemon that left the process group (setsid) and its parent (a double fork).
PROCESS_TAG_ENV = "LLM_WAIT_BENCH_PROCESS_TAG"


# Linux's default when /proc cannot be read.
_DEFAULT_EPHEMERAL = (32768, 60999)
_LOWEST_PORT = 15000  # below this sit the well-known services a developer may run
_handed_out: set[int] = set()


def ephemeral_port_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (and ``bind(0)``)."""
    try:
        low, high = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL
    return low, high


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago, outside the ephemeral range, never the same twice in a process.

    Why not ``bind(0)``: that port comes from the ephemeral range, and between closing the probe and
    the child's own bind any outgoing connection (a readiness probe, an SDK's pool) may take it; the
    child then fails to bind (uvicorn exits 3). Outgoing connections never use ports below the range.
    """
    low, _high = ephemeral_port_range()
    rng = random.Random(f"{os.getpid()}-{time.monotonic_ns()}")
    if low - _LOWEST_PORT >= 1000:
        for _ in range(500):
            port = rng.randrange(_LOWEST_PORT, low)
            if port not in _handed_out and _bindable(port, host):
                _handed_out.add(port)
                return port
    while True:  # a machine whose ephemeral range leaves no room below it
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _bindable(port: int, host: str) -> bool:
    """Strict: no SO_REUSEADDR, so a port still in TIME_WAIT counts as taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def http_ok(url: str, *, timeout: float = 1.0) -> bool:
    try:
        with open_direct(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


class ManagedProcess:
    """A child process with a name, a log file and a readiness URL.

    Use as a context manager, or call :meth:`start` and :meth:`stop` yourself.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        ready_url: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.ready_url = ready_url
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self._log_file: object | None = None
        self._tag = ""

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.popen.pid

    def start(self, *, ready_timeout: float = 30.0) -> ManagedProcess:
        if is_harness_argv(self.argv):
            check_harness_imports(self.name, env=self.env, cwd=self.cwd)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_file = log
        self._tag = f"{os.getpid()}-{id(self)}-{time.monotonic_ns()}"
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**self.env, PROCESS_TAG_ENV: self._tag},
                cwd=self.cwd,
                start_new_session=True,  # own process group: stop() takes the workers too
                preexec_fn=die_with_this_process(),  # a killed driver leaves no orphans
            )
        except OSError as exc:  # not installed, not executable, no such directory
            log.close()
            self._log_file = None
            raise ProcessStartError(
                f"{self.name} could not start: {self.argv[0]}: {exc.strerror or exc}"
            ) from None
        if self.ready_url is not None:
            self.wait_ready(timeout=ready_timeout)
        return self

    def wait_ready(self, *, timeout: float) -> None:
        assert self.popen is not None and self.ready_url is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.popen.poll()
            if code is not None:
                self.stop()
                raise ProcessStartError(
                    f"{self.name} exited with code {code} before it was ready; see {self.log_path}"
                    + self._last_log_line()
                )
            if http_ok(self.ready_url, timeout=1.0):
                return
            time.sleep(0.05)
        self.stop()
        raise ProcessStartError(
            f"{self.name} did not answer {self.ready_url} within {timeout:.0f} s; see {self.log_path}"
            + self._last_log_line()
        )

    def _last_log_line(self) -> str:
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return f" (last line: {lines[-1].strip()})" if lines else ""

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, *, timeout: float = 10.0) -> int | None:
        """SIGTERM the whole process group, then SIGKILL what is left after ``timeout`` seconds."""
        popen = self.popen
        code: int | None = None
        if popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGTERM)
            try:
                code = popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                code = None
            # Workers can outlive their master for a moment; clear the group either way.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
            if code is None:
                code = popen.wait(timeout=timeout)
            kill_tagged(self._tag)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        return code

    def __enter__(self) -> ManagedProcess:
        if self.popen is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def python_module_argv(module: str, *args: str) -> list[str]:
    """argv that runs ``python -m module`` with this interpreter (the project's .venv), isolated from the
    working directory: ``-P`` keeps it off ``sys.path`` (``-m`` puts it first), so a folder named
    ``mock_llm/`` or ``loadtests/`` in the user's repository cannot stand in for the harness's own."""
    return [sys.executable, "-P", "-m", module, *args]


def is_harness_argv(argv: Sequence[str]) -> bool:
    """Whether ``argv`` runs a module with this interpreter the way :func:`python_module_argv` does."""
    return list(argv[:3]) == [sys.executable, "-P", "-m"]


_PROBE = "import importlib.util as u, sys; print(*(u.find_spec(m).origin for m in sys.argv[1:]), sep='\\n')"
_checked: set[tuple[str, str, str]] = set()


def check_harness_imports(name: str, *, env: Mapping[str, str], cwd: Path | None) -> None:
    """Raise ProcessStartError when a child started this way would import a harness package from
    anywhere but the harness (a ``PYTHONPATH`` naming the user's repository, say). Once per setting."""
    key = (str(cwd or Path.cwd()), env.get("PYTHONPATH", ""), env.get("PYTHONHOME", ""))
    if key in _checked:
        return
    done = subprocess.run(
        [sys.executable, "-P", "-c", _PROBE, *HARNESS_PACKAGES],
        env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    found = done.stdout.splitlines()
    for package, origin in zip(HARNESS_PACKAGES, found, strict=False):
        expected = HARNESS_ROOT / package / "__init__.py"
        if Path(origin).resolve() != expected:
            raise ProcessStartError(
                f"{name}: {package} would be imported from {origin}, not from the harness "
                f"({expected.parent}); unset PYTHONPATH or remove that folder from it"
            )
    if done.returncode != 0 or len(found) != len(HARNESS_PACKAGES):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProcessStartError(f"{name}: the harness's packages do not import here ({last})")
    _checked.add(key)


def kill_tagged(tag: str) -> None:
    """SIGKILL every process whose environment carries ``tag``: what a child left behind outside its
    process group (a daemon that double-forked into a session of its own)."""
    if not tag:
        return
    needle = f"{PROCESS_TAG_ENV}={tag}\0".encode()
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:  # no /proc: only the process group is stopped
        return
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if needle in environ:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
