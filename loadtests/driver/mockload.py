"""The mock's own benchmark, the measuring part: ``users`` keep-alive connections calling ``POST
/v1/messages`` back to back against a real mock process, with user starts spread over one upstream period
(so calls do not arrive in phase-locked bursts); per phase, the injected-vs-observed delay error seen by
the client and by the mock, the mock's CPU per call, the client's own cost and event-loop lag, and how long
the mock waited for a CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import psutil

from loadtests.driver import mockapi
from loadtests.driver.mockbench_client import Connection, Reply, build_request

HOST = "127.0.0.1"
PROFILE = "article"
TIME_SCALE = 0.5  # article's 2.0 s x 0.5 = the 1 s fixed profile the targets are stated for


@dataclass(frozen=True, kw_only=True)
class PhaseResult:
    name: str
    users: int
    calls: int
    errors: int
    observed_minus_injected_ms: dict[str, float]
    ttft_minus_injected_ms: dict[str, float] | None
    mock_cpu_ms_per_call: float
    client_cpu_ms_per_call: float
    client_loop_lag_ms: dict[str, float]
    mock_cpu_wait_ms_per_s: float | None  # time the mock was runnable but waited for a CPU (Linux schedstat)
    load_average: float
    mock_stats: dict[str, object]
    window_s: float


def _pcts(values_s: list[float]) -> dict[str, float]:
    if not values_s:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values_s)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, int(q * n + 0.999999) - 1))] * 1000

    return {"p50": round(rank(0.5), 3), "p99": round(rank(0.99), 3), "max": round(ordered[-1] * 1000, 3)}


async def _lag_monitor(stop: asyncio.Event, lags: list[float], period: float = 0.01) -> None:
    """How late the client's own loop wakes up: a busy client would inflate the measured error."""
    while not stop.is_set():
        due = perf_counter() + period
        await asyncio.sleep(period)
        lags.append(max(0.0, perf_counter() - due))


@dataclass(frozen=True, kw_only=True)
class Phase:
    name: str
    users: int
    stream: bool
    ramp_s: float  # user starts spread over this
    window_s: float
    injected_total_s: float  # the mock's delay per call
    injected_ttft_s: float | None  # its time to the first delta (streams)


def _request(port: int, *, stream: bool) -> bytes:
    body = json.dumps(
        {
            "model": "claude-haiku-5-5",
            "max_tokens": 1024,
            "stream": stream,
            "messages": [{"role": "user", "content": "Summarise why the event loop matters for LLM calls."}],
        }
    ).encode()
    headers = {"content-type": "application/json", "x-api-key": "bench", "anthropic-version": "2023-06-01"}
    return build_request(host=HOST, port=port, path="/v1/messages", body=body, headers=headers)


@dataclass(kw_only=True)
class _Users:
    """The phase's users: each calls back to back until the window ends; replies inside it are kept."""

    request: bytes
    port: int
    phase: Phase
    start: float
    measure_from: float
    measure_to: float
    replies: list[Reply]
    conns: list[Connection]
    failures: int = 0

    async def user(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(
            max(0.0, self.start + self.phase.ramp_s * index / self.phase.users - perf_counter())
        )
        _, conn = await loop.create_connection(Connection, HOST, self.port)
        self.conns.append(conn)
        while perf_counter() < self.measure_to:
            try:
                reply = await conn.request(self.request)
            except ConnectionError:
                self.failures += 1
                return
            if reply.status != 200:
                self.failures += 1
            if self.measure_from <= reply.sent_at and reply.done_at <= self.measure_to:
                self.replies.append(reply)


async def run_phase(phase: Phase, *, port: int, mock_pid: int) -> PhaseResult:
    loop = asyncio.get_running_loop()
    start = perf_counter() + 0.2
    measure_from = start + phase.ramp_s + phase.injected_total_s  # every user has finished its first call
    users = _Users(
        request=_request(port, stream=phase.stream), port=port, phase=phase, start=start,
        measure_from=measure_from, measure_to=measure_from + phase.window_s, replies=[], conns=[],
    )  # fmt: skip
    lags: list[float] = []
    stop = asyncio.Event()
    monitor = loop.create_task(_lag_monitor(stop, lags))
    tasks = [loop.create_task(users.user(i)) for i in range(phase.users)]
    window = await _window(users, mock_pid=mock_pid)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=phase.injected_total_s + 30)
    stop.set()
    await monitor
    for conn in users.conns:
        conn.close()
    return _result(phase, users, window, lags)


