"""Where a server's CPU goes, from a sampling profile: stacks in, CPU ms per request by component out.

Input: the collapsed stacks py-spy writes (``--format raw``: one line per distinct stack, root first, frames
joined by ``;``, then the count), recorded with ``--subprocesses --threads`` and without ``--idle``, so every
sample is one thread of one server process found running (the OS said ``R``) at one tick.

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

Limits a reader should know: without native unwinding, time in C code (pydantic-core, the json
accelerator, the GC) is charged to the Python frame that called it, so a garbage collection lands in the
component that allocated when it triggered; CPU in threads that never run Python (none in the
pure-Python servers) is not sampled, and shows as the gap between the components' sum and the measured CPU.

**The budget.** With ``rate`` ticks a second over ``elapsed`` seconds, each sample stands for 1 / rate s of
a thread's time in state R, so the profile's own estimate of the server's CPU is samples / (rate x
elapsed) cores, independent of psutil: which is why the two must agree (within 10 %) for the budget to
count. One correction, measured, not assumed: the kernel's R is "running or waiting in a run queue for a
core", and on a busy 2-core machine a server thread may wait there for a good share of its R time. The
kernel counts both per thread (``/proc/<pid>/task/<tid>/schedstat``: time on a CPU, time in a run queue),
so a sample of a process stands for its on-CPU share of R over the same interval (``on_cpu_share``), 1 /
rate s on an idle machine. The check then says whether the profile saw all of the server's running time.
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
class Budget:
    """The profile's samples by component and by process, and what they stand for per request."""

    samples: int
    by_component: dict[str, int]
    by_process: dict[int, int]
    profiled_cores: float  # samples / (rate x elapsed): the profile's own estimate of the CPU used
    components_ms: dict[str, float]  # CPU ms per request, the profile's estimate, scaled to the window
    classified_share: float
    cpu_ms_per_request: float | None  # psutil over the window (the point's)
    budget_error: float | None  # sum(components) / cpu_ms_per_request - 1
    problems: list[str] = field(default_factory=list)  # why the budget does not add up, if it does not

    @property
    def adds_up(self) -> bool:
        return not self.problems


def budget(
    stacks: Sequence[Stack],
    *,
    rate_hz: float,
    elapsed_s: float,
    window_s: float,
    completed: int,
    cpu_ms_per_request: float | None,
    app_modules: Iterable[str] = (),
    on_cpu_share: Mapping[int, float] | None = None,
) -> Budget:
    """Samples -> CPU ms per request by component, and the checks: the sum within BUDGET_TOLERANCE of
    psutil's figure, MIN_CLASSIFIED of the samples named. A sample of process ``pid`` stands for
    ``on_cpu_share[pid]`` / rate seconds of CPU (1 / rate when not given)."""
    apps = frozenset(app_modules)
    shares = on_cpu_share or {}
    by_component: Counter[str] = Counter({c: 0 for c in COMPONENTS})
    weighted: dict[str, float] = {c: 0.0 for c in COMPONENTS}
    by_process: Counter[int] = Counter()
    for stack in stacks:
        component = classify(stack.frames, apps)
        by_component[component] += stack.count
        weighted[component] += stack.count * shares.get(stack.pid if stack.pid is not None else -1, 1.0)
        if stack.pid is not None:
            by_process[stack.pid] += stack.count
    total = sum(by_component.values())
    ticks = rate_hz * elapsed_s
    cores = sum(weighted.values()) / ticks if ticks > 0 else 0.0
    per_sample_ms = window_s * 1000.0 / (ticks * completed) if completed and ticks > 0 else 0.0
    components_ms = {c: round(weighted[c] * per_sample_ms, 4) for c in COMPONENTS}
    profiled_ms = sum(weighted.values()) * per_sample_ms
    classified = 1.0 - by_component["other"] / total if total else 0.0
    error = profiled_ms / cpu_ms_per_request - 1.0 if cpu_ms_per_request and total and completed else None
    return Budget(
        samples=total,
        by_component=dict(by_component),
        by_process=dict(by_process),
        profiled_cores=round(cores, 4),
        components_ms=components_ms,
        classified_share=round(classified, 4),
        cpu_ms_per_request=cpu_ms_per_request,
        budget_error=None if error is None else round(error, 4),
        problems=_problems(total, completed, classified, error, profiled_ms, cpu_ms_per_request),
    )


def _problems(
    total: int,
    completed: int,
    classified: float,
    error: float | None,
    profiled_ms: float,
    measured: float | None,
) -> list[str]:
    if not total:
        return ["the profile holds no sample of a running thread"]
    if not completed:
        return ["no request completed in the window, so there is no per-request figure"]
    problems = []
    if error is None:
        problems.append("no measured CPU per request to check the components against")
    elif abs(error) > BUDGET_TOLERANCE:
        problems.append(
            f"the components sum to {profiled_ms:.2f} ms per request, {abs(error):.0%} "
            f"{'above' if error > 0 else 'below'} the measured {measured:.2f} ms "
            f"(allowed {BUDGET_TOLERANCE:.0%})"
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
