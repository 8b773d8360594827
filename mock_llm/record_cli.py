"""``python -m mock_llm record``: parse flags, bind the port, serve the recording proxy with uvicorn."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from mock_llm.cli import PortInUse, _port, bind_socket
from mock_llm.config import DEFAULT_HOST
from mock_llm.record import RecordingProxy, TraceWriter

DESCRIPTION = """\
A pass-through proxy to a real LLM API that writes one record per generation call (time to first token,
whole call, output tokens, tokens per second) for `python -m mock_llm --profile replay:FILE`. Point your
SDK at it (ANTHROPIC_BASE_URL=http://HOST:PORT, or OPENAI_BASE_URL=http://HOST:PORT/v1): every request
goes upstream unchanged and every answer comes back as it arrives. Streamed calls give the real time to
first token; a non-streamed call's is the first byte of its body."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see python -m mock_llm record --help)\n")


def _upstream(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"expected an http(s):// URL, got {text!r}")
    return text.rstrip("/")


def _out(text: str) -> Path:
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"no directory {str(path.parent)!r} to write {path.name!r} in")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mock_llm record", description=DESCRIPTION)
    parser.add_argument(
        "--upstream",
        type=_upstream,
        required=True,
        metavar="URL",
        help="the API to record, e.g. https://api.anthropic.com or https://api.openai.com (paths pass "
        "through unchanged)",
    )
    parser.add_argument(
        "--out",
        type=_out,
        required=True,
        metavar="FILE",
        help="where to write the records: CSV if FILE ends in .csv, else JSONL (overwritten)",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=_port, required=True, help="TCP port to listen on (required)")
    return parser


def serve(proxy: RecordingProxy, sock: socket.socket) -> None:
    import uvicorn

    # As the mock does: uvicorn re-raises the signal that stopped it once the stop is done (then nothing is
    # left to do); one that comes before uvicorn's handlers are in place stops the process at once.
    serving = [False]

    def on_sigterm(signum: int, frame: object) -> None:
        if not serving[0]:
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)

    class _Server(uvicorn.Server):
        async def _serve(self, sockets: list[socket.socket] | None = None) -> None:
            serving[0] = True
            await super()._serve(sockets)

    config = uvicorn.Config(
        proxy,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    logging.getLogger("mock_llm.record").setLevel(logging.WARNING)
    _Server(config).run(sockets=[sock])


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    try:
        sock = bind_socket(args.host, args.port)
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        writer = TraceWriter(args.out)
    except OSError as exc:
        sock.close()
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(
        f"mock_llm record listening on http://{args.host}:{args.port}, forwarding to {args.upstream}, "
        f"writing {args.out}",
        flush=True,
    )
    try:
        serve(RecordingProxy(upstream=args.upstream, writer=writer), sock)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        writer.close()
    print(f"mock_llm record: {writer.count} calls written to {args.out}", flush=True)
    return 0
