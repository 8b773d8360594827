"""A sampling profiler on a server's whole process tree for a measured window: py-spy, started before the
window and ending after it, with what it cost and what the kernel measured over the same interval.

py-spy (a wheel, pinned in constraints.txt) reads a running CPython's stacks from outside the process, so
the servers run unchanged. ``record --pid ROOT --subprocesses`` samples the root and every descendant,
including workers born while it runs (it looks for new children every 0.1 s), so every worker of a
multi-process variant is seen; ``--threads`` puts each sample's thread, and ``--subprocesses`` its process,
at the root of its stack; without ``--idle`` only threads the OS reports in state R are kept (running, or
waiting for a core: schedstat, read per thread at both ends, says which share was which).
``--nonblocking`` reads the stacks without pausing the server (the default ptrace stop would add its own
latency to every request; a stack read while it changes is counted as an error, not guessed). It runs for
``--duration`` (the window, rounded up, and a margin), then writes its file (``--format raw``: collapsed
stacks). Attaching needs ptrace: :func:`check_attach` tries it on a child of ours first, so a machine that
forbids it fails in one line before anything is measured.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from loadtests.driver import cpu as cpu_sampling
from loadtests.errors import UserError
from servers.lifetime import die_with_this_process

READY_LINE = "Sampling process"  # py-spy prints it once its sampler runs
_SUMMARY = re.compile(r"Samples: (\d+) Errors: (\d+)")
_PROCESS_FRAME = re.compile(r'(process \d+:")([^"]*)(")')
_ABSOLUTE = re.compile(r"(?<![\w.])/(?:[^\s/\"]+/)+")
ATTACH_HINT = "it needs ptrace: run as root, or grant CAP_SYS_PTRACE, or set kernel.yama.ptrace_scope to 0"


class ProfilerError(UserError):
    """py-spy is missing, cannot attach here, or did not start: one line, exit 2."""


def pyspy_executable() -> str:
    """``BENCH_PYSPY`` when set, else the py-spy beside this interpreter (the project's virtualenv), else
    the one on PATH."""
    chosen = os.environ.get("BENCH_PYSPY", "").strip()
    if chosen:
        return chosen
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise ProfilerError("py-spy is not installed; run `make install` (it is pinned in constraints.txt)")
    return found


def pyspy_version() -> str:
    done = subprocess.run([pyspy_executable(), "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip().removeprefix("py-spy ").strip() or "unknown"


def check_attach(*, timeout_s: float = 30.0) -> str:
    """py-spy's version once it has read the stacks of a Python child of ours; ProfilerError when it
    cannot (no ptrace, no py-spy), with its own reason."""
    exe = pyspy_executable()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; print('up', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        preexec_fn=die_with_this_process(),
    )  # fmt: skip
    try:
        assert child.stdout is not None
        child.stdout.readline()  # the interpreter is initialised: py-spy can find it
        done = subprocess.run(
            [exe, "dump", "--pid", str(child.pid)], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise ProfilerError(f"py-spy dump did not answer within {timeout_s:.0f} s; {ATTACH_HINT}") from None
    except OSError as exc:
        raise ProfilerError(f"cannot run py-spy ({exe}: {exc.strerror or exc})") from None
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    if done.returncode != 0:
        said = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        reason = said[-1] if said else f"exit code {done.returncode}"
        raise ProfilerError(f"py-spy cannot attach to a Python process here ({reason}); {ATTACH_HINT}")
    return pyspy_version()


@dataclass(frozen=True, kw_only=True)
class ProfilerSettings:
    rate_hz: int = 100
    nonblocking: bool = True
    ready_timeout_s: float = 30.0
    margin_s: int = 1  # py-spy runs this much longer than the window, so it covers all of it

    def seconds(self, window_s: float) -> int:
        return math.ceil(window_s) + self.margin_s

    def argv(self, exe: str, pid: int, out: Path, seconds: int) -> list[str]:
        return [
            exe, "record", "--pid", str(pid), "--subprocesses", "--threads", "--format", "raw",
            "--rate", str(self.rate_hz), "--duration", str(seconds), "--output", str(out),
            *(["--nonblocking"] if self.nonblocking else []),
        ]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ProfileRecord:
    """What one profiled interval gave: the raw file and the figures to read it by."""

    raw_file: Path
    rate_hz: int
    nonblocking: bool
    ticks: int  # sampling rounds: --duration x --rate, exactly (py-spy counts them, late or not)
    elapsed_s: float  # from py-spy's first tick (its ready line) to its exit
    started_at: float  # wall clock
    ended_at: float
    pyspy_samples: int | None  # as py-spy counted them (threads found running)
    pyspy_errors: int | None  # stacks it could not read (changing under a non-blocking read)
    late_warnings: int  # "behind in sampling" lines: it fell more than 1 s behind its rate
    ended_early: bool  # the server's processes exited before the last tick: ``ticks`` is an overcount
    profiler_cpu_s: float  # py-spy's own CPU over the interval
    server_cpu_s: float  # the server tree's CPU over the same interval (psutil)
    processes: list[dict[str, Any]] = field(default_factory=list)  # pid, name, cpu_s, run_queue_s
    threads: list[dict[str, Any]] = field(default_factory=list)  # pid, tid, on_cpu_s, run_queue_s


class TreeProfiler:
    """``with TreeProfiler(...).attached(pid, window_s):`` the profiled interval; then :attr:`record`.

    py-spy is told to run ``--duration`` whole seconds (the window, rounded up, plus a margin), so the
    number of sampling rounds is exact whatever the machine's load: a late py-spy catches up, or takes
    longer, but takes every round; the interval they cover is timed from its ready line to its exit."""

    def __init__(self, settings: ProfilerSettings, *, raw_file: Path, log_file: Path) -> None:
        self.settings = settings
        self.raw_file = raw_file
        self.log_file = log_file
        self.record: ProfileRecord | None = None
        self._lines: list[str] = []
        self._ready = threading.Event()

    @contextlib.contextmanager
    def attached(self, server_pid: int, window_s: float) -> Iterator[None]:
        self.raw_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        seconds = self.settings.seconds(window_s)
        argv = self.settings.argv(pyspy_executable(), server_pid, self.raw_file, seconds)
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True, preexec_fn=die_with_this_process(),
        )  # fmt: skip
        reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
        reader.start()
        try:
            self._wait_ready(proc)
            start = _Edge.take(server_pid, proc.pid)
            yield
            own_s = self._wait_exit(proc, timeout_s=3 * seconds + 60)
            end = _Edge.take(server_pid, None, profiler_cpu_s=own_s)
            reader.join(timeout=30)
            self.record = self._record(start, end, ticks=seconds * self.settings.rate_hz)
        finally:
            _kill(proc)

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with proc.stdout, open(self.log_file, "a") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                self._lines.append(line.rstrip("\n"))
                if READY_LINE in line:
                    self._ready.set()

    def _wait_ready(self, proc: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while not self._ready.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                said = [line for line in self._lines if line.strip()]
                reason = said[-1].strip() if said else f"exit code {proc.poll()}"
                raise ProfilerError(
                    f"py-spy did not start sampling the server ({reason}); see {self.log_file}"
                )

    def _wait_exit(self, proc: subprocess.Popen[str], *, timeout_s: float) -> float:
        """Reap py-spy once it has taken its last round and written its file; its CPU from the kernel's
        account of the reaped child (psutil cannot read a process that has exited)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = code = os.waitstatus_to_exitcode(status)
                if code != 0 or not self.raw_file.exists():
                    raise ProfilerError(
                        f"py-spy exited with code {code} without a profile; see {self.log_file}"
                    )
                return usage.ru_utime + usage.ru_stime
            time.sleep(0.01)
        raise ProfilerError(f"py-spy did not finish within {timeout_s:.0f} s; see {self.log_file}")

    def _record(self, start: _Edge, end: _Edge, *, ticks: int) -> ProfileRecord:
        summary = next((m for m in map(_SUMMARY.search, self._lines) if m), None)
        sanitise_raw(self.raw_file)
        return ProfileRecord(
            raw_file=self.raw_file,
            rate_hz=self.settings.rate_hz,
            nonblocking=self.settings.nonblocking,
            ticks=ticks,
            elapsed_s=round(end.mono - start.mono, 4),
            started_at=start.wall,
            ended_at=end.wall,
            pyspy_samples=int(summary.group(1)) if summary else None,
            pyspy_errors=int(summary.group(2)) if summary else None,
            late_warnings=sum("behind in sampling" in line for line in self._lines),
            ended_early=any("process exited" in line for line in self._lines),
            profiler_cpu_s=round(max(0.0, end.profiler_cpu_s - start.profiler_cpu_s), 4),
            server_cpu_s=round(cpu_sampling.group_seconds(start.cpu, end.cpu, "server"), 4),
            processes=_processes(start, end),
            threads=_threads(start, end),
        )


@dataclass(frozen=True, kw_only=True)
class _Edge:
    """One end of the profiled interval: the clocks, the server tree's CPU per process (psutil) and per
    thread the kernel's schedstat (seconds on a CPU, seconds waiting in a run queue), py-spy's CPU."""

    mono: float
    wall: float
    cpu: cpu_sampling.CpuSnapshot
    sched: dict[tuple[int, str], tuple[float, float]]  # (pid, tid) -> (on a CPU, in a run queue)
    names: dict[int, str]
    profiler_cpu_s: float

    @classmethod
    def take(cls, server_pid: int, profiler_pid: int | None, *, profiler_cpu_s: float = 0.0) -> _Edge:
        mono, wall = time.monotonic(), time.time()
        snap = cpu_sampling.snapshot({"server": [server_pid]}, trees=("server",))
        names: dict[int, str] = {}
        sched: dict[tuple[int, str], tuple[float, float]] = {}
        for pid in snap["server"]:
            sched.update(schedstat(pid))
            with contextlib.suppress(psutil.Error):
                names[pid] = psutil.Process(pid).name()
        if profiler_pid is not None:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(profiler_pid).cpu_times()
                profiler_cpu_s = times.user + times.system
        return cls(mono=mono, wall=wall, cpu=snap, sched=sched, names=names, profiler_cpu_s=profiler_cpu_s)


def schedstat(pid: int) -> dict[tuple[int, str], tuple[float, float]]:
    """Per live thread of ``pid``: seconds on a CPU and seconds runnable but waiting for one (the
    kernel's schedstat; a thread py-spy finds in state R may be doing either)."""
    out = {}
    for path in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = path.read_text().split()
            out[(pid, path.parent.name)] = (int(fields[0]) / 1e9, int(fields[1]) / 1e9)
    return out


def _threads(start: _Edge, end: _Edge) -> list[dict[str, Any]]:
    """Each thread alive at the interval's end, its time on a CPU and in a run queue over the interval
    (a thread born inside it counts from zero)."""
    out = []
    for (pid, tid), (run1, wait1) in sorted(end.sched.items()):
        run0, wait0 = start.sched.get((pid, tid), (0.0, 0.0))
        out.append({"pid": pid, "tid": tid, "on_cpu_s": round(max(0.0, run1 - run0), 6),
                    "run_queue_s": round(max(0.0, wait1 - wait0), 6)})  # fmt: skip
    return out


def _processes(start: _Edge, end: _Edge) -> list[dict[str, Any]]:
    """Each process of the tree at the interval's end: its CPU over the interval (psutil) and its threads'
    time waiting for a core (schedstat)."""
    before = start.cpu.get("server", {})
    threads = _threads(start, end)
    return [
        {
            "pid": pid,
            "name": end.names.get(pid) or start.names.get(pid) or "?",
            "cpu_s": round(max(0.0, cpu - before.get(pid, 0.0)), 4),
            "run_queue_s": round(sum(t["run_queue_s"] for t in threads if t["pid"] == pid), 4),
        }
        for pid, cpu in sorted(end.cpu.get("server", {}).items())
    ]


def sanitise_raw(path: Path) -> None:
    """No machine paths in a run directory: a process frame's command line keeps each program's base name
    (``/x/.venv/bin/python -m servers`` -> ``python -m servers``)."""
    text = path.read_text(errors="replace")

    def short(match: re.Match[str]) -> str:
        return match.group(1) + _ABSOLUTE.sub("", match.group(2)) + match.group(3)

    path.write_text(_PROCESS_FRAME.sub(short, text))


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
