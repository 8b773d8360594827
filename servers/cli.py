"""`python -m servers list|run`: show the variant registry, or start one variant's real server."""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import NoReturn

from servers.broker import BrokerError, broker_version, start_broker
from servers.launch import (
    LOG_LEVELS,
    celery_worker_argv,
    celery_worker_env,
    display_command,
    port_is_free,
    server_argv,
    server_env,
)
from servers.settings import DEFAULT_TOKEN, SettingsError, default_job_db, load_settings
from servers.stack import Stack
from servers.variants import VARIANTS, UnknownVariantError, Variant, get_variant

BROKER_NAME = "broker redis-server"
WORKER_NAME = "Celery worker"
BROKER_URL_ENV = "BENCH_BROKER_URL"  # servers.celery_app reads it (not imported here: celery is slow to load)
WORKER_READY_TIMEOUT_S = 90.0  # a fleet of 18 variants starting at once on 2 busy cores takes ~60 s


class CliError(Exception):
    """One line for the user; exit code 2."""


def cmd_list(args: argparse.Namespace) -> int:
    settings = load_settings(
        {"BENCH_JOB_DB": "unused"}
    )  # defaults: the command lines as a plain run starts them
    # The broker `run` would start, as "redis 7.0.15" (None: not installed): the harness records it.
    broker = broker_version() if any(v.broker for v in VARIANTS) else None
    if args.json:
        rows = [
            {
                **asdict(v),
                "app": v.app_target,
                "scenarios": list(v.scenarios),
                "command": display_command(v, settings),
                "broker": (broker or f"{v.broker} (not installed)") if v.broker else None,
            }
            for v in VARIANTS
        ]
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(v.name) for v in VARIANTS)
    header = (
        f"{'variant':<{width}} {'server':<9} {'worker class':<12} {'workers':>7} {'threads':>7} "
        f"{'conns':>6} {'ceiling':>7}  unsupported"
    )
    print(header)
    print("-" * len(header))
    for v in VARIANTS:
        print(
            f"{v.name:<{width}} {v.server:<9} {v.worker_class:<12} {v.workers:>7} {v.threads:>7} "
            f"{v.connections:>6} {v.predicted_ceiling:>7}  {','.join(s for s, _ in v.unsupported) or '-'}"
        )
    print()
    for v in VARIANTS:
        print(f"{v.name}: {v.description}\n    {display_command(v, settings)}")
        for scenario, why in v.unsupported:
            print(f"    unsupported: {scenario}: {why}")
        if v.broker:
            worker = " ".join(["python", *celery_worker_argv(v, log_level="warning")[1:]])
            print(f"    jobs: {worker}\n    broker: {broker or 'redis-server (not installed)'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    try:
        variant = get_variant(args.variant)
    except UnknownVariantError as exc:
        raise CliError(str(exc)) from None
    env = dict(os.environ)
    if args.upstream:
        env["BENCH_UPSTREAM_URL"] = args.upstream
    env["BENCH_VARIANT"] = variant.name
    made_db_dir = None
    if not env.get("BENCH_JOB_DB", "").strip():
        db = default_job_db()
        made_db_dir = db.parent
        env["BENCH_JOB_DB"] = str(db)
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        raise CliError(f"bad setting: {exc}") from None
    if DEFAULT_TOKEN in settings.api_tokens and not is_loopback(args.host):
        raise CliError(
            f"--host {args.host}: BENCH_API_TOKENS still holds the public default token {DEFAULT_TOKEN!r}; "
            "set tokens of your own before serving beyond loopback"
        )
    if not 1 <= args.port <= 65535:
        raise CliError(f"--port {args.port}: expected 1..65535")
    if not port_is_free(args.port, args.host):
        raise CliError(f"port {args.port} on {args.host} is in use; choose another with --port")
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers {args.workers}: expected >= 1")
    argv = server_argv(
        variant,
        host=args.host,
        port=args.port,
        settings=settings,
        log_level=args.log_level,
        workers=args.workers,
    )
    stack = Stack()

    def forward(signum: int, _frame: FrameType | None) -> None:
        # SIGTERM to the whole group reaches the children directly too; a second SIGTERM is harmless.
        # SIGINT is forwarded as SIGTERM: a second SIGINT would make uvicorn force-quit.
        stack.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # a closed terminal stops it too
        signal.signal(sig, forward)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-run-"))  # the broker's directory, the worker's flag
    try:
        server_environment = server_env(variant, settings, env)
        if variant.broker is not None:
            server_environment = _start_job_tier(stack, variant, server_environment, run_dir, args.log_level)
        if not stack.stopping:  # a signal during the job tier's start
            stack.start(variant.server, argv, server_environment)
        exited = stack.first_exit() if not stack.stopping else None
    finally:
        stack.stop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
        if made_db_dir is not None:
            shutil.rmtree(made_db_dir, ignore_errors=True)
    if exited is None or stack.stopping:
        return 0
    if exited.name == variant.server and exited.code in (0, -signal.SIGTERM, -signal.SIGINT):
        return 0
    if exited.name != variant.server:
        raise CliError(
            f"variant {variant.name}: {exited.name} exited with code {exited.code}; see its log above"
        )
    raise CliError(
        f"variant {variant.name}: {_diagnose(variant, env)} ({variant.server} exited with code {exited.code})"
    )


def _start_job_tier(
    stack: Stack, variant: Variant, env: dict[str, str], run_dir: Path, log_level: str
) -> dict[str, str]:
    """The Celery variants' broker and worker, both answering before the web tier starts (so a ready
    /health means jobs run); the server's environment, with the broker's URL."""
    try:
        broker = start_broker(data_dir=run_dir, log_level=log_level)
    except BrokerError as exc:
        raise CliError(f"variant {variant.name}: {exc}") from None
    stack.adopt(BROKER_NAME, broker.process)
    env = {**env, BROKER_URL_ENV: broker.url}
    ready = run_dir / "celery-worker.ready"
    worker = stack.start(
        WORKER_NAME,
        celery_worker_argv(variant, log_level=log_level),
        celery_worker_env(env, ready_file=str(ready)),
        # If `run` is killed outright, its broker dies with it and the worker's own stop would retry the
        # broker for ever (its heartbeat): SIGKILL it instead; its pool processes follow (Celery arms
        # their PR_SET_PDEATHSIG with SIGKILL).
        death_signal=signal.SIGKILL,
    )
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while not ready.exists() and not stack.stopping:
        code = worker.poll()
        if code is not None:
            raise CliError(
                f"variant {variant.name}: the {WORKER_NAME} exited with code {code} before it was ready"
            )
        if time.monotonic() > deadline:
            raise CliError(
                f"variant {variant.name}: the {WORKER_NAME} was not ready within {WORKER_READY_TIMEOUT_S:g} s"
            )
        time.sleep(0.1)
    return env


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def _diagnose(variant: Variant, env: dict[str, str]) -> str:
    """Why the server died: import the app here (only on failure, so a good start pays one import)."""
    os.environ.update(env)
    try:
        importlib.import_module(variant.app_target.split(":")[0])
    except Exception as exc:
        return f"the app failed to boot: {type(exc).__name__}: {exc}"
    return "the server stopped unexpectedly; see its log output above"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad invocation as one line (its subcommands too), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m servers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="print the variant registry")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_list.set_defaults(func=cmd_list)
    p_run = sub.add_parser(
        "run",
        help="start one variant's real gunicorn/uvicorn server in the foreground",
        description="Start a variant in the foreground; SIGTERM or SIGINT stops it and all its workers. "
        "Settings come from BENCH_* environment variables (see README).",
    )
    p_run.add_argument("variant", help="variant name (see `python -m servers list`)")
    p_run.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p_run.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    p_run.add_argument("--upstream", default=None, help="Messages API base URL (sets BENCH_UPSTREAM_URL)")
    p_run.add_argument("--log-level", default="warning", choices=LOG_LEVELS, help="same for every variant")
    p_run.add_argument(
        "--workers", type=int, default=None, help="override the registry's worker count (tests, experiments)"
    )
    p_run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `python -m servers list | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
