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
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from time import monotonic, perf_counter
from typing import Any

from mock_llm import openai_protocol, protocol
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
from mock_llm.limits import (
    ProviderLimits,
    Verdict,
    anthropic_headers,
    openai_headers,
    retry_after_headers,
)
from mock_llm.openai_protocol import ChatAnswer, ResponsesAnswer, build_chat_answer, build_responses_answer
from mock_llm.openai_validation import validate_chat, validate_responses
from mock_llm.profiles import LatencyPlan, delta_groups, delta_times, get_profile, plan_latency
from mock_llm.replay import Replayer, TimingRecord
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
Answer = protocol.Answer | ChatAnswer | ResponsesAnswer

ANTHROPIC = "anthropic"
OPENAI = "openai"  # /v1/chat/completions and /v1/responses: OpenAI's envelope, headers and ids
# The calls that generate an answer: they take the profile's time, faults and provider limits.
GENERATION = {"/v1/messages": "messages", "/v1/chat/completions": "chat", "/v1/responses": "responses"}
OPENAI_PATHS = frozenset(("/v1/chat/completions", "/v1/responses"))
NO_OPENAI_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)

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
        "answer",
        "api_key",
        "clock_start",
        "content_length",
        "dialect",
        "fault",
        "fault_key",
        "fault_times",
        "first_delta",
        "request_id",
        "responded",
        "retry_count",
        "started",
        "version",
    )

    def __init__(self, headers: list[tuple[bytes, bytes]], *, started: float, dialect: str) -> None:
        self.started = started  # loop time at arrival: every deadline of this call counts from it
        self.clock_start = perf_counter()  # the same instant on a fine clock, for the delay statistics
        self.responded = False  # a stream's headers have gone out
        self.dialect = dialect
        self.answer: Answer | None = None  # once known: a stream cut short ends with its error event
        self.first_delta: float | None = None  # perf_counter when a stream's first text went out
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
        # blake2b-128 of the body (personalised by endpoint) -> its answer and its max tokens
        self._answers: dict[bytes, tuple[Answer, int]] = {}
        self._answer_bytes = 0
        self._api_key = config.api_key.encode() if config.api_key is not None else None
        self.limits = ProviderLimits(config.limits, time_scale=config.time_scale, now=monotonic())
        states = self.limits.states(monotonic())  # without rate limits the headers never change
        self._static_ratelimit = {
            ANTHROPIC: anthropic_headers(states, wall_now=time.time()),
            OPENAI: openai_headers(states),
        }
        self.replayer: Replayer | None = None
        if self.profile.replay is not None:
            self.replayer = Replayer(
                self.profile.replay, path=config.profile, time_scale=config.time_scale, seed=config.seed
            )
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
            self.limits.reset()
            if self.replayer is not None:
                self.replayer.reset()
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
            limits=self.limits.snapshot(monotonic()),
            replay=self.replayer.snapshot() if self.replayer is not None else None,
        )
        return snapshot

    # ---- /v1/* -------------------------------------------------------------------------------------------
    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        stats = self.stats
        loop = self._loop or asyncio.get_running_loop()
        call = _Call(
            scope["headers"], started=loop.time(), dialect=OPENAI if path in OPENAI_PATHS else ANTHROPIC
        )
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
            rid = "req_" + self._ids.next()
            await self._error(send, 400, "invalid_request_error", str(exc), rid, dialect=call.dialect)
        except Exception:  # a bug in the mock: still answer with the API's envelope, and say why in the log
            logger.exception("mock_llm failed on %s %s", scope["method"], path)
            status = "500"
            if not call.responded:
                with contextlib.suppress(RuntimeError):  # the answer may already have gone out
                    rid = "req_" + self._ids.next()
                    await self._error(
                        send, 500, "api_error", "mock_llm internal error", rid, dialect=call.dialect
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
        dialect = call.dialect
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return await self._too_large(send, rid, dialect)
        body = await self._read_body(receive)
        if body is None:
            return await self._too_large(send, rid, dialect)
        refusal = self._auth_refusal(call)
        if refusal is not None:
            return await self._error(send, refusal[0], refusal[1], refusal[2], rid, dialect=dialect)
        method = scope["method"]
        endpoint = GENERATION.get(path)
        if endpoint is not None:
            if method != "POST":
                error = f"{method} not allowed"
                return await self._error(send, 405, "invalid_request_error", error, rid, dialect=dialect)
            return await self._generate(call, endpoint, body, receive, send, rid, loop)
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

    def _auth_refusal(self, call: _Call) -> tuple[int, str, str] | None:
        """(status, error type, message) when the key or the Messages API's version header is wrong."""
        if not call.api_key:
            message = NO_OPENAI_KEY if call.dialect == OPENAI else "x-api-key header is required"
            return 401, "authentication_error", message
        if self._api_key is not None and call.api_key != self._api_key:
            message = "Incorrect API key provided" if call.dialect == OPENAI else "invalid x-api-key"
            return 401, "authentication_error", message
        if not call.version and call.dialect == ANTHROPIC:
            return 400, "invalid_request_error", "anthropic-version: header is required"
        return None

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

    def _answer_for(self, endpoint: str, body: bytes) -> tuple[Answer, int]:
        """The cached answer for this exact body at this endpoint (validated once), and its token cap."""
        key = hashlib.blake2b(body, digest_size=16, person=endpoint.encode()).digest()
        cached = self._answers.get(key)
        if cached is not None:
            return cached
        data = parse_json_object(body)
        seed = self.config.seed
        answer: Answer
        if endpoint == "messages":
            request = validate_messages(data)
            completion = complete(
                seed=seed,
                model=request.model,
                system=request.system,
                messages=request.messages,
                max_tokens=request.max_tokens,
                stop_sequences=request.stop_sequences,
            )
            answer = protocol.build_answer(model=request.model, streams=request.stream, completion=completion)
            cap = request.max_tokens
        else:
            wanted = validate_chat(data) if endpoint == "chat" else validate_responses(data)
            completion = complete(
                seed=seed,
                model=wanted.model,
                system=wanted.system,
                messages=wanted.messages,
                max_tokens=wanted.max_tokens,
                stop_sequences=wanted.stop_sequences,
            )
            build = build_chat_answer if endpoint == "chat" else build_responses_answer
            answer, cap = build(wanted, completion), wanted.max_tokens
        self._remember(key, (answer, cap))
        return answer, cap

    def _remember(self, key: bytes, entry: tuple[Answer, int]) -> None:
        """Keep an answer within both caps: a full cache starts over (one recomputation each, no bookkeeping
        per call); an answer larger than the whole cache is not kept."""
        size = entry[0].held_bytes()
        if size > ANSWER_CACHE_BYTES:
            return
        if len(self._answers) >= ANSWER_CACHE_SIZE or self._answer_bytes + size > ANSWER_CACHE_BYTES:
            self._answers.clear()
            self._answer_bytes = 0
        self._answers[key] = entry
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

    async def _generate(
        self,
        call: _Call,
        endpoint: str,
        body: bytes,
        receive: Receive,
        send: Send,
        rid: str,
        loop: asyncio.AbstractEventLoop,
    ) -> str:
        """A call that generates an answer: admitted by the provider limits, then served or faulted."""
        answer, cap = self._answer_for(endpoint, body)
        verdict = self.limits.admit(
            input_tokens=answer.completion.input_tokens, output_estimate=cap, now=monotonic()
        )
        if not verdict.admitted:
            return await self._refuse(send, verdict, rid, call.dialect)
        status = "500"
        try:
            status = await self._serve(call, answer, body, receive, send, rid, loop)
            return status
        finally:
            generated = answer.completion.output_tokens if status == "200" else 0
            self.limits.release(output_estimate=cap, output_tokens=generated, now=monotonic())

    async def _refuse(self, send: Send, verdict: Verdict, rid: str, dialect: str) -> str:
        """A call the provider limits turned away: 529 overloaded, or 429 with when to retry."""
        if verdict.status == 529:
            return await self._error(send, 529, "overloaded_error", "Overloaded", rid, dialect=dialect)
        kind = "rate_limit_error"
        if dialect == OPENAI and verdict.bucket != "requests":
            kind = "rate_limit_tokens"
        message = verdict.message(self.config.limits)
        extra = retry_after_headers(verdict.retry_after_s)
        return await self._error(send, 429, kind, message, rid, extra, dialect=dialect)

    async def _serve(
        self,
        call: _Call,
        answer: Answer,
        body: bytes,
        receive: Receive,
        send: Send,
        rid: str,
        loop: asyncio.AbstractEventLoop,
    ) -> str:
        started = call.started
        streams = answer.streams
        dialect = call.dialect
        fault = self._fault_for(call, body)
        if fault is not None and not (fault == "stream_error" and not streams):
            self.stats.fault(fault)
            if fault == "429":
                extra = retry_after_headers(retry_after_s(self.config.time_scale))
                message = "Number of requests exceeded"
                return await self._error(send, 429, "rate_limit_error", message, rid, extra, dialect=dialect)
            if fault == "529":
                return await self._error(send, 529, "overloaded_error", "Overloaded", rid, dialect=dialect)
            if fault == "500":
                return await self._error(
                    send, 500, "api_error", "Internal server error", rid, dialect=dialect
                )
            if fault == "stall":
                await self._wait_until(loop, started + stall_cap_s(self.config.time_scale), receive)
                message = "mock stall ended without an answer"
                return await self._error(send, 500, "api_error", message, rid, dialect=dialect)
        record, plan = self._plan(answer)
        plan = plan.stretched(self.limits.slowdown())
        call.answer = answer
        if streams:
            self.stats.streams += 1
            status = await self._stream(call, answer, plan, receive, send, rid, loop, fault)
        elif fault in MIDSTREAM_KINDS:
            return await self._faulty_body(call, answer, plan, receive, send, rid, loop, fault)
        else:
            remaining = started + plan.total_s - loop.time()
            if remaining > 0:
                await asyncio.sleep(remaining)
            await self._respond(
                send, 200, answer.message_body(answer.id_prefix + self._ids.next()), rid, dialect=dialect
            )
            self.stats.delay(injected_s=plan.total_s, observed_s=perf_counter() - call.clock_start)
            status = "200"
        if record is not None and fault is None and self.replayer is not None:
            first = None if call.first_delta is None else call.first_delta - call.clock_start
            self.replayer.observe(record, ttft_s=first, total_s=perf_counter() - call.clock_start)
        return status

    def _plan(self, answer: Answer) -> tuple[TimingRecord | None, LatencyPlan]:
        """This call's delays: the next record of a replay, or a draw from the profile."""
        if self.replayer is not None:
            return self.replayer.next_call()
        plan = plan_latency(
            self.profile,
            output_tokens=answer.completion.output_tokens,
            time_scale=self.config.time_scale,
            rng=self._latency_rng,
        )
        return None, plan

    async def _stream(
        self,
        call: _Call,
        answer: Answer,
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
        call_id = answer.id_prefix + self._ids.next()  # every chunk or event of this stream carries it
        events = answer.stream_deltas(groups, call_id)
        times = delta_times(len(events), plan)
        if fault == "slow_drip":
            gap = drip_gap_s(self.config.time_scale)
            times = [plan.ttft_s + i * gap for i in range(len(events))]
        headers = self._headers(rid, protocol.SSE_TYPE, protocol.NO_CACHE, dialect=call.dialect)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        call.responded = True
        more = {"type": "http.response.body", "body": answer.stream_start(call_id), "more_body": True}
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
                    await self._break_off(fault, send, watch, loop, answer.stream_error(index))
                    return "200"
                await send({"type": "http.response.body", "body": event, "more_body": True})
                if index == 0:
                    call.first_delta = perf_counter()
            if not events:  # an empty answer (a stop sequence at its very start) still takes its time
                remaining = started + plan.total_s - loop.time()
                if remaining > 0:
                    await sleep(remaining)
            if fail_midway:
                await send({"type": "http.response.body", "body": answer.stream_error(len(events))})
                return "200"
            await send({"type": "http.response.body", "body": answer.stream_finish(call_id, len(events))})
            self.stats.delay(injected_s=plan.total_s, observed_s=perf_counter() - call.clock_start)
            return "200"
        finally:
            if not watch.done():
                watch.cancel()

    async def _break_off(
        self,
        fault: str | None,
        send: Send,
        watch: asyncio.Task[Any],
        loop: asyncio.AbstractEventLoop,
        error_event: bytes,
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
        await send({"type": "http.response.body", "body": error_event})

    async def _faulty_body(
        self,
        call: _Call,
        answer: Answer,
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
        body = answer.message_body(answer.id_prefix + self._ids.next())
        if fault == "truncated":  # framed as whole: only the JSON says it is cut
            body = body[: len(body) // 2]
        length = (b"content-length", str(len(body)).encode())
        headers = self._headers(rid, protocol.JSON_TYPE, length, dialect=call.dialect)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        call.responded = True
        if fault == "truncated":
            await send({"type": "http.response.body", "body": body})
            return "200"
        watch = loop.create_task(receive())
        try:
            if fault != "slow_drip":
                await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
                await self._break_off(fault, send, watch, loop, answer.stream_error(0))
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
            error = call.answer.stream_error(0) if call.answer is not None else protocol.STREAM_ERROR_EVENT
            await send({"type": "http.response.body", "body": error})
            return "200"
        rid = "req_" + self._ids.next()
        message = "mock_llm is shutting down"
        return await self._error(send, 529, "overloaded_error", message, rid, dialect=call.dialect)

    # ---- responses ---------------------------------------------------------------------------------------
    def _headers(
        self, rid: str, *extra: tuple[bytes, bytes], dialect: str = ANTHROPIC
    ) -> list[tuple[bytes, bytes]]:
        """The request id under the API's header name, and its rate-limit headers (live when limited)."""
        if dialect == OPENAI:
            return [*extra, (b"x-request-id", rid.encode()), *self._ratelimit_headers(OPENAI)]
        return [*extra, (b"request-id", rid.encode()), *self._ratelimit_headers(ANTHROPIC)]

    def _ratelimit_headers(self, dialect: str) -> list[tuple[bytes, bytes]]:
        if not self.limits.buckets:
            return self._static_ratelimit[dialect]
        states = self.limits.states(monotonic())
        if dialect == OPENAI:
            return openai_headers(states)
        return anthropic_headers(states, wall_now=time.time())

    async def _respond(
        self,
        send: Send,
        status: int,
        body: bytes,
        rid: str,
        extra: list[tuple[bytes, bytes]] | None = None,
        *,
        dialect: str = ANTHROPIC,
    ) -> str:
        length = (b"content-length", str(len(body)).encode())
        headers = self._headers(rid, protocol.JSON_TYPE, length, dialect=dialect)
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
        *,
        dialect: str = ANTHROPIC,
    ) -> str:
        """The API's error envelope; on the OpenAI endpoints OpenAI's, and 503 where the Messages API says
        529 (overloaded)."""
        if dialect == OPENAI:
            if status == 529:
                status = openai_protocol.OVERLOADED_STATUS
            body = openai_protocol.error_body(error_type, message)
        else:
            body = protocol.error_body(error_type, message, rid)
        return await self._respond(send, status, body, rid, extra, dialect=dialect)

    async def _too_large(self, send: Send, rid: str, dialect: str = ANTHROPIC) -> str:
        limit = f"request body is over the {MAX_BODY_BYTES // (1024 * 1024)} MB limit"
        close = [(b"connection", b"close")]
        return await self._error(send, 413, "request_too_large", limit, rid, close, dialect=dialect)
