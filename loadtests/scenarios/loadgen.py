"""Locust-side plumbing shared by every scenario file (imported inside the Locust processes only).

What Locust alone gets wrong here, and what this module does instead:
- Locust rounds response times above 100 ms into buckets; every request is timed here with
  ``time.perf_counter`` and written raw (one CSV line per request) to a per-process file, from a
  ``request`` event listener. The sweep merges those files; Locust's own stats are only for humans.
- Closed-loop users started together stay phase-locked behind a fixed upstream delay, so each user's
  first request waits a low-discrepancy offset in ``[0, --bench-spread)``.
- Locust only knows closed-loop users. With ``--bench-model open`` one user per process issues requests
  at Poisson arrival times, each in its own greenlet without waiting for answers (wrk2-style): latency is
  measured from the *intended* send time, so a saturated server's queue shows in the percentiles
  instead of slowing the load down (coordinated omission). In-flight requests are capped
  (``--bench-max-in-flight``); an arrival over the cap is recorded as ``dropped``.
- Requests still running when the process stops are written as ``unfinished`` (never silently lost).
- ``gc.freeze()`` after start-up, and GC pauses are timed with ``gc.callbacks`` and written beside the
  raw records, so the load generator's own pauses are measured rather than assumed away.

Files a process writes, for ``--bench-raw PREFIX``: ``PREFIX.<pid>.csv`` (records), ``PREFIX.<pid>.start``
(wall time of its first user start), ``PREFIX.<pid>.gc.json`` (GC pauses).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import locust.log
from geventhttpclient import HTTPClient
from locust import User, constant, events, task
from locust.runners import WorkerRunner

FLUSH_INTERVAL_S = 0.25  # the sweep reads these files while the point runs, to see when the load settled
RAW_HEADER = "start,latency_ms,ttft_ms,status,ok,n,lag_ms,error,rid,mono\n"
DEFAULT_TOKEN = "bench-local-token"
TOKEN_ENV = "BENCH_LOADGEN_TOKEN"  # how the sweep hands over the token: argv is visible in ps
PERF_TO_MONOTONIC = time.monotonic() - time.perf_counter()  # ~0 on Linux, where both are CLOCK_MONOTONIC
GOLDEN = (math.sqrt(5) - 1) / 2  # low-discrepancy stagger: offsets never bunch, whatever the user count

WORDS = [
    "revenue",
    "margin",
    "customer",
    "churn",
    "forecast",
    "pipeline",
    "latency",
    "contract",
    "renewal",
    "risk",
    "growth",
    "quarter",
    "board",
    "supplier",
    "incident",
    "outage",
    "roadmap",
    "hiring",
    "budget",
    "audit",
    "compliance",
    "security",
    "migration",
    "cloud",
    "vendor",
]


@dataclass(slots=True)
class Outcome:
    """What one scenario call observed. Times are seconds from the (intended) start."""

    status: str  # HTTP status code as text, or "error:<ExceptionName>"
    ok: bool
    total_s: float
    first_s: float | None = None  # time to first chunk / frame; job scenario: time to the 202
    n: int = 0  # body bytes (analyse, stream), frames (chat) or polls (jobs)
    error: str = ""


# ----------------------------------------------------------------------------------------------------------
# Logs without the machine's name

# Locust starts every log line with the host name and names each worker after it: logs sit beside results
# that get shared and committed, and results carry no host name (loadtests.driver.metadata). Locust loads
# this file before it configures logging, so its line format takes this name instead.
LOG_HOST = "loadgen"
_HOST = socket.gethostname()
locust.log.HOSTNAME = LOG_HOST


class _NoHostName(logging.Filter):
    """A worker's id (``<host name>_<hex>``) in a message becomes ``loadgen_<hex>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if f"{_HOST}_" in text:
            record.msg, record.args = text.replace(f"{_HOST}_", f"{LOG_HOST}_"), None
        return True


@events.init.add_listener
def _hide_host_name(**_kwargs: Any) -> None:
    for name in ("", "locust", "locust.stats_logger"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_NoHostName())


