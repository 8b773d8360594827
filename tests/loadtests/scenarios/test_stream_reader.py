"""The stream scenario's reader on geventhttpclient's public reads, inside Locust's gevent (a subprocess,
so Locust's monkey-patching stays out of this process): the first byte is timed when it arrives, not
when the body ends, and a connection closed mid-body is an incomplete stream."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import json, socket, threading, time
from geventhttpclient import HTTPClient
from loadtests.scenarios.stream import read_streamed

def serve(srv, truncate):
    conn, _ = srv.accept()
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
    time.sleep(0.3)
    conn.sendall(b"5\r\nhello\r\n")
    time.sleep(0.6)
    if truncate:
        conn.sendall(b"6\r\n wor")
    else:
        conn.sendall(b"6\r\n world\r\n0\r\n\r\n")
        time.sleep(0.2)
    conn.close()

out = {}
for truncate in (False, True):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    threading.Thread(target=serve, args=(srv, truncate), daemon=True).start()
    client = HTTPClient("127.0.0.1", srv.getsockname()[1], network_timeout=5, connection_timeout=5)
    started = time.perf_counter()
    response = client.request("POST", "/", body=b"x")
    read = read_streamed(response, started)
    out[str(truncate)] = {"first_s": read.first_s, "total_s": time.perf_counter() - started,
                          "size": read.size, "tail": read.tail.decode(), "complete": read.complete}
    srv.close()
print(json.dumps(out))
"""


def test_the_first_byte_is_timed_on_arrival_and_a_cut_stream_is_incomplete() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    whole, cut = result["False"], result["True"]
    assert 0.25 <= whole["first_s"] < 0.7  # the first chunk came at 0.3 s, the last at 0.9 s
    assert whole["total_s"] >= 0.85 and whole["size"] == 11 and whole["tail"] == "hello world"
    assert whole["complete"] is True
    # A cut stream is incomplete (a failure, "truncated"); the parser drops the block it was filling.
    assert cut["complete"] is False and cut["first_s"] is not None and cut["size"] >= 1
