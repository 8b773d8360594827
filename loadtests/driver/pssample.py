"""An independent reading of a process tree's memory: ``ps`` listing the tree every 0.5 s, beside psutil's
sampling in the point runner (the memory benchmark compares the two)."""

from __future__ import annotations

import subprocess
import threading
import time


def ps_tree_rss_mb(root: int) -> float:
    """RSS of ``root`` and every descendant, from one ``ps`` listing (KiB -> MB)."""
    listing = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid=,rss="], capture_output=True, text=True, check=True
    )
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for line in listing.stdout.splitlines():
        pid, ppid, kib = (int(v) for v in line.split())
        children.setdefault(ppid, []).append(pid)
        rss[pid] = kib
    todo, total = [root], 0
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 1024.0


class PsSampler:
    def __init__(self, root: int, interval_s: float = 0.5) -> None:
        self.root = root
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append((time.time(), ps_tree_rss_mb(self.root)))

    def __enter__(self) -> PsSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)

    def peak(self, start: float, end: float) -> float | None:
        inside = [mb for t, mb in self.samples if start <= t <= end]
        return max(inside) if inside else None
