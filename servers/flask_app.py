"""The Flask adapter: translates HTTP to :class:`servers.service.Core` calls and back, nothing more.

``async_views=True`` is the flask-async-views variant: the upstream-calling views are ``async def``
(Flask runs each in its own event loop inside the worker, via asgiref), using an AsyncAnthropic client
made per request because a client's connection pool cannot outlive the event loop it was made in.
The stream and WebSocket views stay synchronous in every Flask variant: Flask cannot serve an async
generator, and flask-sock is synchronous.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Flask, Response, request
from flask_sock import ConnectionClosed, Sock
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing.exceptions import WebsocketMismatch

from servers import upstream
from servers.errors import ApiError, ValidationFailed, http_error, websocket_unsupported
from servers.gate import too_large
from servers.jsonio import JSON_MEDIA_TYPE, render
from servers.limits import MAX_BODY_BYTES, MAX_WS_MESSAGE_BYTES, WS_IDLE_CLOSE_CODE
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
    run_job_sync,
)
from servers.settings import Settings
from servers.tracing import TracingWSGI
from servers.validation import parse_body, validate_request
from servers.wsgi_gate import WsgiGate

STREAM_MEDIA_TYPE = "text/plain; charset=utf-8"


def _json(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status=status, headers=dict(headers or {}), content_type=JSON_MEDIA_TYPE)


def create_app(settings: Settings, *, async_views: bool = False) -> Flask:
    app = Flask("servers")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # Routing corner cases, body size and JSON shape are the gate's, shared with FastAPI (servers.gate);
    # the gate is the outermost layer there too.
    app.wsgi_app = WsgiGate(TracingWSGI(app.wsgi_app))  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES  # a second line behind the gate's limit
    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": MAX_WS_MESSAGE_BYTES}  # as uvicorn's
    sock = Sock(app)
    core = Core(settings)
    client = upstream.sync_client(settings)
    framework = "flask"

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return _json(exc.body(), exc.status, exc.headers)

    @app.errorhandler(ValidationFailed)
    def _validation(exc: ValidationFailed) -> Response:
        return _json(exc.body(), 422)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        if isinstance(exc, WebsocketMismatch):
            status = 404  # a plain HTTP request to the WebSocket route: Starlette says 404 too
        headers: dict[str, str] = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        error = http_error(status, None if status in (400, 404, 405, 413) else exc.description, headers)
        if status == 413:
            error = too_large()  # MAX_CONTENT_LENGTH's answer, worded as the gate's
        return _json(error.body(), error.status, error.headers)

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError) -> Response:
        # Input nested past the interpreter's limit (the gate refuses nesting far shallower): FastAPI's
        # answer to a body it cannot parse, never a 500.
        error = http_error(400)
        return _json(error.body(), error.status)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error")
        error = ApiError(status=500, error="internal_error", detail="Internal Server Error")
        return _json(error.body(), 500)

    def caller() -> Caller:
        return core.authorize(request.headers.get("Authorization"))

    def analyse_request() -> tuple[Caller, AnalyseRequest]:
        # FastAPI's order: decode JSON, then authenticate, then validate against the model.
        data = parse_body(request.get_data(cache=False), request.headers.get("Content-Type"))
        who = caller()
        return who, validate_request(data)

    @app.get("/health")
    def health() -> Response:
        return _json(render({"status": "ok", "framework": framework, "variant": settings.variant}))

    if async_views:

        @app.post("/analyse")
        async def analyse() -> Response:
            _, req = analyse_request()
            async with upstream.async_client(settings) as aclient:
                result = await upstream.analyse_async(aclient, req, settings)
            return _json(render(result))

        @app.post("/analyse/async")
        async def analyse_async_job() -> Response:
            return submit_job()

        @app.get("/jobs/<job_id>")
        async def get_job(job_id: str) -> Response:
            return _json(job_body(core, caller(), job_id))

    else:

        @app.post("/analyse")
        def analyse() -> Response:
            _, req = analyse_request()
            return _json(render(upstream.analyse_sync(client, req, settings)))

        @app.post("/analyse/async")
        def analyse_async_job() -> Response:
            return submit_job()

        @app.get("/jobs/<job_id>")
        def get_job(job_id: str) -> Response:
            return _json(job_body(core, caller(), job_id))

    def submit_job() -> Response:
        who, req = analyse_request()
        job_id = core.admit_job(who)
        # A thread outlives the request; under the gevent worker threading is patched: a greenlet.
        threading.Thread(target=run_job_sync, args=(core, client, job_id, req), daemon=True).start()
        return _json(job_created_body(job_id), 202)

    @app.post("/analyse/stream")
    def analyse_stream() -> Response:
        _, req = analyse_request()
        chunks = upstream.stream_sync(client, analysis_params(req, settings), settings)

        def body() -> Iterator[bytes]:
            for chunk in chunks:
                yield chunk.encode()

        return Response(body(), status=200, content_type=STREAM_MEDIA_TYPE)

    @app.before_request
    def _ws_auth() -> Response | None:
        # Authenticate the WebSocket before the handshake, so a bad token gets a plain 401 like FastAPI's.
        rule = request.url_rule
        if rule is not None and getattr(rule, "websocket", False):
            try:
                core.authorize(request.headers.get("Authorization"), request.args.get("token"))
            except ApiError as exc:
                return _json(exc.body(), exc.status, exc.headers)
            if not can_upgrade(request.environ):
                error = websocket_unsupported()
                return _json(error.body(), error.status)
        return None

    @sock.route("/ws/chat")
    def ws_chat(ws: Any) -> None:
        # The handshake was admitted (and counted) by _ws_auth; each message is counted again.
        who = core.identify(core.token_of(request.headers.get("Authorization"), request.args.get("token")))
        while True:
            try:
                message = ws.receive(timeout=settings.ws_idle_timeout_s)
            except ConnectionClosed:
                return
            if message is None:  # nothing within the idle timeout
                ws.close(reason=WS_IDLE_CLOSE_CODE, message="idle timeout")
                return
            try:
                text = chat_message(core, who, message)
                for chunk in upstream.stream_sync(client, chat_params(text, settings), settings):
                    if isinstance(chunk, upstream.StreamFailure):
                        raise chunk.error
                    ws.send(chunk)
            except ApiError as exc:
                ws.send(error_frame(exc))
                continue
            except ConnectionClosed:
                return
            except Exception:  # an error frame, never an HTTP 500 written onto the upgraded socket
                app.logger.exception("chat answer failed")
                ws.send(error_frame(internal_error()))
                continue
            ws.send(DONE_FRAME)

    return app


def can_upgrade(environ: dict[str, Any]) -> bool:
    """Whether the WSGI server hands over the raw socket flask-sock (simple-websocket) takes over: the
    keys it looks for. granian's WSGI interface has none, so a handshake there is a 501, not a 500."""
    keys = ("werkzeug.socket", "gunicorn.socket", "eventlet.input")
    return any(k in environ for k in keys) or str(environ.get("SERVER_SOFTWARE", "")).startswith("gevent")
