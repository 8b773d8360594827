"""The FastAPI adapter: translates HTTP to :class:`servers.service.Core` calls and back, nothing more.

``mode`` is the one code path the FastAPI variants differ in:
- ``async``: ``async def`` endpoints awaiting AsyncAnthropic (fastapi-async, fastapi-workers);
- ``def``: plain ``def`` endpoints with the sync client, run by Starlette in anyio's 40-thread pool;
- ``blocking``: ``async def`` endpoints calling the sync client, blocking the event loop (the classic bug).
Body validation is FastAPI's own; errors are rendered by the shared core so Flask answers identically.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from servers import upstream
from servers.asgi_gate import AsgiGate
from servers.errors import ApiError, ValidationFailed, http_error
from servers.gate import FASTAPI_DOC_PATHS
from servers.jsonio import JSON_MEDIA_TYPE, render
from servers.limits import (
    WS_IDLE_CLOSE_CODE,
    WS_POLICY_CLOSE_CODE,
    WS_TOO_BIG_CLOSE_CODE,
    ws_message_too_big,
)
from servers.models import AnalyseRequest, AnalyseResponse, ErrorBody, JobCreated, JobView
from servers.prompts import analysis_params, chat_params
from servers.service import (
    DONE_FRAME,
    Caller,
    Core,
    chat_message,
    error_frame,
    internal_error,
    job_body,
    job_created_body,
    run_job_async,
    run_job_sync,
)
from servers.settings import Settings
from servers.tracing import TracingASGI
from servers.validation import jsonable_errors

Mode = Literal["async", "def", "blocking"]
STREAM_MEDIA_TYPE = "text/plain; charset=utf-8"
WS_DENIAL_EXTENSION = "websocket.http.response"  # ASGI's WebSocket Denial Response extension
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    429: {"model": ErrorBody},
    502: {"model": ErrorBody},
    503: {"model": ErrorBody},
    504: {"model": ErrorBody},
}


async def _caller(request: Request) -> Caller:
    # async def: runs on the loop in every mode (one tiny SQLite write), never costs a thread hop.
    core: Core = request.app.state.core
    return core.authorize(request.headers.get("authorization"))


Authed = Annotated[Caller, Depends(_caller)]


def _json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=body, status_code=status, headers=headers, media_type=JSON_MEDIA_TYPE)


def create_app(settings: Settings, *, mode: Mode = "async") -> FastAPI:
    # No slash redirects: a path is served exactly as routed, as in Flask (the gate answers the rest).
    app = FastAPI(title="LLM analysis server (FastAPI)", version="1.0", redirect_slashes=False)
    app.add_middleware(TracingASGI)  # type: ignore[arg-type]
    app.add_middleware(AsgiGate, extra_paths=FASTAPI_DOC_PATHS)  # added last: the outermost
    core = Core(settings)
    app.state.core = core
    client = upstream.sync_client(settings)
    aclient = upstream.async_client(settings)
    background: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return _json(exc.body(), exc.status, dict(exc.headers))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return _json(ValidationFailed(errors=jsonable_errors(exc.errors())).body(), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if exc.status_code == 400 else None
        error = http_error(exc.status_code, detail, exc.headers)
        return _json(error.body(), error.status, dict(error.headers))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        error = ApiError(status=500, error="internal_error", detail="Internal Server Error")
        return _json(error.body(), 500)

    @app.get("/health")
    async def health() -> Response:
        return _json(render({"status": "ok", "framework": "fastapi", "variant": settings.variant}))

    analyse_doc: dict[str, Any] = {"responses": {200: {"model": AnalyseResponse}, **_ERRORS}}
    job_doc: dict[str, Any] = {"status_code": 202, "responses": {202: {"model": JobCreated}, **_ERRORS}}
    poll_doc: dict[str, Any] = {"responses": {200: {"model": JobView}, 404: {"model": ErrorBody}, **_ERRORS}}
    stream_doc: dict[str, Any] = {"response_class": StreamingResponse, "responses": _ERRORS}

    def start_job(job_id: str, req: AnalyseRequest) -> None:
        if mode == "async":
            task = asyncio.get_running_loop().create_task(run_job_async(core, aclient, job_id, req))
        elif mode == "blocking":

            async def blocking_job() -> None:
                run_job_sync(core, client, job_id, req)  # blocks the loop, as the variant's bug does

            task = asyncio.get_running_loop().create_task(blocking_job())
        else:
            threading.Thread(target=run_job_sync, args=(core, client, job_id, req), daemon=True).start()
            return
        background.add(task)
        task.add_done_callback(background.discard)

    if mode == "async":

        @app.post("/analyse", **analyse_doc)
        async def analyse(req: AnalyseRequest, _: Authed) -> Response:
            return _json(render(await upstream.analyse_async(aclient, req, settings)))

        @app.post("/analyse/stream", **stream_doc)
        async def analyse_stream(req: AnalyseRequest, _: Authed) -> Response:
            chunks = await upstream.stream_async(aclient, analysis_params(req, settings), settings)
            return StreamingResponse(_encode_async(chunks), media_type=STREAM_MEDIA_TYPE)

        @app.post("/analyse/async", **job_doc)
        async def analyse_job(req: AnalyseRequest, who: Authed) -> Response:
            job_id = core.admit_job(who)
            start_job(job_id, req)
            return _json(job_created_body(job_id), 202)

        @app.get("/jobs/{job_id}", **poll_doc)
        async def get_job(job_id: str, who: Authed) -> Response:
            return _json(job_body(core, who, job_id))

    elif mode == "blocking":

        @app.post("/analyse", **analyse_doc)
        async def analyse(req: AnalyseRequest, _: Authed) -> Response:
            return _json(render(upstream.analyse_sync(client, req, settings)))

        @app.post("/analyse/stream", **stream_doc)
        async def analyse_stream(req: AnalyseRequest, _: Authed) -> Response:
            chunks = upstream.stream_sync(client, analysis_params(req, settings), settings)
            return StreamingResponse(_encode_blocking(chunks), media_type=STREAM_MEDIA_TYPE)

        @app.post("/analyse/async", **job_doc)
        async def analyse_job(req: AnalyseRequest, who: Authed) -> Response:
            job_id = core.admit_job(who)
            start_job(job_id, req)
            return _json(job_created_body(job_id), 202)

        @app.get("/jobs/{job_id}", **poll_doc)
        async def get_job(job_id: str, who: Authed) -> Response:
            return _json(job_body(core, who, job_id))

    else:

        @app.post("/analyse", **analyse_doc)
        def analyse(req: AnalyseRequest, _: Authed) -> Response:
            return _json(render(upstream.analyse_sync(client, req, settings)))

        @app.post("/analyse/stream", **stream_doc)
        def analyse_stream(req: AnalyseRequest, _: Authed) -> Response:
            chunks = upstream.stream_sync(client, analysis_params(req, settings), settings)
            return StreamingResponse(_encode_sync(chunks), media_type=STREAM_MEDIA_TYPE)

        @app.post("/analyse/async", **job_doc)
        def analyse_job(req: AnalyseRequest, who: Authed) -> Response:
            job_id = core.admit_job(who)
            start_job(job_id, req)
            return _json(job_created_body(job_id), 202)

        @app.get("/jobs/{job_id}", **poll_doc)
        def get_job(job_id: str, who: Authed) -> Response:
            return _json(job_body(core, who, job_id))

    async def open_chat(text: str) -> AsyncIterator[str]:
        params = chat_params(text, settings)
        if mode == "async":
            return await upstream.stream_async(aclient, params, settings)
        if mode == "blocking":
            return _as_async(upstream.stream_sync(client, params, settings))
        return iterate_in_threadpool(await run_in_threadpool(upstream.stream_sync, client, params, settings))

    @app.websocket("/ws/chat")
    async def ws_chat(websocket: WebSocket) -> None:
        try:
            who = core.authorize(websocket.headers.get("authorization"), websocket.query_params.get("token"))
        except ApiError as exc:
            # Refuse before the handshake with a plain HTTP answer, as the Flask adapter does. A server
            # without the denial-response extension (gunicorn's asgi worker) can only refuse the ASGI
            # way: a close before accept, which it answers with HTTP 403 (never a 500).
            if WS_DENIAL_EXTENSION in websocket.scope.get("extensions", {}):
                await websocket.send_denial_response(_json(exc.body(), exc.status, dict(exc.headers)))
            else:
                await websocket.close(code=WS_POLICY_CLOSE_CODE)
            return
        await websocket.accept()
        try:
            while True:
                try:
                    event = await asyncio.wait_for(websocket.receive(), settings.ws_idle_timeout_s)
                except TimeoutError:
                    await websocket.close(code=WS_IDLE_CLOSE_CODE, reason="idle timeout")
                    return
                if event["type"] == "websocket.disconnect":
                    return
                message = event["text"] if event.get("text") is not None else event.get("bytes", b"")
                if ws_message_too_big(message):  # a server that did not close it itself (granian)
                    await websocket.close(code=WS_TOO_BIG_CLOSE_CODE)
                    return
                try:
                    async for chunk in await open_chat(chat_message(core, who, message)):
                        if isinstance(chunk, upstream.StreamFailure):
                            raise chunk.error
                        await websocket.send_text(chunk)
                except ApiError as exc:
                    await websocket.send_text(error_frame(exc))
                    continue
                except WebSocketDisconnect:
                    raise
                except Exception:  # an error frame, as in the Flask adapter
                    await websocket.send_text(error_frame(internal_error()))
                    continue
                await websocket.send_text(DONE_FRAME)
        except WebSocketDisconnect:
            return

    return app


async def _encode_async(chunks: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk.encode()


def _encode_sync(chunks: Iterator[str]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk.encode()


async def _encode_blocking(chunks: Iterator[str]) -> AsyncIterator[bytes]:
    for chunk in chunks:  # each next() blocks the event loop: the bug this variant demonstrates
        yield chunk.encode()


async def _as_async(chunks: Iterator[str]) -> AsyncIterator[str]:
    for chunk in chunks:
        yield chunk
