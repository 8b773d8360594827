"""Run metadata, pyperf-style: one small ``collect_*`` function per fact.

No hostname and no absolute path ever goes in: results are shared and committed.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

# Every framework, server, client and load package whose version can move a number.
PACKAGES = (
    "anthropic", "httpx2", "httpx", "fastapi", "starlette", "pydantic", "pydantic-core", "uvicorn", "uvloop",
    "httptools", "flask", "werkzeug", "asgiref", "flask-sock", "gunicorn", "gevent", "greenlet", "locust",
    "geventhttpclient", "psutil", "numpy", "websockets", "granian", "quart", "hypercorn", "a2wsgi", "celery",
    "kombu", "billiard", "redis",
)  # fmt: skip


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def collect_python() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}"


def collect_packages(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def collect_cpu_count() -> int:
    return os.cpu_count() or 1


def collect_memory_total_mb() -> int:
    """The machine's physical memory: the capacity plan says where a plan exceeds it."""
    import psutil

    return int(psutil.virtual_memory().total / (1024 * 1024))


def collect_cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect_platform() -> str:
    return f"{platform.system()} {platform.release()} {platform.machine()}"


def collect_git(repo: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout, or (None, None) outside git. Dirty means code or configuration
    differs from the commit; results/ does not count (a run that replaces a committed one, such as
    results/reference, changes it while the code it runs is the commit's)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status.strip())


# Server settings from the environment the sweep passes to every variant, recorded because they change
# what is measured (BENCH_WORK_MS adds CPU per request; the pool size caps concurrency).
SERVER_SETTING_KEYS = ("BENCH_WORK_MS", "BENCH_UPSTREAM_MAX_CONNECTIONS", "BENCH_UPSTREAM_POOLS")


def collect_server_settings(env: dict[str, str] | None = None) -> dict[str, str]:
    """The recorded server settings that are set (``work_ms`` is also given as a number, 0 when unset)."""
    source = dict(os.environ if env is None else env)
    return {key: source[key] for key in SERVER_SETTING_KEYS if source.get(key, "").strip()}


def collect_work_ms(env: dict[str, str] | None = None) -> float | None:
    """BENCH_WORK_MS as the servers will read it (0 when unset); None when it is not a number."""
    raw = dict(os.environ if env is None else env).get("BENCH_WORK_MS", "").strip()
    try:
        return float(raw) if raw else 0.0
    except ValueError:
        return None


def collect_harness_version(repo: Path) -> str | None:
    """The measurer's own version: git's tree id of ``loadtests/`` (the same whatever else a commit
    changes), with ``+dirty`` when that directory has uncommitted changes. Two runs with different ids
    were measured by different harness code."""
    try:
        tree = subprocess.run(
            ["git", "rev-parse", "HEAD:loadtests"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "loadtests"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return tree[:12] + ("+dirty" if status.strip() else "")


def collect_machine_id() -> str | None:
    """A hash of the OS's machine id: tells two machines apart without naming either."""
    for path in (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id")):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text:
            return hashlib.sha256(("llm-wait-bench:" + text).encode()).hexdigest()[:12]
    return None


def collect_command_line(argv: Sequence[str]) -> str:
    """How the sweep was invoked, without the interpreter's path or any absolute path (made relative to the
    working directory when inside it, else shown as its last component)."""
    cwd = Path.cwd()
    shown = []
    for arg in argv:
        path = Path(arg)
        if path.is_absolute():
            try:
                arg = str(path.relative_to(cwd))
            except ValueError:
                arg = f".../{path.name}"
        shown.append(arg)
    # The sweep passes its own flags; the other commands pass their name first (capacity, reach, ...).
    command = [] if shown and shown[0] in ("capacity", "faults", "gate", "reach") else ["sweep"]
    return shlex.join(["python", "-m", "loadtests", *command, *shown])


def collect_all(
    *,
    argv: Sequence[str],
    repo: Path,
    preset: str | None,
    mock_profile: str,
    time_scale: float,
    seed: int,
    upstream_latency_s: float,
    scenarios: Sequence[str],
    load_models: Sequence[str],
    started_at: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    commit, dirty = collect_git(repo)
    data: dict[str, Any] = {
        "started_at": started_at,
        "finished_at": None,
        "python": collect_python(),
        "packages": collect_packages(),
        "broker": collect_broker(),
        "cpu_count": collect_cpu_count(),
        "cpu_model": collect_cpu_model(),
        "memory_total_mb": collect_memory_total_mb(),
        "platform": collect_platform(),
        "machine_id": collect_machine_id(),
        "harness_version": collect_harness_version(repo),
        "server_settings": collect_server_settings(),
        "work_ms": collect_work_ms(),
        "git_commit": commit,
        "git_dirty": dirty,
        "command_line": collect_command_line(argv),
        "preset": preset,
        "mock_profile": mock_profile,
        "time_scale": time_scale,
        "seed": seed,
        "upstream_latency_s": upstream_latency_s,
        "scenarios": list(scenarios),
        "load_models": list(load_models),
    }
    data.update(extra or {})
    return data


def collect_broker() -> str | None:
    """The Redis server the Celery variants' ``run`` starts ("redis 7.0.15"), or None without one."""
    from servers.broker import broker_version

    return broker_version()


def python_executable_name() -> str:
    return Path(sys.executable).name
