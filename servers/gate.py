"""The request gate: one framework-free screen every HTTP request passes before either framework sees it.

Routing corner cases (trailing and double slashes, HEAD, OPTIONS, over-long targets), repeated headers,
the body size limit and the JSON shape limits are decided here, once, so Flask and FastAPI answer them
identically by construction (the ASGI and WSGI wrappers in ``servers.gates`` only translate). What
the frameworks still decide (validation, auth, the routes' own answers) they decide after this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate

from servers.errors import ApiError, http_error
from servers.limits import MAX_BODY_BYTES

MAX_JSON_DEPTH = 32  # the request model is flat; deeper input only feeds recursion in parsers and renderers
MAX_TARGET_BYTES = 2048  # path + query; gunicorn refuses request lines over 4094 bytes itself

# The one route table both adapters serve (the adapters register the same paths; a test checks it).
_GET = ("GET", "HEAD")
_POST = ("POST",)
WS_PATH = "/ws/chat"
_STATIC_ROUTES: dict[str, tuple[str, ...]] = {
    "/health": _GET,
    "/analyse": _POST,
    "/analyse/stream": _POST,
    "/analyse/async": _POST,
}
_JOB_PATH = re.compile(r"^/jobs/[^/]+$")
# FastAPI's automatic docs stay (the article praises them): the one documented difference.
FASTAPI_DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# A run of JSON strings (with the bracket-free text between them), or (group 1) what follows the opening
# quote of one that never closes. Possessive loops and an end that always matches make each attempt one
# pass without backtracking, and an unterminated string is consumed to the end at once: linear in the
# body. (The former `"(?:[^"\\]|\\.)*"` failed on an unterminated string and was retried from every
# escaped quote after it: quadratic, hours for 1 MiB.)
_STRING = re.compile(
    rb'(?:"[^"\\]*+(?:\\.[^"\\]*+)*+"[^"\\\[\]{}]*+)++|"([^"\\]*+(?:\\.[^"\\]*+)*+\\?\Z)', re.DOTALL
)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DEPTH_STEP = [0] * 256
_DEPTH_STEP[ord("[")] = _DEPTH_STEP[ord("{")] = 1
_DEPTH_STEP[ord("]")] = _DEPTH_STEP[ord("}")] = -1
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True, kw_only=True)
class Admitted:
    """A request the frameworks may see: ``method`` is GET for a HEAD (the server drops the body)."""

    method: str
    reads_body: bool


def allowed_methods(path: str, extra_paths: frozenset[str] = frozenset()) -> tuple[str, ...] | None:
    """The methods a path answers, or None for a path no route serves."""
    if path in _STATIC_ROUTES:
        return _STATIC_ROUTES[path]
    if _JOB_PATH.match(path) or path in extra_paths:
        return _GET
    return None


def screen_request(
    *,
    method: str,
    path: str,
    target_bytes: int,
    content_length: str | None,
    extra_paths: frozenset[str] = frozenset(),
) -> Admitted:
    """Decide what the request line and framing headers alone decide; raise ApiError otherwise."""
    if target_bytes > MAX_TARGET_BYTES:
        raise uri_too_long()
    if path == WS_PATH:
        raise http_error(404)  # a plain HTTP request to the WebSocket route (upgrades never get here)
    methods = allowed_methods(path, extra_paths)
    if methods is None:
        raise http_error(404)
    if method not in methods:
        raise http_error(405, headers={"Allow": ", ".join(methods)})
    if content_length is not None:
        declared = content_length.strip()
        if not declared.isdigit():
            raise http_error(400, f"Content-Length {content_length!r} is not a whole number")
        if int(declared) > MAX_BODY_BYTES:
            raise too_large()
    return Admitted(method="GET" if method == "HEAD" else method, reads_body=method == "POST")


def asks_for_websocket(upgrade: str | None, connection: str | None) -> bool:
    """``Upgrade: websocket`` with an ``upgrade`` token in ``Connection``: what makes a server (uvicorn,
    Werkzeug) treat a request as a WebSocket handshake, whatever its method or body."""
    if (upgrade or "").strip(" \t").lower() != "websocket":
        return False
    return any(token.strip(" \t") == "upgrade" for token in (connection or "").lower().split(","))


def has_body(content_length: str | None, transfer_encoding: str | None) -> bool:
    return bool(transfer_encoding) or (content_length or "0").strip() not in ("", "0")


def bad_handshake(
    *, method: str, upgrade: str | None, connection: str | None, content_length: str | None,
    transfer_encoding: str | None,
) -> ApiError | None:  # fmt: skip
    """400 for a request that asks for a WebSocket but is no handshake (RFC 6455 4.1-4.2: a GET without a
    body), on every server alike. uvicorn handed one with a body to its WebSocket parser, which refused it
    and never answered: the connection hung until the client gave up."""
    if not asks_for_websocket(upgrade, connection):
        return None
    if method == "GET" and not has_body(content_length, transfer_encoding):
        return None
    return not_a_handshake()


def not_a_handshake() -> ApiError:
    return http_error(
        400, "A WebSocket handshake is a GET with no body (RFC 6455)", headers={"Connection": "close"}
    )


def uri_too_long() -> ApiError:
    return ApiError(
        status=414,
        error="uri_too_long",
        detail=f"Request target too long: keep the path and query under {MAX_TARGET_BYTES} bytes",
        headers={"Connection": "close"},
    )


def too_large() -> ApiError:
    return ApiError(
        status=413,
        error="payload_too_large",
        detail=f"Request body too large: at most {MAX_BODY_BYTES} bytes",
        headers={"Connection": "close"},  # the rest of the body is never read
    )


def repeated_header(name: str) -> ApiError:
    return http_error(400, f"Header {name} given more than once: send it once")


class BodyBuffer:
    """Collects a body chunk by chunk; 413 as soon as it grows past the limit (chunked bodies declare
    no size, and a declared size may lie)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > MAX_BODY_BYTES:
            raise too_large()
        self._parts.append(chunk)

    def value(self) -> bytes:
        return b"".join(self._parts)


