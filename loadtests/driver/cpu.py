"""CPU time of the processes in a measurement, sampled with psutil at the window's edges."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import psutil

CpuSnapshot = dict[str, dict[int, float]]  # group -> pid -> user+system seconds


def _tree(pid: int, *, recursive: bool) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return []
    if not recursive:
        return [root]
    with contextlib.suppress(psutil.NoSuchProcess):
        return [root, *root.children(recursive=True)]
    return [root]


def snapshot(groups: Mapping[str, Sequence[int]], *, trees: Sequence[str] = ()) -> CpuSnapshot:
    """CPU seconds per process. Groups named in ``trees`` include every descendant (a server's workers)."""
    out: CpuSnapshot = {}
    for group, pids in groups.items():
        seen: dict[int, float] = {}
        for pid in pids:
            for proc in _tree(pid, recursive=group in trees):
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    times = proc.cpu_times()
                    seen[proc.pid] = times.user + times.system
        out[group] = seen
    return out


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, everything but idle and iowait)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def per_process_percent(
    before: CpuSnapshot, after: CpuSnapshot, seconds: float
) -> dict[str, dict[int, float]]:
    """Percent of one core each process used between the snapshots (processes present in both)."""
    result: dict[str, dict[int, float]] = {}
    for group, now in after.items():
        then = before.get(group, {})
        # A process born during the window (a restarted worker) counts from zero.
        result[group] = {
            pid: max(0.0, (cpu - then.get(pid, 0.0))) / seconds * 100.0 for pid, cpu in now.items()
        }
    return result


def group_seconds(before: CpuSnapshot, after: CpuSnapshot, group: str) -> float:
    then = before.get(group, {})
    return sum(max(0.0, cpu - then.get(pid, 0.0)) for pid, cpu in after.get(group, {}).items())