# ----------------------------------------------------------------------------------------------------------
# Options


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kwargs: Any) -> None:
    group = parser.add_argument_group("benchmark harness")
    group.add_argument("--bench-raw", default="", help="write raw per-request records to PREFIX.<pid>.csv")
    group.add_argument(
        "--bench-token",
        default=os.environ.get(TOKEN_ENV)
        or (os.environ.get("BENCH_API_TOKENS") or DEFAULT_TOKEN).split(",")[0],
        help=f"bearer token for the server (default: ${TOKEN_ENV}; prefer it: argv is visible in ps)",
    )
    group.add_argument("--bench-model", choices=("closed", "open"), default="closed", help="load model")
    group.add_argument("--bench-spread", type=float, default=0.0, help="spread user starts over S seconds")
    group.add_argument("--bench-rate", type=float, default=1.0, help="open loop: arrivals/s for each user")
    group.add_argument("--bench-max-in-flight", type=int, default=2000, help="open loop: in-flight cap")
    group.add_argument("--bench-seed", type=int, default=1, help="seed for payloads and arrivals")
    group.add_argument("--bench-text-chars", type=int, default=800, help="length of the text to analyse")
    group.add_argument("--bench-poll-interval", type=float, default=0.1, help="jobs: seconds between polls")
    group.add_argument("--bench-timeout", type=float, default=600.0, help="network timeout, seconds")


def _opt(environment: Any, name: str) -> Any:
    options = environment.parsed_options
    if options is None:  # library use without a command line: take the declared defaults
        return {
            "bench_raw": "",
            "bench_token": DEFAULT_TOKEN,
            "bench_model": "closed",
            "bench_spread": 0.0,
            "bench_rate": 1.0,
            "bench_max_in_flight": 2000,
            "bench_seed": 1,
            "bench_text_chars": 800,
            "bench_poll_interval": 0.1,
            "bench_timeout": 600.0,
        }[name]
    return getattr(options, name)


def proc_index(environment: Any = None) -> int:
    """This load process's index among ``proc_count()``: a Locust worker's own ``worker_index`` (the
    master numbers its workers as they connect, so workers on other hosts need no index of their own);
    else BENCH_LOADGEN_INDEX (a custom option would not do: a master overwrites its workers' options)."""
    runner = getattr(environment, "runner", None)
    index = getattr(runner, "worker_index", -1)
    if isinstance(runner, WorkerRunner) and isinstance(index, int) and index >= 0:
        return index
    return int(os.environ.get("BENCH_LOADGEN_INDEX", "0"))


def proc_count() -> int:
    return int(os.environ.get("BENCH_LOADGEN_PROCS", "1"))


# ----------------------------------------------------------------------------------------------------------
# Raw records: collected from the request event, flushed to this process's file


