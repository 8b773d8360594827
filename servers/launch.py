"""The exact server command line and environment for a variant (what `python -m servers run` starts)."""

from __future__ import annotations

import math
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from servers.limits import MAX_WS_MESSAGE_BYTES
from servers.settings import Settings
from servers.variants import Variant

GRACEFUL_TIMEOUT_S = 1  # stop quickly: in-flight requests of a benchmark are not worth waiting for
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    argv: list[str]
    env: dict[str, str]


def worker_timeout_s(settings: Settings) -> int:
    """Gunicorn kills a worker silent for this long: always beyond the longest upstream wait."""
    return math.ceil(settings.worst_case_upstream_s) + 30


def server_argv(
    variant: Variant, *, host: str, port: int, settings: Settings, log_level: str, workers: int | None = None
) -> list[str]:
    n = workers if workers is not None else variant.workers
    if variant.server == "granian":
        return _granian_argv(variant, host=host, port=port, log_level=log_level, workers=n)
    if variant.server == "hypercorn":
        return _hypercorn_argv(variant, host=host, port=port, log_level=log_level, workers=n)
    if variant.server == "gunicorn":
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--worker-class",
            variant.worker_class,
            "--workers",
            str(n),
            "--bind",
            f"{host}:{port}",
            "--timeout",
            str(worker_timeout_s(settings)),
            "--graceful-timeout",
            str(GRACEFUL_TIMEOUT_S),
            "--log-level",
            log_level,
            "--backlog",
            "2048",
            # gunicorn 27's control socket has one default path per user: concurrent runs would collide.
            "--no-control-socket",
        ]
        if variant.worker_class == "gthread":
            argv += ["--threads", str(variant.threads)]
        if variant.worker_class == "gevent":
            argv += ["--worker-connections", str(variant.connections)]
        if variant.worker_class == "asgi":
            # The same WebSocket message limit as uvicorn's --ws-max-size: both close with 1009.
            argv += ["--websocket-max-message-size", str(MAX_WS_MESSAGE_BYTES)]
        if variant.worker_class != "gevent":
            # Import the app once in the master and fork the workers: start-up is 4x cheaper (the
            # anthropic SDK alone takes seconds to import) and request handling is unchanged. Not
            # for gevent: its workers must monkey-patch before the app's modules are imported.
            argv.append("--preload")
        return [*argv, variant.app_target]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        variant.app_target,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(n),
        "--log-level",
        log_level,
        "--no-access-log",
        "--http",
        "servers.uvicorn_http:HandshakeOnlyHttpToolsProtocol",  # a WebSocket upgrade only for a GET, no body
        "--ws",
        "websockets-sansio",  # supports the denial response a refused WebSocket handshake needs
        "--ws-max-size",
        str(MAX_WS_MESSAGE_BYTES),  # the Flask adapter sets the same limit: both close with 1009
        "--timeout-graceful-shutdown",
        str(GRACEFUL_TIMEOUT_S),
        "--backlog",
        "2048",
        *(["--limit-concurrency", str(variant.limit_concurrency)] if variant.limit_concurrency else []),
    ]


def _granian_argv(variant: Variant, *, host: str, port: int, log_level: str, workers: int) -> list[str]:
    """granian with its defaults where they are what the variant is about: no --backlog (granian sizes
    backpressure and the WSGI thread pool from it) and no --blocking-threads."""
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        variant.worker_class,  # wsgi | asgi
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        log_level,
        "--no-access-log",
        # A stop waits this long for a worker's in-flight requests, as the others' graceful timeout.
        "--workers-kill-timeout",
        str(GRACEFUL_TIMEOUT_S),
        variant.app_target,
    ]


def _hypercorn_argv(variant: Variant, *, host: str, port: int, log_level: str, workers: int) -> list[str]:
    """hypercorn as Quart documents it, on uvloop (uvicorn's loop, so the loop is not what differs from
    fastapi-async), with the others' backlog and graceful timeout; no access log (its default)."""
    return [
        sys.executable,
        "-m",
        "hypercorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        variant.worker_class,  # uvloop
        "--log-level",
        log_level,
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT_S),
        "--backlog",
        "2048",  # hypercorn's default of 100 would drop a burst of connections the others accept
        "--config",
        "python:servers.hypercorn_config",  # the WebSocket message limit, which has no flag
        variant.app_target,
    ]


def celery_worker_argv(variant: Variant, *, log_level: str) -> list[str]:
    """The Celery variants' worker: Celery's defaults but for the pool (and the concurrency, when the
    variant names one; prefork's default is one process per CPU)."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "servers.celery_app",
        "worker",
        "--loglevel",
        log_level.upper(),
        "--pool",
        variant.celery_pool,
        "--hostname",
        f"{variant.name}@bench",  # no machine name in a log a run may keep
    ]
    if variant.celery_concurrency:
        argv += ["--concurrency", str(variant.celery_concurrency)]
    return argv


def celery_worker_env(server_env: Mapping[str, str], *, ready_file: str) -> dict[str, str]:
    env = dict(server_env)
    env["BENCH_CELERY_READY_FILE"] = ready_file
    # SIGTERM is a cold shutdown, as for the servers (their graceful timeout is 1 s): Celery's own warm
    # shutdown would wait for every running job, up to the upstream deadline.
    env["REMAP_SIGTERM"] = "SIGQUIT"
    return env


def server_env(variant: Variant, settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env["BENCH_VARIANT"] = variant.name
    env["BENCH_UPSTREAM_URL"] = settings.upstream_url
    env["BENCH_JOB_DB"] = str(settings.job_db.absolute())  # one path for every worker of this run
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_argv(
    variant: str,
    *,
    host: str,
    port: int,
    upstream: str,
    log_level: str = "warning",
    python: str | None = None,
) -> list[str]:
    """The `python -m servers run` command line a driver (the sweep, the tests) should start."""
    return [
        python or sys.executable, "-m", "servers", "run", variant,
        "--host", host, "--port", str(port), "--upstream", upstream, "--log-level", log_level,
    ]  # fmt: skip


def display_command(
    variant: Variant, settings: Settings, *, host: str = "127.0.0.1", port: int = 8000
) -> str:
    """The server command line `run` starts for a variant with the given settings, for reports."""
    argv = server_argv(variant, host=host, port=port, settings=settings, log_level="warning")
    return " ".join(["python", *argv[1:]])


def port_is_free(port: int, host: str) -> bool:
    """Whether ``run`` can bind there (SO_REUSEADDR, as the servers bind): checked before a child starts,
    so a busy port is one clear line instead of a server's traceback."""
    try:
        with socket.create_server((host, port)):
            return True
    except OSError:
        return False
