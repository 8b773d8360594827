"""The Quart adapter: translates HTTP to :class:`servers.service.Core` calls and back, nothing more.

Quart is Flask's API made async: every view is ``async def`` and awaits AsyncAnthropic (one client per
app, as in fastapi-async); background jobs are asyncio tasks. Bodies are decoded and validated by the
shared core exactly as the Flask adapter does it (JSON, then auth, then the model), so the 422s match
FastAPI's. The request gate (``servers.asgi_gate``) is the outermost layer, as in front of FastAPI.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from quart import Quart, Response, request, websocket
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing.exceptions import WebsocketMismatch

from servers import upstream
from servers.asgi_gate import AsgiGate
from servers.errors import ApiError, ValidationFailed, http_error
from servers.jsonio import JSON_MEDIA_TYPE, render
from servers.limits import WS_IDLE_CLOSE_CODE, WS_TOO_BIG_CLOSE_CODE, ws_message_too_big
from servers.models import AnalyseRequest
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
)
from servers.settings import Settings
from servers.tracing import TracingASGI
from servers.validation import parse_body, validate_request

STREAM_MEDIA_TYPE = "text/plain; charset=utf-8"


def _json(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status=status, headers=dict(headers or {}), content_type=JSON_MEDIA_TYPE)


def create_app(settings: Settings) -> Quart:
    app = Quart("servers")
    # Quart cuts a response that takes longer than this (60 s by default) while the upstream deadline is
    # a setting: the deadline alone ends a call here, as in every other variant.
    app.config["RESPONSE_TIMEOUT"] = None
    app.asgi_app = AsgiGate(TracingASGI(app.asgi_app))  # type: ignore[method-assign]
    core = Core(settings)
    aclient = upstream.async_client(settings)
    background: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones

    @app.errorhandler(ApiError)
    async def _api_error(exc: ApiError) -> Response:
        return _json(exc.body(), exc.status, exc.headers)

    @app.errorhandler(ValidationFailed)
    async def _validation(exc: ValidationFailed) -> Response:
        return _json(exc.body(), 422)

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        if isinstance(exc, WebsocketMismatch):
            status = 404  # a plain HTTP request to the WebSocket route: Starlette says 404 too
        headers: dict[str, str] = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        error = http_error(status, None if status in (400, 404, 405, 413) else exc.description, headers)
        return _json(error.body(), error.status, error.headers)

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error")
        error = ApiError(status=500, error="internal_error", detail="Internal Server Error")
        return _json(error.body(), 500)

    def caller() -> Caller:
        return core.authorize(request.headers.get("Authorization"))

    async def analyse_request() -> tuple[Caller, AnalyseRequest]:
        # FastAPI's order: decode JSON, then authenticate, then validate against the model.
        data = parse_body(await request.get_data(cache=False), request.headers.get("Content-Type"))
        who = caller()
        return who, validate_request(data)

    @app.get("/health")
    async def health() -> Response:
        return _json(render({"status": "ok", "framework": "quart", "variant": settings.variant}))

    @app.post("/analyse")
    async def analyse() -> Response:
        _, req = await analyse_request()
        return _json(render(await upstream.analyse_async(aclient, req, settings)))

    @app.post("/analyse/stream")
    async def analyse_stream() -> Response:
        _, req = await analyse_request()
        chunks = await upstream.stream_async(aclient, analysis_params(req, settings), settings)
        return Response(_encode(chunks), status=200, content_type=STREAM_MEDIA_TYPE)

    @app.post("/analyse/async")
    async def analyse_async_job() -> Response:
        who, req = await analyse_request()
        job_id = core.admit_job(who)
        task = asyncio.get_running_loop().create_task(run_job_async(core, aclient, job_id, req))
        background.add(task)
        task.add_done_callback(background.discard)
        return _json(job_created_body(job_id), 202)

    @app.get("/jobs/<job_id>")
    async def get_job(job_id: str) -> Response:
        return _json(job_body(core, caller(), job_id))

    @app.websocket("/ws/chat")
    async def ws_chat() -> Response | None:
        try:
            who = core.authorize(websocket.headers.get("Authorization"), websocket.args.get("token"))
        except ApiError as exc:
            # A response before accept: Quart sends it as the HTTP answer to the handshake (hypercorn
            # has ASGI's WebSocket denial-response extension), a 401 like every other variant's.
            return _json(exc.body(), exc.status, exc.headers)
        await websocket.accept()
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), settings.ws_idle_timeout_s)
            except TimeoutError:
                await websocket.close(WS_IDLE_CLOSE_CODE, "idle timeout")
                return None
            if message is None:  # an empty binary frame: Quart reads `bytes or text`, both empty
                message = b""
            if ws_message_too_big(message):  # hypercorn closes it first; kept for any other server
                await websocket.close(WS_TOO_BIG_CLOSE_CODE)
                return None
            await _answer(message, who)

    async def _answer(message: str | bytes, who: Caller) -> None:
        try:
            params = chat_params(chat_message(core, who, message), settings)
            async for chunk in await upstream.stream_async(aclient, params, settings):
                if isinstance(chunk, upstream.StreamFailure):
                    raise chunk.error
                await websocket.send(chunk)
        except ApiError as exc:
            await websocket.send(error_frame(exc))
            return
        except Exception:  # an error frame, as in the other adapters
            app.logger.exception("chat answer failed")
            await websocket.send(error_frame(internal_error()))
            return
        await websocket.send(DONE_FRAME)

    return app


async def _encode(chunks: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk.encode()