async def _window(users: _Users, *, mock_pid: int) -> dict[str, Any]:
    """Reset the mock when every user has finished its first call; CPU and run-queue wait at both ends."""
    loop = asyncio.get_running_loop()
    url = f"http://{HOST}:{users.port}"
    mock, me = psutil.Process(mock_pid), psutil.Process(os.getpid())
    await asyncio.sleep(max(0.0, users.measure_from - perf_counter()))
    await loop.run_in_executor(None, mockapi.reset, url)
    mock_cpu0, my_cpu0 = sum(mock.cpu_times()[:2]), sum(me.cpu_times()[:2])
    wait0, window_start = run_queue_wait_s(mock_pid), perf_counter()
    await asyncio.sleep(max(0.0, users.measure_to - perf_counter()))
    mock_cpu1, my_cpu1 = sum(mock.cpu_times()[:2]), sum(me.cpu_times()[:2])
    wait1, window_end = run_queue_wait_s(mock_pid), perf_counter()
    cpu_wait = None
    if wait0 is not None and wait1 is not None:
        cpu_wait = round((wait1 - wait0) * 1000 / (window_end - window_start), 2)
    stats = await loop.run_in_executor(None, mockapi.stats, url)
    return {"mock_cpu_s": mock_cpu1 - mock_cpu0, "my_cpu_s": my_cpu1 - my_cpu0, "cpu_wait": cpu_wait,
            "stats": stats}  # fmt: skip


def _result(phase: Phase, users: _Users, window: dict[str, Any], lags: list[float]) -> PhaseResult:
    replies, stats = users.replies, window["stats"]
    # Calls the mock finished inside the window, for CPU per call (its counter was reset at the window start).
    mock_calls = max(1, int(dict(stats["injected_delay_ms"])["count"]))
    ttft = None
    if phase.injected_ttft_s is not None:
        ttft = _pcts(
            [r.first_delta_at - r.sent_at - phase.injected_ttft_s for r in replies if r.first_delta_at]
        )
    return PhaseResult(
        name=phase.name,
        users=phase.users,
        calls=len(replies),
        errors=users.failures,
        observed_minus_injected_ms=_pcts([r.done_at - r.sent_at - phase.injected_total_s for r in replies]),
        ttft_minus_injected_ms=ttft,
        mock_cpu_ms_per_call=round(window["mock_cpu_s"] * 1000 / mock_calls, 4),
        client_cpu_ms_per_call=round(window["my_cpu_s"] * 1000 / max(1, len(replies)), 4),
        client_loop_lag_ms=_pcts(lags),
        mock_cpu_wait_ms_per_s=window["cpu_wait"],
        load_average=round(os.getloadavg()[0], 2),
        mock_stats=stats,
        window_s=phase.window_s,
    )


def run_queue_wait_s(pid: int) -> float | None:
    """Seconds the process's threads spent runnable but not running (Linux /proc schedstat), or None."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = hard if hard != resource.RLIM_INFINITY else needed
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(target, max(needed, soft)), hard))


async def bench(args: argparse.Namespace, port: int, pid: int) -> list[PhaseResult]:
    """The non-streaming phase, then (with --stream-users) the streaming one."""
    total = 2.0 * TIME_SCALE
    phases = [
        Phase(name="non-streaming", users=args.users, stream=False, ramp_s=total, window_s=args.window,
              injected_total_s=total, injected_ttft_s=None),
    ]  # fmt: skip
    if args.stream_users > 0:
        phases.append(
            Phase(name="streaming", users=args.stream_users, stream=True, ramp_s=total, window_s=args.window,
                  injected_total_s=total, injected_ttft_s=total * 0.25)
        )  # fmt: skip
    return [await run_phase(phase, port=port, mock_pid=pid) for phase in phases]
