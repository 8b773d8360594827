"""``python -m mock_llm``: parse flags, bind the port, serve the mock with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import resource
import signal
import socket
import sys
from collections.abc import Sequence
from typing import NoReturn

from mock_llm.config import DEFAULT_HOST, DEFAULT_PROFILE, MAX_TIME_SCALE, MockConfig
from mock_llm.faults import DEFAULT_KINDS, FAULT_KINDS, drip_gap_s, parse_kinds, stall_cap_s
from mock_llm.limits import LimitConfig
from mock_llm.profiles import PROFILES, REPLAY_PREFIX, get_profile

DESCRIPTION = """\
A latency- and fault-injecting imitation of the Anthropic Messages API. The official anthropic SDK talks to it
unchanged via base_url, and the openai SDK its /v1/chat/completions and /v1/responses (base_url ending in
/v1). Ready when GET /health answers 200. GET /mock/stats shows the in-flight gauge and counters; POST
/mock/reset with the header x-mock-control: 1 zeroes them. `python -m mock_llm record --help`: record a real
upstream's timings for --profile replay:FILE."""

EPILOG = (
    "profiles: "
    + "; ".join(f"{name}: {profile.describe()}" for name, profile in PROFILES.items())
    + f"; {REPLAY_PREFIX}FILE: each call's timings from the next record of FILE (CSV or JSONL: ttft_s, and "
    "total_s or tokens_per_s with output_tokens)"
    + ". Per-request test headers: x-mock-fault: KIND forces a fault; with x-mock-fault-times: N only the "
    "first N requests carrying the same x-mock-fault-key get it; mock-fault:KIND in a request body forces "
    "KIND too."
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see python -m mock_llm --help)\n")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _scale(text: str) -> float:
    bound = f"{MAX_TIME_SCALE:g}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to {bound}, got {text!r}") from None
    if not 0.0 <= value <= MAX_TIME_SCALE:
        raise argparse.ArgumentTypeError(f"must be at least 0 and at most {bound}, got {text}")
    return value


def _kinds(text: str) -> tuple[str, ...]:
    try:
        return parse_kinds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _profile(text: str) -> str:
    try:
        get_profile(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 1 and 65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mock_llm", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=_port, required=True, help="TCP port to listen on (required)")
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        type=_profile,
        metavar="{" + ",".join(PROFILES) + f",{REPLAY_PREFIX}FILE}}",
        help="latency profile (default: %(default)s, the article's 2.0 s per call)",
    )
    parser.add_argument(
        "--time-scale",
        type=_scale,
        default=1.0,
        metavar="X",
        help=f"multiply every delay by X (0 to {MAX_TIME_SCALE:g}), e.g. 0.1 makes a 2 s call take 0.2 s "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for content, latency and fault draws (default: %(default)s)"
    )
    parser.add_argument(
        "--error-rate",
        type=_fraction,
        default=0.0,
        metavar="R",
        help="fraction of /v1/messages calls that get a random fault, 0..1 (default: %(default)s)",
    )
    parser.add_argument(
        "--errors",
        type=_kinds,
        default=DEFAULT_KINDS,
        metavar="KIND,...",
        help=f"fault kinds drawn at --error-rate, from {','.join(FAULT_KINDS)} (default: "
        f"{','.join(DEFAULT_KINDS)}). 429 carries retry-after/retry-after-ms (1 s x time scale); "
        "stream_error sends event: error halfway through a stream; stall holds the connection without an "
        "answer (at most "
        f"{stall_cap_s(1.0):g} s x time scale); stall_midstream stops a started answer halfway; "
        "drop_midstream closes the connection halfway; truncated ends the body cleanly halfway (a stream "
        "without message_stop); slow_drip sends each piece "
        f"{drip_gap_s(1.0):g} s x time scale after the last",
    )
    limits = parser.add_argument_group(
        "provider limits",
        "token buckets as the Claude API documents them, refilled continuously; a minute is 60 s x the time "
        "scale. A call that would overdraw one gets 429 rate_limit_error with retry-after; every answer "
        "carries the anthropic-ratelimit-* (OpenAI endpoints: x-ratelimit-*) headers",
    )
    limits.add_argument("--rpm", type=_count, metavar="N", help="requests per minute")
    limits.add_argument(
        "--input-tpm", type=_count, metavar="N", help="input tokens per minute (charged at arrival)"
    )
    limits.add_argument(
        "--output-tpm",
        type=_count,
        metavar="N",
        help="output tokens per minute (charged at max_tokens when a call starts, corrected when it ends)",
    )
    limits.add_argument(
        "--max-in-flight",
        type=_count,
        metavar="N",
        help="answer 529 overloaded_error (OpenAI endpoints: 503) to a call arriving while N are in flight",
    )
    limits.add_argument(
        "--slowdown-above",
        type=_count,
        metavar="N",
        help="a call admitted while n calls are in flight (itself included) has every delay multiplied by "
        "max(1, n / N): N calls at full speed, more share it",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="accept only this key (x-api-key or Authorization: Bearer); default: any non-empty key",
    )
    return parser


def parse_config(argv: Sequence[str]) -> MockConfig:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    try:
        return MockConfig(
            host=args.host,
            port=args.port,
            profile=args.profile,
            time_scale=args.time_scale,
            seed=args.seed,
            error_rate=args.error_rate,
            errors=args.errors,
            api_key=args.api_key,
            limits=LimitConfig(
                rpm=args.rpm,
                input_tpm=args.input_tpm,
                output_tpm=args.output_tpm,
                max_in_flight=args.max_in_flight,
                slowdown_above=args.slowdown_above,
            ),
        )
    except ValueError as exc:
        parser.error(str(exc))


class PortInUse(Exception):
    pass


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is in use; choose another with --port") from None
        raise PortInUse(f"cannot bind {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _raise_fd_limit() -> None:
    """Thousands of concurrent connections need thousands of file descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard)
            )


def serve(config: MockConfig, sock: socket.socket) -> None:
    import uvicorn

    # uvicorn re-raises the signal that stopped it once it is done; by then the stop was graceful, so exit 0.
    # A SIGTERM that comes before uvicorn's handlers are in place still stops the process at once.
    serving = [False]

    def on_sigterm(signum: int, frame: object) -> None:
        if not serving[0]:
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)

    from mock_llm.app import DropFilter, MockApp

    app = MockApp(config)

    class _Server(uvicorn.Server):
        async def _serve(self, sockets: list[socket.socket] | None = None) -> None:
            serving[0] = True  # uvicorn's own handlers are in place now
            await super()._serve(sockets)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            app.stop()  # stalls and pending delays answer now, so no task is left to cancel
            await asyncio.sleep(0.05)
            await super().shutdown(sockets)

    uv_config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
        backlog=4096,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
    )
    logging.getLogger("uvicorn.error").addFilter(DropFilter())  # after Config: it sets logging up
    print(
        f"mock_llm listening on http://{config.host}:{config.port} "
        f"(profile {config.profile}, time scale {config.time_scale:g}, seed {config.seed}, "
        f"error rate {config.error_rate:g})",
        flush=True,
    )
    _Server(uv_config).run(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["record"]:
        from mock_llm.record_cli import main as record_main

        return record_main(args[1:])
    config = parse_config(args)
    try:
        sock = bind_socket(config.host, config.port)
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _raise_fd_limit()
    try:
        serve(config, sock)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0
