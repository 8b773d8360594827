"""Targets: what a sweep or a capacity search measures, built-in variants and your own app alike.

A target file (TOML) says how to start an app and what to send it::

    name = "acme-summarizer"
    command = ["gunicorn", "-k", "gthread", "-w", "2", "--threads", "3", "-b", "{host}:{port}", "app:app"]
    cwd = "."                 # relative to this file
    health = "/healthz"       # GET, 200 when ready
    ceiling = 6               # optional: a prediction, drawn beside the measurement, never used to size it
    [env]                     # optional extra environment
    [scenarios.analyse]       # the request/response call; [scenarios.stream] for a streamed one
    method = "POST"
    path = "/v1/summarize"
    headers = { Authorization = "Bearer {token}" }
    json = { document = "Quarterly revenue grew while churn rose in the enterprise segment." }
    expect_status = 200

Placeholders: ``{host}``, ``{port}``, ``{token}`` (and ``{upstream}``, the mock's URL). The harness adds
``ANTHROPIC_BASE_URL`` (the mock) and ``ANTHROPIC_API_KEY`` to the app's environment (and ``OPENAI_BASE_URL``,
the mock's ``/v1``, with ``OPENAI_API_KEY``), so an app that uses the
official SDK is measured with no code change. The app starts with only a few of the harness's own variables
(``INHERITED_ENV``: PATH, HOME, the locale...), never a CI job's tokens: what else it needs goes in ``[env]``.
An app that made no call to the mock while its requests were checked is refused.

The built-in variants are targets of the same model, built from the servers' registry (which stays data), so
the sweep knows targets, not the servers' internals.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLACEHOLDERS = ("host", "port", "token", "upstream")
TARGET_SCENARIOS = ("analyse", "stream")  # what a request template can stand for
_KEYS = {"name", "command", "cwd", "health", "ceiling", "env", "scenarios", "startup_timeout_s"}
_REQUEST_KEYS = {"method", "path", "headers", "json", "body", "expect_status"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")  # {name}: JSON braces never match
UPSTREAM_API_KEY = "sk-bench-mock"  # what the app's SDK sends the mock (the mock accepts any key)


class TargetError(ValueError):
    """A target file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, kw_only=True)
class RequestTemplate:
    method: str
    path: str
    headers: dict[str, str]
    body: str  # JSON text (from ``json``) or raw text (``body``); placeholders not yet filled
    expect_status: int

    def render(self, values: dict[str, str]) -> dict[str, Any]:
        """The request with placeholders filled, as the load generator's scenario reads it."""
        return {
            "method": self.method,
            "path": fill(self.path, values),
            "headers": {k: fill(v, values) for k, v in self.headers.items()},
            "body": fill(self.body, values),
            "expect_status": self.expect_status,
        }


@dataclass(frozen=True, kw_only=True)
class TargetSpec:
    name: str
    command: tuple[str, ...]
    cwd: Path
    health: str
    ceiling: int | None  # a prediction, or None
    env: dict[str, str] = field(default_factory=dict)
    scenarios: dict[str, RequestTemplate] = field(default_factory=dict)  # empty for built-in variants
    startup_timeout_s: float = 60.0
    source: str | None = None  # the file, as given
    sha256: str | None = None  # of the file's bytes
    builtin: bool = False
    # What the report's variant table shows (built-ins fill these from the registry).
    framework: str = "?"
    server: str = "?"
    worker_class: str = "?"
    workers: int = 0
    # Scenarios a built-in variant cannot serve, with the registry's reason (skipped, not failed).
    unsupported: dict[str, str] = field(default_factory=dict)
    # Jobs run in a tier of their own for some variants (a Celery worker): its predicted concurrency.
    jobs_ceiling: int | None = None

    def template_for(self, scenario: str) -> RequestTemplate | None:
        """The request ``scenario`` sends; ``overhead`` is the ``analyse`` request against the instant
        upstream (what the app adds when nothing waits: the figure a CPU regression moves)."""
        return self.scenarios.get("analyse" if scenario == "overhead" else scenario)

    def supports(self, scenario: str) -> bool:
        """A built-in variant serves every scenario its registry entry does not rule out; your own app,
        the ones its file has (and overhead)."""
        if self.builtin:
            return scenario not in self.unsupported
        return self.template_for(scenario) is not None

    def unsupported_note(self, scenarios: Sequence[str]) -> str | None:
        """What of ``scenarios`` this target was not measured in and why, for the run's variant table."""
        missing = [s for s in scenarios if not self.supports(s)]
        if not missing:
            return None
        return "unsupported: " + "; ".join(
            f"{s} ({self.unsupported[s]})" if s in self.unsupported else f"{s} (not in its target file)"
            for s in missing
        )

    @property
    def predicted_ceiling(self) -> int:
        """0 when nothing is predicted (results store an int; charts and findings skip 0)."""
        return self.ceiling or 0

    def ceiling_for(self, scenario: str) -> int:
        """The prediction a point of ``scenario`` carries: the job tier's for jobs when it has its own."""
        if scenario == "jobs" and self.jobs_ceiling is not None:
            return self.jobs_ceiling
        return self.predicted_ceiling

    def environment(self, values: dict[str, str]) -> dict[str, str]:
        return {k: fill(v, values) for k, v in self.env.items()}

    def argv(self, values: dict[str, str]) -> list[str]:
        argv = [fill(part, values) for part in self.command]
        argv[0] = resolve_executable(argv[0])
        return argv


