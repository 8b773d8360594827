"""Where a server's CPU goes, from a sampling profile: stacks in, CPU ms per request by component out.

Input: the collapsed stacks py-spy writes (``--format raw``: one line per distinct stack, root first, frames
joined by ``;``, then the count), recorded with ``--subprocesses --threads`` and without ``--idle``, so every
sample is one thread of one server process found in state R (running, or waiting for a core) at one round.

**How a sample is classified, and why.** By module path: a frame's module is the first component of the file
name py-spy prints (the path below the outermost package directory: ``starlette/routing.py`` -> ``starlette``,
``threading.py`` -> ``threading``), and each module belongs to one component (``MODULES``): ``server``
(gunicorn, uvicorn, granian, hypercorn and the WSGI/ASGI bridges), ``framework`` (Flask/Werkzeug,
FastAPI/Starlette, Quart, and Celery's machinery), ``validation`` (pydantic), ``sdk`` (anthropic, openai),
``http_client`` (httpx2/httpcore2 and the rest of the client stack), ``json`` (the standard library's and
the fast ones), ``app`` (this project's ``servers`` package, or the modules a caller names), ``runtime``
(imports, and threads of the interpreter's own with no owner on their stack), ``other`` (a module nobody
here knows). A sample goes to the **innermost frame whose module is owned** by a component: the code that
is running, or the nearest code on whose behalf it runs. Shared modules are **transparent**: the standard
library (but for ``json``), the protocol libraries both servers and clients use (h11, h2, wsproto,
websockets: hypercorn parses requests with h11, httpcore2 parses responses with it), the async glue (anyio,
sniffio) and gevent/greenlet. Their time is charged to the caller: ``socket.send`` under httpcore2 is the
HTTP client's, the asyncio loop under uvicorn the server's, ``logging`` under the app the app's. Why the
innermost owner and not the leaf: a leaf in ``selectors`` or ``re`` says nothing about who to change; why
not the outermost: every stack starts in the server, which would own everything. A stack with no owned
frame takes its transparent module's fallback (gevent's hub alone: the gevent worker's event loop,
``server``; a bare thread pool: ``runtime``); a frame inside ``importlib`` makes the sample ``runtime``
(import time, whatever was being imported); a thread with no Python frame at all is ``runtime``.

**The budget.** The kernel says exactly how much CPU each thread of the server used over the profiled
interval (``/proc/<pid>/task/<tid>/schedstat``, read at both ends); the profile says where each thread was
when it was sampled. So each thread's CPU is split over the components as its samples fell, and the
components sum to the CPU of every thread the profile covered. That sum must be within 10 % of psutil's
measure of the whole tree over the same interval (it is not when a busy process was never sampled: a
broker that is not Python, a worker py-spy missed; or when threads that did the work ended before the
interval did), and at least 90 % of the samples must be classified. The point's CPU per request
(psutil, its window) converts the seconds into milliseconds per request. Threads of a sampled process
that never show Python (granian's Rust runtime: its HTTP parsing and I/O) give no sample; their CPU is
``server`` (``native_ms`` says how much).

Why not samples x interval, the textbook estimate: py-spy keeps threads the kernel reports in state R,
"running or waiting for a core", and on this 2-core machine a sampler's rounds are not independent of the
server's state: it runs when a core is free, which is when fewer server threads are runnable. A plain
Python sampler reading ``/proc/<pid>/stat`` at random times found a busy process in R 19 % less often
than schedstat's run-plus-wait time implies, with the machine's load average at 3; py-spy did the same.
So the sampling is reported as a cross-check (``sampling_ratio``: rounds in R over the rounds the
kernel's R time implies; 1 when the rounds fall independently) and warned about, not used for the totals.

Limits a reader should know: without native unwinding, time in C code (pydantic-core, the json
accelerator, the GC) is charged to the Python frame that called it, so a garbage collection lands in the
component that allocated when it triggered. On a busy machine a thread woken by a socket waits for its
core in the frame that woke it, so the split leans toward the code right after I/O (the HTTP client's
reads, the server's accept and write); the entry warns when the server waited for a core for more than a
fifth of its runnable time.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

COMPONENTS = ("server", "framework", "validation", "sdk", "http_client", "json", "app", "runtime", "other")
NAMED = COMPONENTS[:-1]  # what "classified" means: every component but other
BUDGET_TOLERANCE = 0.10  # the components' sum within 10 % of the measured CPU per request
MIN_CLASSIFIED = 0.90  # and at least 90 % of the samples in a named component

_OWNED = {
    "server": "gunicorn uvicorn granian hypercorn asgiref a2wsgi uvloop httptools watchfiles",
    "framework": "flask werkzeug jinja2 markupsafe itsdangerous blinker click fastapi starlette quart "
    "flask_sock simple_websocket multipart python_multipart annotated_doc aiofiles celery kombu billiard "
    "vine amqp redis",
    "validation": "pydantic pydantic_core annotated_types typing_inspection email_validator",
    "sdk": "anthropic openai distro docstring_parser",
    "http_client": "httpx httpx2 httpcore httpcore2 certifi idna truststore urllib3 requests "
    "charset_normalizer brotli geventhttpclient",
    "json": "json orjson ujson simplejson jiter",
    "app": "servers",
}
MODULES: dict[str, str] = {m: comp for comp, names in _OWNED.items() for m in names.split()}

# Transparent modules: charged to their caller; their fallback only when no frame of the stack is owned.
_TRANSPARENT_FALLBACK = {
    "gevent": "server",
    "greenlet": "server",
    "h11": "http_client",
    "h2": "http_client",
    "hpack": "http_client",
    "hyperframe": "http_client",
    "priority": "http_client",
    "wsproto": "http_client",
    "websockets": "http_client",
    "anyio": "runtime",
    "sniffio": "runtime",
    "typing_extensions": "runtime",
}
_STDLIB = frozenset(sys.stdlib_module_names) - {"json"}
_IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")

_PROCESS = re.compile(r'^process (\d+):".*"$', re.DOTALL)
_THREAD = re.compile(r"^thread \((0x[0-9A-Fa-f]+|\d+)\)(?:: .*)?$")
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True, kw_only=True)
class Frame:
    name: str  # the function
    file: str  # as py-spy printed it (below the outermost package directory)
    line: int | None = None

    @property
    def module(self) -> str:
        """The top-level module (``starlette/routing.py`` -> ``starlette``), or a pseudo-file as it is."""
        if self.file.startswith("<") or not self.file:
            return self.file
        head = self.file.replace("\\", "/").lstrip("/").split("/", 1)[0]
        return head.removesuffix(".py").removesuffix(".pyx")


@dataclass(frozen=True, kw_only=True)
class Stack:
    """One distinct stack of the profile and how many samples had it (root first)."""

    frames: tuple[Frame, ...]
    count: int
    pid: int | None = None  # the process it was sampled in (``--subprocesses``)
    tid: str | None = None  # its thread (``--threads``)


def parse_collapsed(text: str) -> list[Stack]:
    """py-spy's raw format: ``process P:"cmd";thread (T);f (file:line);...;leaf (file:line) COUNT``."""
    stacks = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            raise ValueError(f"not a collapsed-stack line: {line[:120]!r}")
        stacks.append(_stack(body.split(";"), int(count)))
    return stacks


