"""The request gate (``servers.gate``) as WSGI middleware in front of the Flask app."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from servers.errors import ApiError
from servers.gate import (
    WS_PATH,
    asks_for_websocket,
    bad_handshake,
    has_body,
    read_limited,
    screen_json_body,
    screen_request,
)
from servers.jsonio import JSON_MEDIA_TYPE
from servers.validation import is_json_content_type

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
CHUNK_BYTES = 64 * 1024


def is_websocket_handshake(environ: dict[str, Any]) -> bool:
    """Whether Flask will really serve this request as flask-sock's WebSocket handshake, the one request the
    gate lets through unscreened: a GET of the WebSocket route carrying both ``Upgrade: websocket`` and
    an ``upgrade`` token in ``Connection`` (Werkzeug's own test, in ``Map.bind_to_environ``). Anything
    less is plain HTTP to Werkzeug, and gets the gate's body limit and screens like any request."""
    if environ.get("REQUEST_METHOD") != "GET" or environ.get("PATH_INFO") != WS_PATH:
        return False
    if has_body(environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING")):
        return False  # refused by bad_handshake, as on every server
    return asks_for_websocket(environ.get("HTTP_UPGRADE"), environ.get("HTTP_CONNECTION"))


def error_answer(error: ApiError, start_response: StartResponse) -> list[bytes]:
    body = error.body()
    headers = [("Content-Type", JSON_MEDIA_TYPE), ("Content-Length", str(len(body))), *error.headers.items()]
    start_response(f"{error.status} {HTTPStatus(error.status).phrase}", headers)
    return [body]


class WsgiGate:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if is_websocket_handshake(environ):
            return self.app(environ, start_response)  # flask-sock's own, after the app's token check
        try:
            refused = bad_handshake(
                method=environ["REQUEST_METHOD"], upgrade=environ.get("HTTP_UPGRADE"),
                connection=environ.get("HTTP_CONNECTION"), content_length=environ.get("CONTENT_LENGTH"),
                transfer_encoding=environ.get("HTTP_TRANSFER_ENCODING"),
            )  # fmt: skip
            if refused is not None:
                raise refused
            query = environ.get("QUERY_STRING", "")
            raw_path = environ.get("RAW_URI", "").split("?", 1)[0] or environ.get("PATH_INFO", "")
            # gunicorn has already joined repeated fields and refused repeated singletons itself.
            admitted = screen_request(
                method=environ["REQUEST_METHOD"],
                path=environ.get("PATH_INFO", ""),
                target_bytes=len(raw_path.encode("latin-1")) + (len(query) + 1 if query else 0),
                content_length=environ.get("CONTENT_LENGTH") or None,
                extra_paths=frozenset(),
            )
            if admitted.reads_body:
                stream = environ["wsgi.input"]
                body = read_limited(iter(lambda: stream.read(CHUNK_BYTES), b""))
                if is_json_content_type(environ.get("CONTENT_TYPE")):
                    body = screen_json_body(body)
                environ["wsgi.input"] = io.BytesIO(body)
                environ["CONTENT_LENGTH"] = str(len(body))
                environ["wsgi.input_terminated"] = True
                environ.pop("HTTP_TRANSFER_ENCODING", None)
        except ApiError as exc:
            return error_answer(exc, start_response)
        return self.app(environ, start_response)