class Recorder:
    def __init__(self) -> None:
        self.prefix = ""
        self.lines: list[str] = []
        self.in_flight: dict[int, float] = {}  # id -> intended start (wall)
        self.gc_pauses: list[tuple[float, float, int]] = []  # (wall start, ms, generation)
        self._gc_started = 0.0
        self._next_id = 0
        self._flusher: gevent.Greenlet | None = None
        self._started = False
        self._finished = False

    def start(self, prefix: str) -> None:
        if self._started:
            return
        self._started = True
        self.prefix = prefix
        if prefix:
            # Written whole, then renamed: the sweep polls for these markers and must never read half of one.
            marker = Path(f"{prefix}.{os.getpid()}.start")
            partial = marker.with_name(marker.name + ".tmp")
            partial.write_text(f"{time.time():.6f}\n")
            os.replace(partial, marker)
            self._flusher = gevent.spawn(self._flush_forever)
        # Start-up garbage (imports, parser, Locust's own objects) never needs collecting again.
        gc.collect()
        gc.freeze()
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            ms = (time.perf_counter() - self._gc_started) * 1000.0
            self.gc_pauses.append((time.time() - ms / 1000.0, ms, int(info.get("generation", -1))))
            self._gc_started = 0.0

    def begin(self, start_wall: float) -> int:
        self._next_id += 1
        self.in_flight[self._next_id] = start_wall
        return self._next_id

    @staticmethod
    def request_id(token: int) -> str:
        """Sent as ``x-request-id``: unique across the load processes of a point (pid, then a counter)."""
        return f"{os.getpid():x}-{token:x}"

    def add(
        self, token: int, start_wall: float, outcome: Outcome, lag_ms: float | None, start_mono: float
    ) -> None:
        self.in_flight.pop(token, None)
        first = "" if outcome.first_s is None else f"{outcome.first_s * 1000.0:.3f}"
        lag = "" if lag_ms is None else f"{lag_ms:.3f}"
        error = outcome.error.replace(",", ";").replace("\n", " ")[:120]
        self.lines.append(
            f"{start_wall:.6f},{outcome.total_s * 1000.0:.3f},{first},{outcome.status},"
            f"{1 if outcome.ok else 0},{outcome.n},{lag},{error},{self.request_id(token)},{start_mono:.6f}\n"
        )

    def add_dropped(self, start_wall: float) -> None:
        self.lines.append(f"{start_wall:.6f},,,dropped,0,0,,in-flight cap reached,,\n")

    def _flush_forever(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL_S)
            self.flush()

    def flush(self, *, final: bool = False) -> None:
        if not self.prefix:
            self.lines.clear()
            return
        lines, self.lines = self.lines, []
        if final:
            lines.extend(f"{start:.6f},,,unfinished,0,0,,,,\n" for start in self.in_flight.values())
            self.in_flight.clear()
        path = Path(f"{self.prefix}.{os.getpid()}.csv")
        new = not path.exists()
        if lines or new:
            with path.open("a") as handle:
                if new:
                    handle.write(RAW_HEADER)
                handle.writelines(lines)
        if final:
            pauses = [{"start": s, "ms": round(ms, 3), "generation": g} for s, ms, g in self.gc_pauses]
            Path(f"{self.prefix}.{os.getpid()}.gc.json").write_text(json.dumps(pauses))

    def finish(self) -> None:
        # test_stop and quitting both end up here; open-loop request greenlets outlive test_stop, and a
        # request already written as unfinished must not be written again when it completes later.
        if self._finished:
            return
        self._finished = True
        if self._flusher is not None:
            self._flusher.kill(block=False)
            self._flusher = None
        self.flush(final=True)


RECORDER = Recorder()


@events.request.add_listener
def _on_request(context: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    bench = (context or {}).get("bench")
    if bench is not None:
        RECORDER.add(*bench)


@events.test_stop.add_listener
def _on_test_stop(**_kwargs: Any) -> None:
    RECORDER.finish()


@events.quitting.add_listener
def _on_quitting(**_kwargs: Any) -> None:
    RECORDER.finish()


# ----------------------------------------------------------------------------------------------------------
# Payloads and connections


def make_text(chars: int, seed: int) -> str:
    rng = random.Random(seed)
    words: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:chars].strip() + "."


def analyse_body(chars: int, seed: int) -> bytes:
    body = {
        "text": make_text(chars, seed),
        "analysis_type": "summary",
        "output_format": "json",
        "max_findings": 5,
    }
    return json.dumps(body).encode()


def http_client(host: str, *, concurrency: int, timeout: float) -> HTTPClient:
    parts = urlsplit(host)
    return HTTPClient(
        parts.hostname or "127.0.0.1",
        parts.port or 80,
        concurrency=concurrency,
        connection_timeout=30.0,
        network_timeout=timeout,
    )


def error_outcome(exc: BaseException, started: float) -> Outcome:
    name = type(exc).__name__
    return Outcome(status=f"error:{name}", ok=False, total_s=time.perf_counter() - started, error=str(exc))


# ----------------------------------------------------------------------------------------------------------
# The user: closed loop by default, open loop with --bench-model open