def _stack(parts: Sequence[str], count: int) -> Stack:
    pid: int | None = None
    tid: str | None = None
    frames = []
    for part in parts:
        process = _PROCESS.match(part)
        if process is not None and not frames and tid is None:
            pid = int(process.group(1))  # the chain runs from the ancestors to the process itself
            continue
        thread = _THREAD.match(part)
        if thread is not None and not frames and tid is None:
            tid = thread.group(1)
            continue
        frames.append(parse_frame(part))
    return Stack(frames=tuple(frames), count=count, pid=pid, tid=tid)


def parse_frame(text: str) -> Frame:
    match = _FRAME.match(text)
    if match is None:  # a frame with no file (py-spy prints the bare name)
        return Frame(name=text, file="")
    line = match.group("line")
    return Frame(name=match.group("name"), file=match.group("file"), line=int(line) if line else None)


def component_of_module(module: str, app_modules: Iterable[str] = ()) -> str | None:
    """The component that owns ``module``; None for a transparent one (charged to its caller)."""
    if module in app_modules:
        return "app"
    if module in MODULES:
        return MODULES[module]
    if module in _TRANSPARENT_FALLBACK or module in _STDLIB or module.startswith("<") or not module:
        return None
    return "other"


def classify(frames: Sequence[Frame], app_modules: Iterable[str] = ()) -> str:
    """The component one sample belongs to (``frames`` root first): see the module's docstring."""
    apps = frozenset(app_modules)
    if any(f.file in _IMPORT_FILES for f in frames):
        return "runtime"
    for frame in reversed(frames):
        owner = component_of_module(frame.module, apps)
        if owner is not None:
            return owner
    for frame in reversed(frames):
        fallback = _TRANSPARENT_FALLBACK.get(frame.module)
        if fallback is not None:
            return fallback
    return "runtime"