def fill(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


APP_PYTHON_ENV = "LLM_WAIT_BENCH_APP_PYTHON"  # your app's interpreter, when it is not the harness's
# What your app inherits from the harness's environment: what a program needs to start, find its tools and
# speak the locale, and the harness's own BENCH_* settings; never the rest of a CI job's environment (its
# tokens and cloud keys). The target file's [env] and ANTHROPIC_BASE_URL/ANTHROPIC_API_KEY come on top.
INHERITED_ENV = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM", "VIRTUAL_ENV"}
)


def inherited_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` a target's app starts with (see INHERITED_ENV)."""
    return {k: v for k, v in environ.items() if k in INHERITED_ENV or k.startswith(("LC_", "BENCH_"))}


def app_python() -> str:
    """The interpreter a target's ``python`` means: LLM_WAIT_BENCH_APP_PYTHON when set (the composite
    action sets the job's own, since the harness lives in a virtual environment of its own), else this
    one (the harness and your app installed together, as in this repository's examples)."""
    return os.environ.get(APP_PYTHON_ENV, "").strip() or sys.executable


def resolve_executable(name: str) -> str:
    """``python`` is :func:`app_python`; other bare names are looked up beside it first (its virtual
    environment's ``bin/``, where gunicorn and uvicorn live), then on PATH."""
    if name in ("python", "python3"):
        return app_python()
    if os.sep in name:
        return name
    here = Path(app_python()).parent
    found = shutil.which(name, path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))
    return found or name


def _check_installed(program: str, cwd: Path, source: str) -> None:
    """A command that cannot start is a one-line error now, not a failed start later (placeholders in
    the program's name are left to the start)."""
    if _PLACEHOLDER.search(program):
        return
    found = Path(resolve_executable(program))
    path = found if found.is_absolute() else cwd / found
    if (os.sep not in str(found) and not found.is_absolute()) or not path.is_file():
        raise TargetError(
            f"{source}: command[0] {program!r} is not installed (not on PATH, nor beside {app_python()}); "
            "install it or give its path"
        )
    if not os.access(path, os.X_OK):
        raise TargetError(f"{source}: command[0] {program!r} ({path}) is not executable")


def _check_placeholders(text: str, where: str, source: str) -> None:
    for name in _PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            raise TargetError(f"{source}: {where}: unknown placeholder {{{name}}}; use {known}")


def _request(name: str, raw: Any, source: str) -> RequestTemplate:
    where = f"scenarios.{name}"
    if not isinstance(raw, dict):
        raise TargetError(f"{source}: {where} must be a table")
    unknown = sorted(set(raw) - _REQUEST_KEYS)
    if unknown:
        raise TargetError(
            f"{source}: {where}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(_REQUEST_KEYS))})"
        )
    path = raw.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise TargetError(f"{source}: {where}.path must be a string starting with '/'")
    method = raw.get("method", "POST")
    if not isinstance(method, str) or not method.isalpha():
        raise TargetError(f"{source}: {where}.method must be an HTTP method such as POST")
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise TargetError(f"{source}: {where}.headers must be a table of strings")
    if "json" in raw and "body" in raw:
        raise TargetError(f"{source}: {where}: give json or body, not both")
    if "json" in raw:
        body = json.dumps(raw["json"])
        headers = {"Content-Type": "application/json", **headers}
    else:
        body = raw.get("body", "")
        if not isinstance(body, str):
            raise TargetError(f"{source}: {where}.body must be a string (or use json)")
    status = raw.get("expect_status", 200)
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise TargetError(f"{source}: {where}.expect_status must be an HTTP status code")
    for key, text in [
        ("path", path),
        *((f"headers.{k}", v) for k, v in headers.items()),
        ("json/body", body),
    ]:
        _check_placeholders(text, f"{where}.{key}", source)
    return RequestTemplate(
        method=method.upper(), path=path, headers=dict(headers), body=body, expect_status=status
    )


def load_target(path: Path) -> TargetSpec:
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TargetError(f"{source}: cannot read the target file ({exc.strerror or exc})") from None
    try:
        raw = tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TargetError(f"{source}: not valid TOML ({exc})") from None
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise TargetError(f"{source}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(_KEYS))})")
    for key in ("name", "command", "health", "scenarios"):
        if key not in raw:
            raise TargetError(f"{source}: missing key {key!r}")
    name = raw["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise TargetError(f"{source}: name must be 1-64 letters, digits, '.', '_' or '-'")
    command = raw["command"]
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise TargetError(f"{source}: command must be a non-empty list of strings")
    for i, part in enumerate(command):
        _check_placeholders(part, f"command[{i}]", source)
    health = raw["health"]
    if not isinstance(health, str) or not health.startswith("/"):
        raise TargetError(f"{source}: health must be a path starting with '/'")
    ceiling = raw.get("ceiling")
    if ceiling is not None and (not isinstance(ceiling, int) or ceiling < 1):
        raise TargetError(f"{source}: ceiling must be a positive whole number (or left out)")
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise TargetError(f"{source}: env must be a table of strings")
    for key, value in env.items():
        _check_placeholders(value, f"env.{key}", source)
    scenarios = raw["scenarios"]
    if not isinstance(scenarios, dict) or not scenarios:
        raise TargetError(f"{source}: scenarios must have [scenarios.analyse] or [scenarios.stream]")
    for scenario in scenarios:
        if scenario not in TARGET_SCENARIOS:
            raise TargetError(
                f"{source}: unknown scenario {scenario!r}; a target has {' or '.join(TARGET_SCENARIOS)}"
            )
    timeout = raw.get("startup_timeout_s", 60.0)
    # TOML has inf and nan: a wait that never ends (or never compares) is no timeout.
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
        raise TargetError(f"{source}: startup_timeout_s must be a positive, finite number of seconds")
    cwd = (path.parent / str(raw.get("cwd", "."))).resolve()
    if not cwd.is_dir():
        raise TargetError(
            f"{source}: cwd {raw.get('cwd')!r} is not a directory (relative to the target file)"
        )
    _check_installed(command[0], cwd, source)
    return TargetSpec(
        name=name,
        command=tuple(command),
        cwd=cwd,
        health=health,
        ceiling=ceiling,
        env=dict(env),
        scenarios={s: _request(s, r, source) for s, r in scenarios.items()},
        startup_timeout_s=float(timeout),
        source=source,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def builtin_targets() -> dict[str, TargetSpec]:
    """The servers' registry as targets: ``python -m servers run NAME`` on the harness's ports."""
    from servers.variants import VARIANTS

    variants = VARIANTS.values() if isinstance(VARIANTS, dict) else VARIANTS
    repo = Path(__file__).resolve().parents[2]
    return {
        v.name: TargetSpec(
            name=v.name,
            command=(
                sys.executable,  # the harness's own servers: its interpreter, whatever the app's is
                "-m",
                "servers",
                "run",
                v.name,
                "--host",
                "{host}",
                "--port",
                "{port}",
                "--upstream",
                "{upstream}",
            ),
            cwd=repo,
            health="/health",
            ceiling=v.predicted_ceiling,
            builtin=True,
            framework=v.framework,
            server=v.server,
            worker_class=v.worker_class,
            workers=v.workers,
            unsupported=dict(v.unsupported),
            jobs_ceiling=getattr(v, "predicted_jobs_ceiling", None),
        )
        for v in variants
    }


_LOADED: dict[str, TargetSpec] = {}


def register(spec: TargetSpec) -> None:
    """Make a loaded target known to this process's sweep (by its name, which must be new)."""
    if spec.name in builtin_targets():
        raise TargetError(f"{spec.source}: name {spec.name!r} is a built-in variant's; choose another")
    previous = _LOADED.get(spec.name)
    if previous is not None and previous.sha256 != spec.sha256:
        raise TargetError(f"{spec.source}: name {spec.name!r} is already used by {previous.source}")
    _LOADED[spec.name] = spec


def known_targets() -> dict[str, TargetSpec]:
    return {**builtin_targets(), **_LOADED}
