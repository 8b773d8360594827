"""The chat WebSocket behaves the same on every variant: one message size limit (close 1009, also for a
compressed message that inflates past it), binary frames refused with an error frame, the rate limit
checked per message, and an idle connection closed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from serverkit import TOKEN, AllVariants, ServerSpec, fleet
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from servers.limits import MAX_WS_MESSAGE_BYTES
from servers.variants import get_variant

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _open(port: int, **kwargs: Any) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{port}/ws/chat", open_timeout=15, additional_headers=AUTH, **kwargs)


def _answer(ws: ClientConnection) -> dict[str, Any]:
    """Frames up to the final JSON frame; returns that frame."""
    while True:
        frame = str(ws.recv(timeout=30))
        if frame.startswith("{") and json.loads(frame).get("type") in ("done", "error"):
            return dict(json.loads(frame))


def _limits(port: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with _open(port) as ws:
        ws.send(b"\x00binary question")
        out["binary"] = _answer(ws)
        ws.send("A text question after the binary one.")
        out["after_binary"] = _answer(ws)["type"]
        ws.send(b"")  # an empty binary frame is still binary (Quart hands it over as None)
        out["empty_binary"] = _answer(ws)["detail"]
    with _open(port) as ws:  # compressed on the wire (permessage-deflate): tiny, until inflated
        ws.send("x" * (MAX_WS_MESSAGE_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
        out["too_big"] = closed.value.rcvd.code if closed.value.rcvd else None
    with _open(port, compression=None) as ws:
        ws.send("y" * MAX_WS_MESSAGE_BYTES)  # exactly the limit: a (too long) message, not a close
        out["at_limit"] = _answer(ws)["status"]
    return out


def _chat_ports(all_variants: AllVariants) -> dict[str, int]:
    return {v: port for v, port in all_variants.ports.items() if get_variant(v).supports("chat")}


def test_size_limit_and_binary_frames_on_every_variant(all_variants: AllVariants) -> None:
    ports = _chat_ports(all_variants)
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        results = dict(zip(ports, pool.map(_limits, ports.values()), strict=True))
    for variant, out in results.items():
        assert out["binary"]["type"] == "error" and out["binary"]["status"] == 422, (variant, out)
        assert "text" in out["binary"]["detail"], (variant, out)
        assert out["after_binary"] == "done", (variant, out)
        assert out["empty_binary"].startswith("Binary frames"), (variant, out)
        assert out["too_big"] == 1009, (variant, out)
        assert out["at_limit"] == 422, (variant, out)
    assert len({json.dumps(out, sort_keys=True) for out in results.values()}) == 1  # identical everywhere


IDLE_S = 1.0
RATE = 3  # per minute: the handshake and two messages


@pytest.fixture(scope="module")
def chat_ports(servers_log_dir: Path) -> Iterator[dict[str, int]]:
    env = {"BENCH_WS_IDLE_TIMEOUT_S": str(IDLE_S), "BENCH_RATE_LIMIT": f"{RATE}/minute"}
    with fleet(servers_log_dir) as group:
        mock = group.mock("chat", "--profile", "instant")
        ports = {
            v: group.server(f"chat-{v}", ServerSpec(variant=v, upstream_port=mock, env=env, workers=1))
            for v in ("flask-sync", "fastapi-async", "quart-async")
        }
        group.wait_ready()
        yield ports


def test_rate_limit_is_checked_per_message(chat_ports: dict[str, int]) -> None:
    for variant, port in chat_ports.items():
        with _open(port) as ws:  # the handshake is request 1
            finals = []
            for i in range(RATE):
                ws.send(f"Question number {i}, please answer.")
                finals.append(_answer(ws))
        assert [f["type"] for f in finals] == ["done", "done", "error"], (variant, finals)
        assert finals[-1]["status"] == 429 and finals[-1]["error"] == "rate_limited", (variant, finals)


def test_idle_connection_is_closed(chat_ports: dict[str, int]) -> None:
    for variant, port in chat_ports.items():
        other = {"Authorization": "Bearer tok-other"}  # a budget of its own
        with connect(f"ws://127.0.0.1:{port}/ws/chat", open_timeout=15, additional_headers=other) as ws:
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=IDLE_S + 10)
            took = time.monotonic() - started
        assert closed.value.rcvd is not None, variant
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "idle timeout"), variant
        assert IDLE_S * 0.9 <= took < IDLE_S + 5, (variant, took)


def test_a_refused_or_impossible_handshake_is_never_a_500(all_variants: AllVariants) -> None:
    """A bad token is a 401 before the handshake where the server can send one (the ASGI denial
    extension, or WSGI); gunicorn's asgi worker can only refuse with the ASGI spec's 403. A server that
    cannot upgrade at all (granian's WSGI) answers a valid handshake 501. The registry says which."""
    for variant, port in all_variants.ports.items():
        spec = get_variant(variant)
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{port}/ws/chat?token=wrong", open_timeout=15).close()
        assert refused.value.response.status_code == spec.ws_refusal_status, variant
        if not spec.supports("chat"):
            with pytest.raises(InvalidStatus) as unsupported:
                _open(port).close()
            assert unsupported.value.response.status_code == 501, variant
            assert json.loads(unsupported.value.response.body or b"{}")["error"] == "websocket_unsupported"