@dataclass(frozen=True, kw_only=True)
class ThreadTime:
    """One thread of a server process over the profiled interval, as the kernel counted it (schedstat)."""

    pid: int
    tid: str  # as py-spy prints it with --threads: the OS thread id
    on_cpu_s: float
    run_queue_s: float  # runnable (state R) but waiting for a core


@dataclass(frozen=True, kw_only=True)
class Budget:
    """The profile's samples by component and by process, and what they stand for per request."""

    samples: int
    by_component: dict[str, int]
    by_process: dict[int, int]
    components_ms: dict[str, float]  # CPU ms per request (the point's window), split as the samples fell
    native_ms: float  # of components_ms["server"]: threads of sampled processes that never showed Python
    classified_share: float
    cpu_ms_per_request: float | None  # psutil over the window (the point's)
    budget_error: float | None  # the components' CPU / psutil's over the same interval - 1
    sampling_ratio: float | None  # rounds py-spy found a thread in R / rounds the kernel's R time implies
    problems: list[str] = field(default_factory=list)  # why the budget does not add up, if it does not

    @property
    def adds_up(self) -> bool:
        return not self.problems


Key = tuple[int, str]  # (pid, tid)


def _per_thread(stacks: Sequence[Stack], apps: frozenset[str]) -> dict[Key, Counter[str]]:
    """Samples per thread and component."""
    out: dict[Key, Counter[str]] = {}
    for stack in stacks:
        key = (stack.pid if stack.pid is not None else -1, stack.tid or "")
        out.setdefault(key, Counter())[classify(stack.frames, apps)] += stack.count
    return out


def _split(counts: Counter[str], cpu_s: float, into: dict[str, float]) -> None:
    total = sum(counts.values())
    for component, n in counts.items():
        into[component] += cpu_s * n / total


def _cpu_by_component(
    samples: Mapping[Key, Counter[str]], threads: Sequence[ThreadTime], tick_s: float
) -> tuple[dict[str, float], float]:
    """Each thread's CPU (the kernel's) split as its samples fell; per process, the threads py-spy never
    named (no Python, or an id it could not read) pool their CPU over its samples it could not match, or,
    with none, count as native server threads. A process the kernel figures miss: one round per sample."""
    seconds = {c: 0.0 for c in COMPONENTS}
    native = 0.0
    cpu = {(t.pid, t.tid): t.on_cpu_s for t in threads}
    for pid in sorted({pid for pid, _ in samples}):
        sampled = {k for k in samples if k[0] == pid}
        known = {k for k in cpu if k[0] == pid}
        if not known:
            for key in sampled:
                _split(samples[key], sum(samples[key].values()) * tick_s, seconds)
            continue
        for key in sampled & known:
            _split(samples[key], cpu[key], seconds)
        pool = sum((samples[k] for k in sampled - known), Counter())
        pool_cpu = sum(cpu[k] for k in known - sampled)
        if pool:
            _split(pool, pool_cpu, seconds)
        else:
            native += pool_cpu
    seconds["server"] += native
    return seconds, native


def _sampling_ratio(
    samples: Mapping[Key, Counter[str]], threads: Sequence[ThreadTime], *, ticks: int, elapsed_s: float
) -> float | None:
    """Rounds in which py-spy found the matched threads in state R, over the rounds their R time (on a
    CPU or waiting for one) implies: 1 when its rounds fell independently of what the server was doing."""
    expected = observed = 0.0
    for t in threads:
        key = (t.pid, t.tid)
        if key in samples and elapsed_s > 0:
            expected += (t.on_cpu_s + t.run_queue_s) / elapsed_s * ticks
            observed += sum(samples[key].values())
    return round(observed / expected, 4) if expected > 0 else None