def read_limited(chunks: Iterable[bytes]) -> bytes:
    buffer = BodyBuffer()
    for chunk in chunks:
        buffer.add(chunk)
    return buffer.value()


def too_deep(body: bytes) -> bool:
    """Whether arrays and objects nest deeper than the limit. Brackets inside strings do not count; after
    a string that never closes, every bracket counts (the answers of the former screen, exactly)."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False  # cannot nest deeper than it has brackets: the usual body costs two counts
    outside = b"".join(filter(None, _STRING.split(body)))  # split keeps group 1: an unclosed string's rest
    brackets = outside.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > MAX_JSON_DEPTH


def screen_json_body(body: bytes) -> bytes:
    """400 for nesting beyond the limit; bytes that are no UTF-8 become JSON ``\\udcXX`` escapes.

    The escapes keep the field that held the bad bytes nameable: the model's validator then answers
    422 for that field, as it does for an escaped lone surrogate, instead of a 400 for the whole body.
    """
    if too_deep(body):
        raise http_error(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "surrogateescape")
        return _ESCAPED_BYTE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")
    return body


def joined_headers(headers: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """Repeated fields joined with a comma (RFC 9110 5.3), as gunicorn's WSGI environ has them, so both
    frameworks read the same value; a repeated singleton (Host, Content-Type) is refused with 400."""
    seen: dict[str, list[str]] = {}
    order: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key in seen:
            if key in _SINGLETONS:
                raise repeated_header(_SINGLETONS[key])
            seen[key].append(value)
        else:
            seen[key] = [value]
            order.append(key)
    for key in order:
        yield key, ",".join(seen[key])


_SINGLETONS: Mapping[str, str] = {
    "host": "Host",
    "content-type": "Content-Type",
    "content-length": "Content-Length",
}
