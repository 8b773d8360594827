"""Memory of a server's whole process tree over a window, sampled with psutil in a background thread.

Every sample walks the tree anew (master, workers, and any process a worker starts), so a worker that
exits or is born during the window is counted while it lives. RSS counts shared pages once per process
(a forked worker's copy-on-write pages appear in every worker); USS (pages only that process maps) is what
one more worker or one more call really adds, so both are kept. PSS, the fair share of the shared pages,
is recorded beside them. The sampler's own CPU time is reported so it can be kept out of "other load".
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import psutil

MB = 1024.0 * 1024.0
SAMPLE_INTERVAL_S = 0.5  # at least once a second, as the result format promises


@dataclass(frozen=True, kw_only=True)
class ProcessMemory:
    pid: int
    leaf: bool  # no children of its own: a worker (or the single server process), not a master
    rss_mb: float
    uss_mb: float
    pss_mb: float


@dataclass(frozen=True, kw_only=True)
class TreeSample:
    t: float
    processes: tuple[ProcessMemory, ...]

    @property
    def rss_mb(self) -> float:
        return sum(p.rss_mb for p in self.processes)

    @property
    def uss_mb(self) -> float:
        return sum(p.uss_mb for p in self.processes)

    @property
    def pss_mb(self) -> float:
        return sum(p.pss_mb for p in self.processes)


def sample_tree(root_pid: int) -> TreeSample:
    """One reading of the tree under ``root_pid``; processes that vanish mid-walk are skipped."""
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return TreeSample(t=time.time(), processes=())
    parents: set[int] = set()
    readings: list[tuple[int, float, float, float]] = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            info = proc.memory_full_info()
            parents.add(proc.ppid())
            readings.append((proc.pid, info.rss / MB, info.uss / MB, getattr(info, "pss", info.uss) / MB))
    return TreeSample(
        t=time.time(),
        processes=tuple(
            ProcessMemory(pid=pid, leaf=pid not in parents, rss_mb=rss, uss_mb=uss, pss_mb=pss)
            for pid, rss, uss, pss in readings
        ),
    )


@dataclass(kw_only=True)
class MemoryWindow:
    """Peak figures of the tree over the window, and the sample at which the USS peaked."""

    samples: int
    interval_s: float
    rss_peak_mb: float
    uss_peak_mb: float
    pss_peak_mb: float
    processes_max: int
    at_uss_peak: TreeSample
    sampler_cpu_s: float

    def to_extra(self) -> dict[str, object]:
        leaves = sorted(p.uss_mb for p in self.at_uss_peak.processes if p.leaf)
        leaf_rss = sorted(p.rss_mb for p in self.at_uss_peak.processes if p.leaf)
        return {
            "source": "psutil memory_full_info over the server's process tree, summed per sample",
            "samples": self.samples,
            "interval_s": self.interval_s,
            "processes_max": self.processes_max,
            "pss_peak_mb": round(self.pss_peak_mb, 2),
            "processes_at_uss_peak": len(self.at_uss_peak.processes),
            # Workers (processes without children) at the USS peak: the marginal cost of one more worker.
            "leaf_uss_mb": [round(v, 2) for v in leaves],
            "leaf_rss_mb": [round(v, 2) for v in leaf_rss],
            "sampler_cpu_s": round(self.sampler_cpu_s, 3),
        }


@dataclass(kw_only=True)
class MemorySampler:
    """``start()`` at the window's start, ``stop()`` at its end; samples every ``interval_s`` between."""

    root_pid: int
    interval_s: float = SAMPLE_INTERVAL_S
    _samples: list[TreeSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu_s: float = 0.0

    def start(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        began = time.thread_time()
        next_at = time.monotonic()
        while True:
            sample = sample_tree(self.root_pid)
            if sample.processes:
                self._samples.append(sample)
            next_at += self.interval_s
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                break
        final = sample_tree(self.root_pid)  # the window's last moment too
        if final.processes:
            self._samples.append(final)
        self._cpu_s = time.thread_time() - began

    def stop(self) -> MemoryWindow | None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
        return summarise(self._samples, interval_s=self.interval_s, sampler_cpu_s=self._cpu_s)


def summarise(samples: list[TreeSample], *, interval_s: float, sampler_cpu_s: float) -> MemoryWindow | None:
    if not samples:
        return None
    peak = max(samples, key=lambda s: s.uss_mb)
    return MemoryWindow(
        samples=len(samples),
        interval_s=interval_s,
        rss_peak_mb=max(s.rss_mb for s in samples),
        uss_peak_mb=peak.uss_mb,
        pss_peak_mb=max(s.pss_mb for s in samples),
        processes_max=max(len(s.processes) for s in samples),
        at_uss_peak=peak,
        sampler_cpu_s=sampler_cpu_s,
    )