def budget(
    stacks: Sequence[Stack],
    *,
    ticks: int,
    elapsed_s: float,
    interval_cpu_s: float,
    cpu_ms_per_request: float | None,
    threads: Sequence[ThreadTime] = (),
    app_modules: Iterable[str] = (),
) -> Budget:
    """Samples and the kernel's per-thread CPU -> CPU ms per request by component, and the checks: the
    components' CPU within BUDGET_TOLERANCE of ``interval_cpu_s`` (psutil, the same interval, the whole
    tree), MIN_CLASSIFIED of the samples named. ``cpu_ms_per_request`` (the point's window) sets the
    scale: a component's ms per request = its seconds x cpu_ms_per_request / interval_cpu_s."""
    samples = _per_thread(stacks, frozenset(app_modules))
    by_component: Counter[str] = Counter({c: 0 for c in COMPONENTS})
    by_process: Counter[int] = Counter()
    for (pid, _), counts in samples.items():
        by_component.update(counts)
        by_process[pid] += sum(counts.values())
    by_process.pop(-1, None)
    seconds, native_s = _cpu_by_component(samples, threads, elapsed_s / ticks if ticks > 0 else 0.0)
    total = sum(by_component.values())
    to_ms = (cpu_ms_per_request or 0.0) / interval_cpu_s if interval_cpu_s > 0 else 0.0
    classified = 1.0 - by_component["other"] / total if total else 0.0
    error = sum(seconds.values()) / interval_cpu_s - 1.0 if interval_cpu_s > 0 and total else None
    return Budget(
        samples=total,
        by_component=dict(by_component),
        by_process=dict(by_process),
        components_ms={c: round(seconds[c] * to_ms, 4) for c in COMPONENTS},
        native_ms=round(native_s * to_ms, 4),
        classified_share=round(classified, 4),
        cpu_ms_per_request=cpu_ms_per_request,
        budget_error=None if error is None else round(error, 4),
        sampling_ratio=_sampling_ratio(samples, threads, ticks=ticks, elapsed_s=elapsed_s),
        problems=_problems(
            total, classified, error, sum(seconds.values()), interval_cpu_s, cpu_ms_per_request
        ),
    )


def _problems(
    total: int,
    classified: float,
    error: float | None,
    profiled_s: float,
    measured_s: float,
    cpu_ms_per_request: float | None,
) -> list[str]:
    if not total:
        return ["the profile holds no sample of a running thread"]
    problems = []
    if not cpu_ms_per_request:
        problems.append("no request completed in the window, so there is no CPU per request to split")
    if error is None:
        problems.append(
            "psutil measured no server CPU over the profiled interval to check the profile against"
        )
    elif abs(error) > BUDGET_TOLERANCE:
        problems.append(
            f"the components account for {profiled_s:.2f} s of CPU, {abs(error):.0%} "
            f"{'more' if error > 0 else 'less'} than the {measured_s:.2f} s psutil measured for the whole "
            f"tree over the same interval (allowed {BUDGET_TOLERANCE:.0%})"
        )
    if classified < MIN_CLASSIFIED:
        problems.append(f"{classified:.0%} of the samples classified (at least {MIN_CLASSIFIED:.0%} needed)")
    return problems


def top_unclassified(
    stacks: Sequence[Stack], *, limit: int = 5, app_modules: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The modules behind the ``other`` samples, most samples first: what MODULES does not know yet."""
    apps = frozenset(app_modules)
    modules: Counter[str] = Counter()
    for stack in stacks:
        owners = [f.module for f in stack.frames if component_of_module(f.module, apps) == "other"]
        if owners and classify(stack.frames, apps) == "other":
            modules[owners[-1]] += stack.count
    return [{"module": m, "samples": n} for m, n in modules.most_common(limit)]


UNSEEN_SHARE = 0.05  # a process with more of the tree's CPU than this and no sample was not profiled


def unseen_processes(processes: Sequence[Mapping[str, Any]], by_process: Mapping[int, int]) -> list[str]:
    """Processes of the server tree that used CPU over the profiled interval but gave no sample (a worker
    py-spy did not attach to, or one that is not Python, such as a broker)."""
    total = sum(float(p["cpu_s"]) for p in processes)
    return [
        f"process {p['pid']} ({p['name']}) used {float(p['cpu_s']):.2f} s of CPU and was never sampled"
        for p in processes
        if total > 0 and float(p["cpu_s"]) > UNSEEN_SHARE * total and not by_process.get(int(p["pid"]))
    ]