class BenchUser(User):
    """Subclasses set ``scenario`` and implement :meth:`call` (one request, timed by the caller)."""

    abstract = True
    wait_time = constant(0)  # closed loop: no think time
    scenario = "?"
    _count = 0  # users started in this process (for the stagger)

    def on_start(self) -> None:
        env = self.environment
        self.token: str = _opt(env, "bench_token")
        self.auth_headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        seed = _opt(env, "bench_seed")
        self.body = analyse_body(_opt(env, "bench_text_chars"), seed)
        self.timeout = float(_opt(env, "bench_timeout"))
        self.poll_interval = float(_opt(env, "bench_poll_interval"))
        parts = urlsplit(self.host or "")
        self.hostname, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        RECORDER.start(_opt(env, "bench_raw"))
        index = BenchUser._count * proc_count() + proc_index(env)
        BenchUser._count += 1
        self.open_loop = _opt(env, "bench_model") == "open"
        if not self.open_loop:
            self.http = http_client(self.host or "", concurrency=1, timeout=self.timeout)
            spread = float(_opt(env, "bench_spread"))
            if spread > 0:
                gevent.sleep((index * GOLDEN) % 1.0 * spread)

    def on_stop(self) -> None:
        http = getattr(self, "http", None)
        if http is not None:
            http.close()

    def call(self, http: HTTPClient, request_id: str) -> Outcome:
        raise NotImplementedError

    def headers_for(self, request_id: str) -> dict[str, str]:
        return {**self.auth_headers, "x-request-id": request_id}

    def _timed(self, http: HTTPClient, intended_pc: float, start_wall: float, *, open_loop: bool) -> None:
        token = RECORDER.begin(start_wall)
        sent_pc = time.perf_counter()
        try:
            outcome = self.call(http, RECORDER.request_id(token))
        except (Exception, gevent.Timeout) as exc:  # any failure is a failed request, never a lost one
            outcome = error_outcome(exc, sent_pc)
        # The call timed itself from when it was sent; open loop counts from the intended time instead.
        lag_s = sent_pc - intended_pc
        if open_loop:
            outcome.total_s += lag_s
            if outcome.first_s is not None:
                outcome.first_s += lag_s
        self.environment.events.request.fire(
            request_type=self.scenario,
            name=self.scenario,
            response_time=outcome.total_s * 1000.0,
            response_length=outcome.n,
            exception=None if outcome.ok else RuntimeError(outcome.status),
            context={
                "bench": (
                    token,
                    start_wall,
                    outcome,
                    lag_s * 1000.0 if open_loop else None,
                    # perf_counter and monotonic are one clock on Linux (CLOCK_MONOTONIC), shared by every
                    # process: the mock's per-call records are on it too.
                    (sent_pc if not open_loop else intended_pc) + PERF_TO_MONOTONIC,
                )
            },
            start_time=start_wall,
            url=self.scenario,
        )

    @task
    def one_request(self) -> None:
        if self.open_loop:
            self._open_loop()
        else:
            self._timed(self.http, time.perf_counter(), time.time(), open_loop=False)

    def _open_loop(self) -> None:
        env = self.environment
        rate = float(_opt(env, "bench_rate"))
        cap = int(_opt(env, "bench_max_in_flight"))
        rng = random.Random(_opt(env, "bench_seed") * 1_000_003 + proc_index(env))
        http = http_client(self.host or "", concurrency=cap, timeout=self.timeout)
        self.http = http
        in_flight: set[gevent.Greenlet] = set()
        pc0, wall0 = time.perf_counter(), time.time()
        next_pc = pc0
        while True:
            next_pc += rng.expovariate(rate)
            delay = next_pc - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            intended_wall = wall0 + (next_pc - pc0)
            if len(in_flight) >= cap:
                RECORDER.add_dropped(intended_wall)
                continue
            greenlet = gevent.spawn(self._timed, http, next_pc, intended_wall, open_loop=True)
            in_flight.add(greenlet)
            greenlet.link(in_flight.discard)


def read_json_body(response: Any) -> Any:
    return json.loads(response.read() or b"null")
