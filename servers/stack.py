"""The child processes of one `python -m servers run`: a server, and for the Celery variants a broker and a
worker before it. Each child dies with `run` (``PR_SET_PDEATHSIG``); a stop sends each child SIGTERM in turn,
the last started first, waits for it, and in the end kills whatever is left of their process trees, so
nothing outlives `run`.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from servers.lifetime import die_with_this_process

POLL_S = 0.1
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the directory holding this servers package
STOP_TIMEOUT_S = 8.0  # all children together; a driver (ManagedProcess) gives `run` 10 s before SIGKILL


@dataclass(frozen=True, kw_only=True)
class Exited:
    name: str
    code: int


class Stack:
    """Children stop in reverse order of start, the last started first: a Celery variant's server, then
    its worker (which hands unstarted jobs back to the broker), then the broker."""

    def __init__(self) -> None:
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = False
        self._trees_at_stop: list[psutil.Process] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        death_signal: signal.Signals = signal.SIGTERM,
    ) -> subprocess.Popen[bytes]:
        """``death_signal``: what the child gets if `run` dies without stopping it (PR_SET_PDEATHSIG)."""
        # In the directory this package was imported from: gunicorn, uvicorn, granian and `python -m` put
        # their working directory first on the import path, where a servers/ folder of whatever directory
        # `run` was started in would stand in for this one.
        child = subprocess.Popen(
            list(argv), env=dict(env), cwd=PACKAGE_ROOT, preexec_fn=die_with_this_process(death_signal)
        )
        self.adopt(name, child)
        return child

    def adopt(self, name: str, child: subprocess.Popen[bytes]) -> None:
        self._children.append((name, child))
        if self.stopping:  # a signal arrived while the child was being started
            child.send_signal(signal.SIGTERM)

    def request_stop(self) -> None:
        """From a signal handler: the last started child gets SIGTERM at once; :meth:`stop_all` stops the
        others in turn."""
        self.stopping = True
        self._trees_at_stop = self._live_trees()  # what stop_all must see gone, even if orphaned first
        for _name, child in reversed(self._children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                return

    def first_exit(self) -> Exited | None:
        """Block until a child exits, or None once a stop is requested."""
        while True:
            if self.stopping:
                return None
            for name, child in self._children:
                code = child.poll()
                if code is not None:
                    return Exited(name=name, code=code)
            time.sleep(POLL_S)

    def stop_all(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM each child still running and wait for it, the last started first, all within
        ``timeout_s``; then SIGKILL what is left of any child's tree (a worker process its parent did
        not take down)."""
        trees = self._live_trees()  # before the stop: a parent that exits first orphans its workers
        deadline = time.monotonic() + timeout_s
        for _name, child in reversed(self._children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self._trees_at_stop + trees + self._live_trees():
            # psutil checks the process is still the one it found (a reused pid is left alone).
            with contextlib.suppress(psutil.Error):
                process.kill()
        for _name, child in self._children:
            child.wait()

    def _live_trees(self) -> list[psutil.Process]:
        # Only children not yet reaped: a reaped child's pid may already belong to another process.
        return [p for _name, child in self._children if child.returncode is None for p in _tree(child.pid)]


def _tree(pid: int) -> list[psutil.Process]:
    """The process and its descendants, as psutil handles."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
