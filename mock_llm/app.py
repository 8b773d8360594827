"""The mock as a lean raw ASGI application (no framework): routing, auth, faults, latency, stats.

A call costs one dict lookup for its cached answer, one timer for its delay and two ``send`` calls, so a
single process holds thousands of concurrent calls with millisecond timing (see
``python -m loadtests.driver.mockbench``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import math
import random
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from time import monotonic, perf_counter
from typing import Any

from mock_llm import protocol
from mock_llm.config import MockConfig
from mock_llm.content import complete, input_tokens
from mock_llm.faults import (
    DRIP_PIECES,
    FAULT_KINDS,
    MIDSTREAM_KINDS,
    FaultModel,
    drip_gap_s,
    retry_after_s,
    stall_cap_s,
)
from mock_llm.gcpolicy import IdleCollector
from mock_llm.profiles import LatencyPlan, delta_groups, delta_times, get_profile, plan_latency
from mock_llm.stats import CLIENT_CLOSED, GcPauses, MockStats
from mock_llm.validation import (
    MAX_BODY_BYTES,
    InvalidRequest,
    parse_json_object,
    validate_count_tokens,
    validate_messages,
)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ANSWER_CACHE_SIZE = 10_000
# POST /mock/reset needs this header: any web page the user opens while a run is going can POST to the
# mock (a form needs no CORS preflight), but no page can add a custom header cross-site without a preflight,
# which the mock never grants. So a page cannot zero the ground truth of a run.
CONTROL_HEADER = b"x-mock-control"
CONTROL_REFUSED = "POST /mock/reset needs the header x-mock-control: 1 (a web page cannot send it cross-site)"
# What the cached answers may hold (about 3 KB each for ordinary requests: 10,000 fit); a request is known
# by a 16-byte hash of its body, never by the body (up to 32 MB).
ANSWER_CACHE_BYTES = 64 * 1024 * 1024
logger = logging.getLogger("mock_llm")


def _since(query: bytes) -> float:
    """``?since=T`` (monotonic seconds) of ``GET /mock/calls``; 0 (everything kept) when absent.

    A value that is no finite number is an InvalidRequest: answering every call instead would hand a
    caller with a typo the whole history as if it were its window."""
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if name == b"since":
            text = urllib.parse.unquote_to_bytes(value).decode("latin-1")
            try:
                since = float(text)
            except ValueError:
                since = math.nan
            if not math.isfinite(since):
                raise InvalidRequest(f"since: expected seconds on the monotonic clock, got {text!r}")
            return since
    return 0.0


class _ClientGone(Exception):
    """The client closed the connection before its answer was complete."""


class MidstreamDrop(Exception):
    """Raised out of the app on purpose: the server (uvicorn) then closes the connection mid-answer."""


class DropFilter(logging.Filter):
    """Keeps uvicorn from logging a traceback for every connection the mock drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], MidstreamDrop))


_BODY_FAULT = re.compile(rb"mock-fault:([a-z0-9_]+)")


class _Call:
    """Per-request header facts the API path needs, read in one pass over the headers."""

    __slots__ = (
        "api_key",
        "clock_start",
        "content_length",
        "fault",
        "fault_key",
        "fault_times",
        "request_id",
        "responded",
        "retry_count",
        "started",
        "version",
    )

    def __init__(self, headers: list[tuple[bytes, bytes]], *, started: float) -> None:
        self.started = started  # loop time at arrival: every deadline of this call counts from it
        self.clock_start = perf_counter()  # the same instant on a fine clock, for the delay statistics
        self.responded = False  # a stream's headers have gone out
        self.api_key: bytes | None = None
        self.version: bytes | None = None
        self.retry_count: bytes | None = None
        self.fault: bytes | None = None
        self.fault_times: bytes | None = None
        self.fault_key = b""
        self.content_length: bytes | None = None
        self.request_id = ""
        for name, value in headers:
            if name == b"x-api-key":
                self.api_key = value
            elif name == b"authorization":
                if self.api_key is None and value[:7].lower() == b"bearer ":
                    self.api_key = value[7:].strip()
            elif name == b"anthropic-version":
                self.version = value
            elif name == b"x-stainless-retry-count":
                self.retry_count = value
            elif name == b"content-length":
                self.content_length = value
            elif name == b"x-request-id":
                self.request_id = value[:128].decode("latin-1")
            elif name.startswith(b"x-mock-fault"):
                if name == b"x-mock-fault":
                    self.fault = value
                elif name == b"x-mock-fault-times":
                    self.fault_times = value
                elif name == b"x-mock-fault-key":
                    self.fault_key = value


