"""The chat scenario's WebSocket client against a real WebSocket server (websockets, in a thread): whole
and fragmented messages, pings, timeouts, a server's close and a refused handshake, plainly and under
gevent's monkey-patching as inside Locust."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection, serve

from loadtests.driver.processes import LOOPBACK, free_port
from loadtests.scenarios.wsclient import WebSocket

REPO = Path(__file__).resolve().parents[3]


def _handler(ws: ServerConnection) -> None:
    if ws.request is not None and ws.request.path.startswith("/refuse"):
        return
    for message in ws:
        if message == "whole":
            ws.send("one piece")
        elif message == "fragments":
            ws.send(["frag", "men", "ted"])  # a text message in three frames (continuations)
        elif message == "ping-first":
            ws.ping(b"are you there")
            ws.send("after the ping")
        elif message == "close":
            ws.close()
            return
        # "silence": no answer, for the timeout


@pytest.fixture(scope="module")
def ws_port() -> Iterator[int]:
    port = free_port()

    def refuse(_conn: ServerConnection, request: object) -> object:
        if getattr(request, "path", "").startswith("/refuse"):
            return _conn.respond(401, "no\n")
        return None

    with serve(_handler, LOOPBACK, port, process_request=refuse) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield port
        server.shutdown()


def test_messages_whole_fragmented_and_after_a_ping(ws_port: int) -> None:
    ws = WebSocket(LOOPBACK, ws_port, "/chat", timeout=5)
    try:
        for sent, expected in (
            ("whole", b"one piece"),
            ("fragments", b"fragmented"),
            ("ping-first", b"after the ping"),
        ):
            ws.send_text(sent)
            assert ws.recv() == (1, expected)
    finally:
        ws.close()


def test_silence_times_out_and_a_close_is_a_connection_error(ws_port: int) -> None:
    ws = WebSocket(LOOPBACK, ws_port, "/chat", timeout=0.3)
    ws.send_text("silence")
    with pytest.raises(TimeoutError):
        ws.recv()
    ws.close()
    ws = WebSocket(LOOPBACK, ws_port, "/chat", timeout=5)
    ws.send_text("close")
    with pytest.raises(ConnectionError, match="closed"):
        ws.recv()
    ws.close()
    assert ws.conn.sock is None  # the socket is gone, not left open after the server's close


def test_a_refused_handshake_and_no_listener(ws_port: int) -> None:
    with pytest.raises(ConnectionError, match="HTTP 401"):
        WebSocket(LOOPBACK, ws_port, "/refuse", timeout=5)
    with pytest.raises(OSError):
        WebSocket(LOOPBACK, free_port(), "/chat", timeout=5)


def test_the_client_works_under_gevent(ws_port: int) -> None:
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "from loadtests.scenarios.wsclient import WebSocket\n"
        f"ws = WebSocket('{LOOPBACK}', {ws_port}, '/chat', timeout=5)\n"
        "ws.send_text('fragments'); print(ws.recv()); ws.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, b'fragmented')"
