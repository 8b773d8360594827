"""The mock and the variant (or your own app) for one group of points, started on free loopback ports."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.driver import mockapi
from loadtests.driver.interrupts import deferred_interrupts
from loadtests.driver.options import known_variants
from loadtests.driver.pointspec import Target
from loadtests.driver.processes import LOOPBACK, ManagedProcess, free_port, python_module_argv
from loadtests.driver.schedule import Group
from loadtests.driver.targets import UPSTREAM_API_KEY, RequestTemplate, TargetSpec, inherited_environment
from loadtests.driver.verify import ContractError, verify_target, verify_variant
from loadtests.presets import SweepSettings

DEFAULT_TOKEN = "bench-local-token"


def server_env(run_dir: Path, variant: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BENCH_API_TOKENS", DEFAULT_TOKEN)
    # A limit no load reaches: every variant still runs the limiter's check (one small SQLite write per
    # request, identical for all), as a deployed API would, but no request is ever refused by it.
    env["BENCH_RATE_LIMIT"] = "1000000/minute"
    jobs_dir = run_dir / "tmp"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    env["BENCH_JOB_DB"] = str((jobs_dir / f"{variant}-jobs.db").resolve())
    return env


def mock_profile_argument(name: str) -> str:
    """A replay file by its absolute path: the mock runs in another directory (the run keeps it as given)."""
    from mock_llm.profiles import REPLAY_PREFIX

    if name.startswith(REPLAY_PREFIX):
        return REPLAY_PREFIX + str(Path(name.removeprefix(REPLAY_PREFIX)).resolve())
    return name


def bench_token() -> str:
    return (os.environ.get("BENCH_API_TOKENS") or DEFAULT_TOKEN).split(",")[0].strip()


class VariantSession:
    """The mock and the variant for one group of points, on free loopback ports.

    Between points the server must be idle: a point that saturated it (flask-sync at 128 users holds a
    backlog of 31 upstream periods) would otherwise serve the previous point's abandoned requests during the
    next one. :meth:`settle` waits for the mock to see nothing in flight; when that does not happen soon,
    the variant is restarted (and the next point says so in ``extra``).
    """

    def __init__(self, group: Group, settings: SweepSettings, run_dir: Path) -> None:
        self.group = group
        self.settings = settings
        self.run_dir = run_dir
        logs = run_dir / "logs"
        suffix = "" if group.mock_profile == settings.mock_profile else f"-{group.mock_profile}"
        suffix += f"-{group.label}" if group.label else ""
        self.server_log = logs / f"{group.variant}{suffix}.server.log"
        mock_port = free_port()
        self.mock_url = f"http://{LOOPBACK}:{mock_port}"
        self.mock = ManagedProcess(
            f"mock for {group.variant}",
            python_module_argv(
                "mock_llm",
                "--host",
                LOOPBACK,
                "--port",
                str(mock_port),
                "--profile",
                mock_profile_argument(group.mock_profile),
                "--time-scale",
                f"{settings.time_scale:g}",
                "--seed",
                str(settings.seed),
                *(
                    arg
                    for flag, value in settings.provider_limits().items()
                    for arg in (f"--{flag}", str(value))
                ),
                *group.mock_args,
            ),
            log_path=logs / f"{group.variant}{suffix}.mock.log",
            ready_url=f"{self.mock_url}/health",
        )
        self.server: ManagedProcess | None = None
        self.url = ""

    def __enter__(self) -> VariantSession:
        try:
            self.mock.start(ready_timeout=30.0)
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _placeholders(self, port: int) -> dict[str, str]:
        return {
            "host": self.settings.server_host,
            "port": str(port),
            "token": bench_token(),
            "upstream": self.mock_url,
        }

    def _start_server(self) -> None:
        port = free_port(self.settings.server_host)
        self.url = f"http://{self.settings.server_host}:{port}"
        self._values = self._placeholders(port)
        spec = self.spec()
        if not spec.builtin:
            self._start_target(spec)
            return
        self.server = ManagedProcess(
            f"variant {self.group.variant}",
            python_module_argv(
                "servers",
                "run",
                self.group.variant,
                "--host",
                self.settings.server_host,
                "--port",
                str(port),
                "--upstream",
                self.mock_url,
            ),
            log_path=self.server_log,
            ready_url=f"{self.url}/health",
            env={**server_env(self.run_dir, self.group.variant), **self.group.server_env},
        )
        self.server.start(ready_timeout=60.0)

    def _start_target(self, spec: TargetSpec) -> None:
        """Your own app: its command in its directory, its SDK pointed at the mock by the environment."""
        env = {
            **inherited_environment(server_env(self.run_dir, self.group.variant)),  # not the job's secrets
            **spec.environment(self._values),
            **self.group.server_env,
            "ANTHROPIC_BASE_URL": self.mock_url,
            "ANTHROPIC_API_KEY": UPSTREAM_API_KEY,
            "OPENAI_BASE_URL": self.mock_url + "/v1",  # the mock's OpenAI-compatible endpoints
            "OPENAI_API_KEY": UPSTREAM_API_KEY,
            **self._target_env_extra(),
        }
        self.server = ManagedProcess(
            f"target {spec.name}",
            spec.argv(self._values),
            log_path=self.server_log,
            ready_url=f"{self.url}{spec.health}",
            env=env,
            cwd=spec.cwd,
        )
        self.server.start(ready_timeout=spec.startup_timeout_s)

    def _target_env_extra(self) -> dict[str, str]:
        """More environment for your own app (the gate puts its revision's tree on the import path)."""
        return {}

    def verify(self, scenarios: Sequence[str]) -> None:
        """The contract before measuring (raise ContractError): the server contract for a built-in
        variant, the target file's own for your app."""
        spec = self.spec()
        if spec.builtin:
            verify_variant(self.url, variant=spec.name, token=bench_token(), scenarios=list(scenarios))
            return
        requests = {s: self._template(spec, s).render(self._values) for s in dict.fromkeys(scenarios)}
        verify_target(self.url, name=spec.name, health=spec.health, requests=requests)
        # An app answering without the mock measures nothing of its upstream wait, and one with a base URL
        # of its own would send the load to a paid API with whatever key it holds.
        if mockapi.api_calls(self.mock_url) == 0:
            raise ContractError(
                f"target {spec.name}: the app made no call to the mock: is its SDK pointed at "
                "ANTHROPIC_BASE_URL? (OPENAI_BASE_URL for the openai SDK)"
            )

    def request_for(self, scenario: str) -> dict[str, Any] | None:
        """Your own app's request for ``scenario``, placeholders filled; None for a built-in variant."""
        spec = self.spec()
        if spec.builtin:
            return None
        return self._template(spec, scenario).render(self._values)

    @staticmethod
    def _template(spec: TargetSpec, scenario: str) -> RequestTemplate:
        template = spec.template_for(scenario)
        if template is None:  # plan_points skips what a target lacks; this would be a planning bug
            raise ContractError(f"target {spec.name} has no request for scenario {scenario!r}")
        return template

    def spec(self) -> TargetSpec:
        """What this session starts and sends: the registry's entry (the gate gives each side its own)."""
        return known_variants()[self.group.variant]

    def restart_server(self) -> None:
        with deferred_interrupts():
            if self.server is not None:
                self.server.stop()
        self._start_server()

    def in_flight(self) -> int:
        return mockapi.in_flight(self.mock_url)

    def settle(self, *, timeout_s: float, quiet_s: float = 0.25) -> bool:
        """True once the mock has seen nothing in flight for ``quiet_s``; False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        idle_since: float | None = None
        while time.monotonic() < deadline:
            try:
                busy = self.in_flight()
            except OSError:  # a mock that does not answer is not settled; the point records why
                return False
            if busy == 0:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= quiet_s:
                    return True
            else:
                idle_since = None
            time.sleep(0.05)
        return False

    def target(self, *, ceiling: int, latency_s: float, scenario: str | None = None) -> Target:
        assert self.server is not None
        return Target(
            request=None if scenario is None else self.request_for(scenario),
            url=self.url,
            mock_url=self.mock_url,
            server_pid=self.server.pid,
            mock_pid=self.mock.pid,
            ceiling=ceiling,
            latency_s=latency_s,
            token=bench_token(),
        )

    def stop(self) -> None:
        with deferred_interrupts():
            if self.server is not None:
                self.server.stop()
            self.mock.stop()