class MockApp:
    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.profile = get_profile(config.profile)
        self.stats = MockStats(seed=config.seed)
        self.gc_pauses = GcPauses()
        self.collector = IdleCollector()
        self.faults = FaultModel(config.faults, seed=config.seed)
        self._latency_rng = random.Random(f"latency:{config.seed}")
        self._ids = protocol.IdMaker()
        self._answers: dict[bytes, protocol.Answer] = {}  # blake2b-128 of the body -> its answer
        self._answer_bytes = 0
        self._api_key = config.api_key.encode() if config.api_key is not None else None
        self._ratelimit = protocol.ratelimit_headers()
        self._models_page = protocol.models_page()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._calls: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # ---- ASGI entry -------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path.startswith("/v1/"):
                await self._api(scope, receive, send, path)
            else:
                await self._control(scope, receive, send, path)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                self.collector.start()
                gc.callbacks.append(self.gc_pauses.callback)  # after start-up's own full collection
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ---- /health and /mock/* ----------------------------------------------------------------------------
    async def _control(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method = scope["method"]
        rid = "req_" + self._ids.next()
        if path == "/health" and method == "GET":
            body = {"status": "ok", "profile": self.profile.name, "time_scale": self.config.time_scale}
            await self._respond(send, 200, protocol.json_bytes(body), rid)
        elif path == "/mock/stats" and method == "GET":
            await self._respond(send, 200, protocol.json_bytes(self.stats_snapshot()), rid)
        elif path == "/mock/gauge" and method == "GET":  # cheap enough to poll several times a second
            gauge = {"in_flight": self.stats.in_flight, "requests": self.stats.requests, "now": monotonic()}
            await self._respond(send, 200, protocol.json_bytes(gauge), rid)
        elif path == "/mock/calls" and method == "GET":
            try:
                since = _since(scope.get("query_string", b""))
            except InvalidRequest as exc:
                await self._error(send, 400, "invalid_request_error", str(exc), rid)
                return
            await self._respond(send, 200, protocol.json_bytes(self.stats.calls_snapshot(since=since)), rid)
        elif path == "/mock/reset" and method == "POST":
            if (CONTROL_HEADER, b"1") not in scope["headers"]:
                await self._error(send, 403, "permission_error", CONTROL_REFUSED, rid)
                return
            self.stats.reset()
            self.faults.reset()
            self.gc_pauses.reset()
            await self._respond(send, 200, protocol.json_bytes(self.stats_snapshot()), rid)
        else:
            await self._error(send, 404, "not_found_error", f"{method} {path} not found", rid)

    def stats_snapshot(self) -> dict[str, Any]:
        snapshot = self.stats.snapshot()
        snapshot.update(
            profile=self.profile.name,
            profile_description=self.profile.describe(),
            time_scale=self.config.time_scale,
            seed=self.config.seed,
            error_rate=self.config.error_rate,
            errors=list(self.config.errors),
            gc=self.gc_pauses.snapshot() | self.collector.snapshot(),
        )
        return snapshot

    # ---- /v1/* -------------------------------------------------------------------------------------------
    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        stats = self.stats
        loop = self._loop or asyncio.get_running_loop()
        call = _Call(scope["headers"], started=loop.time())
        arrival = monotonic()
        stats.begin()
        status = "200"
        task = asyncio.current_task()
        if task is not None:
            self._calls.add(task)
        try:
            status = await self._api_call(call, scope, receive, send, path, loop)
        except _ClientGone:
            status = CLIENT_CLOSED
        except MidstreamDrop:
            status = "200"
            raise
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            status = await self._shutdown_answer(call, send)
        except InvalidRequest as exc:  # raised before any byte was sent
            status = "400"
            await self._error(send, 400, "invalid_request_error", str(exc), "req_" + self._ids.next())
        except Exception:  # a bug in the mock: still answer with the API's envelope, and say why in the log
            logger.exception("mock_llm failed on %s %s", scope["method"], path)
            status = "500"
            if not call.responded:
                with contextlib.suppress(RuntimeError):  # the answer may already have gone out
                    await self._error(
                        send, 500, "api_error", "mock_llm internal error", "req_" + self._ids.next()
                    )
        finally:
            self._calls.discard(task)  # type: ignore[arg-type]
            stats.end(status)
            stats.record_call(call.request_id, arrival, monotonic(), status)
            self.collector.on_call_end(stats.in_flight, loop)

    async def _api_call(
        self,
        call: _Call,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str,
        loop: asyncio.AbstractEventLoop,
    ) -> str:
        rid = "req_" + self._ids.next()
        if call.retry_count is not None and call.retry_count not in (b"0", b""):
            self.stats.retries_seen += 1
        length = call.content_length
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return await self._too_large(send, rid)
        body = await self._read_body(receive)
        if body is None:
            return await self._too_large(send, rid)
        if not call.api_key:
            return await self._error(send, 401, "authentication_error", "x-api-key header is required", rid)
        if self._api_key is not None and call.api_key != self._api_key:
            return await self._error(send, 401, "authentication_error", "invalid x-api-key", rid)
        if not call.version:
            return await self._error(
                send, 400, "invalid_request_error", "anthropic-version: header is required", rid
            )
        method = scope["method"]
        if path == "/v1/messages":
            if method != "POST":
                return await self._error(send, 405, "invalid_request_error", f"{method} not allowed", rid)
            return await self._messages(call, body, receive, send, rid, loop)
        if path == "/v1/messages/count_tokens" and method == "POST":
            system, messages = validate_count_tokens(parse_json_object(body))
            tokens = input_tokens(system=system, messages=messages)
            return await self._respond(send, 200, protocol.json_bytes({"input_tokens": tokens}), rid)
        if path == "/v1/models" and method == "GET":
            return await self._respond(send, 200, self._models_page, rid)
        if path.startswith("/v1/models/") and method == "GET":
            info = protocol.model_info(path.removeprefix("/v1/models/"))
            if info is not None:
                return await self._respond(send, 200, info, rid)
        return await self._error(send, 404, "not_found_error", f"{method} {path} not found", rid)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole request body; None when it is over the size cap."""
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _answer_for(self, body: bytes) -> tuple[protocol.Answer, bool]:
        """The cached answer for this exact body (validated once), and whether the call streams."""
        key = hashlib.blake2b(body, digest_size=16).digest()
        cached = self._answers.get(key)
        if cached is not None:
            return cached, cached.streams
        request = validate_messages(parse_json_object(body))
        completion = complete(
            seed=self.config.seed,
            model=request.model,
            system=request.system,
            messages=request.messages,
            max_tokens=request.max_tokens,
            stop_sequences=request.stop_sequences,
        )
        answer = protocol.build_answer(model=request.model, streams=request.stream, completion=completion)
        self._remember(key, answer)
        return answer, request.stream

    def _remember(self, key: bytes, answer: protocol.Answer) -> None:
        """Keep an answer within both caps: a full cache starts over (one recomputation each, no bookkeeping
        per call); an answer larger than the whole cache is not kept."""
        size = answer.held_bytes()
        if size > ANSWER_CACHE_BYTES:
            return
        if len(self._answers) >= ANSWER_CACHE_SIZE or self._answer_bytes + size > ANSWER_CACHE_BYTES:
            self._answers.clear()
            self._answer_bytes = 0
        self._answers[key] = answer
        self._answer_bytes += size

    def _fault_for(self, call: _Call, body: bytes) -> str | None:
        forced = call.fault
        if forced is None and b"mock-fault:" in body:
            match = _BODY_FAULT.search(body)
            forced = match.group(1) if match else b""
        if forced is not None:
            kind = forced.decode("latin-1").strip()
            if kind not in FAULT_KINDS:
                raise InvalidRequest(
                    f"x-mock-fault: unknown fault {kind!r}; choose from {','.join(FAULT_KINDS)}"
                )
            times: int | None = None
            if call.fault_times is not None:
                text = call.fault_times.decode("latin-1").strip()
                if not text.isdigit():
                    raise InvalidRequest(f"x-mock-fault-times: expected a whole number, got {text!r}")
                times = int(text)
            if self.faults.forced(kind, times=times, key=call.fault_key.decode("latin-1")):
                return kind
            return None
        return self.faults.draw()

    async def _messages(
        self,
        call: _Call,
        body: bytes,
        receive: Receive,
        send: Send,
        rid: str,
        loop: asyncio.AbstractEventLoop,
    ) -> str:
        started = call.started
        answer, streams = self._answer_for(body)
        fault = self._fault_for(call, body)
        if fault is not None and not (fault == "stream_error" and not streams):
            self.stats.fault(fault)
            if fault == "429":
                wait = retry_after_s(self.config.time_scale)
                extra = [
                    (b"retry-after", str(max(1, round(wait))).encode()),
                    (b"retry-after-ms", str(round(wait * 1000)).encode()),
                ]
                return await self._error(
                    send, 429, "rate_limit_error", "Number of requests exceeded", rid, extra
                )
            if fault == "529":
                return await self._error(send, 529, "overloaded_error", "Overloaded", rid)
            if fault == "500":
                return await self._error(send, 500, "api_error", "Internal server error", rid)
            if fault == "stall":
                await self._wait_until(loop, started + stall_cap_s(self.config.time_scale), receive)
                return await self._error(send, 500, "api_error", "mock stall ended without an answer", rid)
        plan = plan_latency(
            self.profile,
            output_tokens=answer.completion.output_tokens,
            time_scale=self.config.time_scale,
            rng=self._latency_rng,
        )
        if streams:
            self.stats.streams += 1
            return await self._stream(call, answer, plan, receive, send, rid, loop, fault)
        if fault in MIDSTREAM_KINDS:
            return await self._faulty_body(call, answer, plan, receive, send, rid, loop, fault)
        remaining = started + plan.total_s - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        await self._respond(send, 200, answer.message_body("msg_" + self._ids.next()), rid)
        self.stats.delay(injected_s=plan.total_s, observed_s=perf_counter() - call.clock_start)
        return "200"

    async def _stream(
        self,
        call: _Call,
        answer: protocol.Answer,
        plan: LatencyPlan,
        receive: Receive,
        send: Send,
        rid: str,
        loop: asyncio.AbstractEventLoop,
        fault: str | None,
    ) -> str:
        started = call.started
        fail_midway = fault == "stream_error"
        groups = delta_groups(len(answer.pieces), plan)
        if fault == "slow_drip":
            groups = [1] * len(answer.pieces)  # every piece its own delta, each one gap after the last
        events = answer.deltas(groups)
        times = delta_times(len(events), plan)
        if fault == "slow_drip":
            gap = drip_gap_s(self.config.time_scale)
            times = [plan.ttft_s + i * gap for i in range(len(events))]
        headers = self._headers(rid, protocol.SSE_TYPE, protocol.NO_CACHE)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        call.responded = True
        more = {
            "type": "http.response.body",
            "body": answer.stream_start("msg_" + self._ids.next()),
            "more_body": True,
        }
        await send(more)
        # Completes only when the client disconnects; checked after each sleep, so a stream stops within one
        # delta gap of its client leaving (cheaper than racing every sleep against it).
        watch = loop.create_task(receive())
        sleep = asyncio.sleep
        try:
            fail_at = len(events) // 2 if fail_midway or fault in MIDSTREAM_KINDS else -1
            for index, event in enumerate(events):
                remaining = started + times[index] - loop.time()
                if remaining > 0:
                    await sleep(remaining)
                if watch.done():
                    raise _ClientGone
                if index == fail_at and fault != "slow_drip":
                    await self._break_off(fault, send, watch, loop)
                    return "200"
                await send({"type": "http.response.body", "body": event, "more_body": True})
            if not events:  # an empty answer (a stop sequence at its very start) still takes its time
                remaining = started + plan.total_s - loop.time()
                if remaining > 0:
                    await sleep(remaining)
            if fail_midway:
                await send({"type": "http.response.body", "body": protocol.STREAM_ERROR_EVENT})
                return "200"
            await send({"type": "http.response.body", "body": answer.finish})
            self.stats.delay(injected_s=plan.total_s, observed_s=perf_counter() - call.clock_start)
            return "200"
        finally:
            if not watch.done():
                watch.cancel()

    async def _break_off(
        self, fault: str | None, send: Send, watch: asyncio.Task[Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        """End a started answer the way ``fault`` says: an error event, a stall, a dropped connection, or a
        clean end of the body where the answer is not over (truncated)."""
        if fault == "truncated":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if fault == "stall_midstream":
            done, _ = await asyncio.wait((watch,), timeout=stall_cap_s(self.config.time_scale))
            if done:
                raise _ClientGone
            raise MidstreamDrop("stall_midstream: stall cap reached")
        if fault == "drop_midstream":
            raise MidstreamDrop("drop_midstream")
        await send({"type": "http.response.body", "body": protocol.STREAM_ERROR_EVENT})

    async def _faulty_body(
        self,
        call: _Call,
        answer: protocol.Answer,
        plan: LatencyPlan,
        receive: Receive,
        send: Send,
        rid: str,
        loop: asyncio.AbstractEventLoop,
        fault: str,
    ) -> str:
        """A non-streaming answer whose body stalls, drops, drips or is cut short after its headers."""
        remaining = call.started + plan.ttft_s - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        body = answer.message_body("msg_" + self._ids.next())
        if fault == "truncated":  # framed as whole: only the JSON says it is cut
            body = body[: len(body) // 2]
        headers = self._headers(rid, protocol.JSON_TYPE, (b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        call.responded = True
        if fault == "truncated":
            await send({"type": "http.response.body", "body": body})
            return "200"
        watch = loop.create_task(receive())
        try:
            if fault != "slow_drip":
                await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
                await self._break_off(fault, send, watch, loop)
                return "200"
            step = -(-len(body) // DRIP_PIECES)
            gap = drip_gap_s(self.config.time_scale)
            for start in range(0, len(body), step):
                if start:
                    await asyncio.sleep(gap)
                if watch.done():
                    raise _ClientGone
                last = start + step >= len(body)
                await send(
                    {"type": "http.response.body", "body": body[start : start + step], "more_body": not last}
                )
            return "200"
        finally:
            if not watch.done():
                watch.cancel()

    async def _wait_until(self, loop: asyncio.AbstractEventLoop, deadline: float, receive: Receive) -> None:
        """Sleep until ``deadline`` (loop time); raise _ClientGone if the client disconnects meanwhile."""
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        watch = loop.create_task(receive())
        try:
            done, _ = await asyncio.wait((watch,), timeout=remaining)
        finally:
            if not watch.done():
                watch.cancel()
        if done:
            raise _ClientGone

    # ---- shutdown ------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Answer every call still waiting (stalls and long delays included) so a stop never hangs on them."""
        self._stopping = True
        for task in list(self._calls):
            task.cancel()

    async def _shutdown_answer(self, call: _Call, send: Send) -> str:
        if call.responded:  # a stream: end it with the API's mid-stream error
            await send({"type": "http.response.body", "body": protocol.STREAM_ERROR_EVENT})
            return "200"
        rid = "req_" + self._ids.next()
        return await self._error(send, 529, "overloaded_error", "mock_llm is shutting down", rid)

    # ---- responses ---------------------------------------------------------------------------------------
    def _headers(self, rid: str, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
        return [*extra, (b"request-id", rid.encode()), *self._ratelimit]

    async def _respond(
        self,
        send: Send,
        status: int,
        body: bytes,
        rid: str,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> str:
        headers = self._headers(rid, protocol.JSON_TYPE, (b"content-length", str(len(body)).encode()))
        if extra:
            headers.extend(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return str(status)

    async def _error(
        self,
        send: Send,
        status: int,
        error_type: str,
        message: str,
        rid: str,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> str:
        return await self._respond(send, status, protocol.error_body(error_type, message, rid), rid, extra)

    async def _too_large(self, send: Send, rid: str) -> str:
        limit = f"request body is over the {MAX_BODY_BYTES // (1024 * 1024)} MB limit"
        return await self._error(send, 413, "request_too_large", limit, rid, [(b"connection", b"close")])
