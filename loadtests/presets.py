"""Sweep settings and the ``--preset quick|default|full`` presets (explicit flags win over a preset).

Sized for a 2-core machine, where the load generator, the server and the mock share the CPU: the upstream
latency L (2.0 s x time scale for the ``article`` profile) keeps the request rate modest, since a point
offers at most min(users, ceiling) / L requests per second.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

ALL_SCENARIOS = ("analyse", "stream", "jobs", "chat", "overhead")


@dataclass(frozen=True, kw_only=True)
class SweepSettings:
    variants: tuple[str, ...]
    scenarios: tuple[str, ...]
    users: tuple[int, ...]  # closed loop levels; empty = no closed-loop points
    rates: tuple[float, ...]  # open loop levels (requests/s); empty = no open-loop points
    mock_profile: str = "article"
    time_scale: float = 0.5
    duration_s: float = 5.0  # measured window, at least; rounded up to whole upstream periods
    warmup_s: float | None = None  # None: detected from the data (analysis.steady), within max_warmup_s
    max_warmup_s: float | None = None  # None: max(60 s, 150 x L)
    repeat: int = 1
    loadgen_processes: int = 1
    seed: int = 1
    max_in_flight: int = 2000  # open loop cap per load process
    targets: tuple[str, ...] = ()  # target files (your own apps), as given on the command line
    # More than one machine: Locust workers on other hosts join this sweep's master (see loadtests/README).
    remote_workers: int = 0  # workers expected from other hosts, besides the local loadgen_processes
    master_bind: str = "127.0.0.1"  # where the Locust master listens
    master_port: int = 5557  # fixed so remote workers know it (a free port when no remote worker)
    server_host: str = "127.0.0.1"  # where the server under test listens; the load generators use it

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("variants", "scenarios", "users", "rates", "targets"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSettings:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in ("variants", "scenarios", "users", "rates", "targets"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)

    def with_overrides(self, overrides: dict[str, Any]) -> SweepSettings:
        return replace(self, **overrides)


PRESETS: dict[str, SweepSettings] = {
    # CI: the article's two variants, the headline scenario, L = 1 s as in default, so compare can gate.
    "quick": SweepSettings(
        variants=("flask-sync", "fastapi-async"),
        scenarios=("analyse",),
        users=(2, 8, 32),
        rates=(),
        time_scale=0.5,
        duration_s=3.0,
    ),
    # make bench: four variants, two scenarios, levels that show each knee (4, 40, none); <= 10 minutes.
    "default": SweepSettings(
        variants=("flask-sync", "fastapi-async", "flask-gevent", "fastapi-def"),
        scenarios=("analyse", "stream"),
        users=(2, 8, 32, 128),
        rates=(),
        time_scale=0.5,
        duration_s=5.0,
    ),
    # Publishing: every variant and scenario, both load models (about 1.5-2 hours by the sweep's own plan;
    # fastapi-blocking alone needs long warm-ups: at 128 users each request queues 128 upstream periods).
    "full": SweepSettings(
        variants=(
            "flask-sync",
            "flask-gthread",
            "flask-gevent",
            "flask-async-views",
            "fastapi-async",
            "fastapi-def",
            "fastapi-blocking",
            "fastapi-workers",
        ),
        scenarios=ALL_SCENARIOS,
        users=(1, 4, 16, 64, 128),
        rates=(2, 8, 32),
        time_scale=0.5,
        duration_s=5.0,
        repeat=1,
        loadgen_processes=2,
    ),
}
