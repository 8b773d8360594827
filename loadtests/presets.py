"""Sweep settings and the ``--preset quick|default|full`` presets (explicit flags win over a preset).

Sized for a 2-core machine, where the load generator, the server and the mock share the CPU: the upstream
latency L (2.0 s x time scale for the ``article`` profile) keeps the request rate modest, since a point
offers at most min(users, ceiling) / L requests per second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
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
    # Levels of one scenario that differ from users and rates (the full preset's few chosen points); an
    # explicit --users or --rate replaces them for every scenario.
    scenario_users: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    scenario_rates: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    # Closed-loop scenarios whose capacity under the default SLO is searched (loadtests.driver.capacity)
    # in the same variant session as the fixed points: the data, not a prediction, choose those levels.
    capacity_scenarios: tuple[str, ...] = ()
    capacity_max_points: int = 6
    capacity_max_users: int = 1024
    # Variants measured in fewer scenarios than the run's (the full preset's Celery variants: jobs only);
    # an explicit --scenarios replaces them.
    variant_scenarios: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The provider's limits, enforced by the mock (python -m mock_llm --rpm ...; a minute is 60 s x the time
    # scale); None: no limit, the idealised upstream the reference measures.
    rpm: int | None = None
    input_tpm: int | None = None
    output_tpm: int | None = None
    upstream_max_in_flight: int | None = None  # the mock's --max-in-flight: 529 beyond it
    slowdown_above: int | None = None

    def users_for(self, scenario: str) -> tuple[int, ...]:
        return tuple(self.scenario_users.get(scenario, self.users))

    def rates_for(self, scenario: str) -> tuple[float, ...]:
        return tuple(self.scenario_rates.get(scenario, self.rates))

    def measures(self, variant: str, scenario: str) -> bool:
        """Whether this run measures ``variant`` in ``scenario`` (a scenario of the run it is limited to)."""
        only = self.variant_scenarios.get(variant)
        return scenario in self.scenarios and (only is None or scenario in only)

    def provider_limits(self) -> dict[str, int]:
        """The limits set, by the mock's flag (without its dashes): empty when the upstream has none."""
        given = {
            "rpm": self.rpm,
            "input-tpm": self.input_tpm,
            "output-tpm": self.output_tpm,
            "max-in-flight": self.upstream_max_in_flight,
            "slowdown-above": self.slowdown_above,
        }
        return {flag: value for flag, value in given.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in _TUPLES:
            data[key] = list(data[key])
        for key in _LEVEL_MAPS:
            data[key] = {scenario: list(levels) for scenario, levels in data[key].items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSettings:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in _TUPLES:
            values[key] = tuple(values.get(key, ()))
        for key in _LEVEL_MAPS:
            levels = values.get(key, {})
            if not isinstance(levels, dict):
                raise ValueError(f"{key} must map scenarios to levels, not {levels!r}")
            values[key] = {str(scenario): tuple(v) for scenario, v in levels.items()}
        return cls(**values)

    def with_overrides(self, overrides: dict[str, Any]) -> SweepSettings:
        """Explicit settings win: --users replaces every scenario's closed-loop levels of the preset and its
        capacity search (unless --capacity is given too); --rate every scenario's open-loop levels."""
        values = dict(overrides)
        if "users" in values:
            values.setdefault("scenario_users", {})
            values.setdefault("capacity_scenarios", ())
        if "rates" in values:
            values.setdefault("scenario_rates", {})
        if "scenarios" in values:
            values.setdefault("variant_scenarios", {})
        return replace(self, **values)


_TUPLES = ("variants", "scenarios", "users", "rates", "targets", "capacity_scenarios")
_LEVEL_MAPS = ("scenario_users", "scenario_rates", "variant_scenarios")

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
    # make bench: four variants, two scenarios, levels that show each knee (4, 40, none); <= 10 minutes from
    # a fresh clone, install included. 4 users, not 2: a window of 30 completions takes 7.5 s there, not 15;
    # stream at 8 (above every sync cap) and 128 shows who caps, as analyse's four levels show where.
    "default": SweepSettings(
        variants=("flask-sync", "fastapi-async", "flask-gevent", "fastapi-def"),
        scenarios=("analyse", "stream"),
        users=(4, 8, 32, 128),
        rates=(),
        scenario_users={"stream": (8, 128)},
        time_scale=0.5,
        duration_s=3.0,  # at least: the window still grows to 30 completions
    ),
    # Publishing (results/reference): every variant, both load models, within 60 minutes here (twice, for the
    # agreement check). analyse: 16 and 128 users (what the verdict's claims need: 2 x each cap, and 100+),
    # then a capacity search resolved to an interval (at most 7 levels; the fixed levels are reused, not
    # measured again; its edges measured again on a fresh server), and open loop at 16 rps (4 x what 4
    # workers sustain at L = 1 s: the overload a closed loop cannot show; 3 rps, queueing without overload,
    # cost 5 minutes and went). stream and chat: 8 users, above every sync ceiling (4) and below the others,
    # so each shows who caps and who does not; jobs: 32 users, so background work beyond 4 workers and
    # Celery's pool both show. overhead (the instant mock) is left to `cpu` and the gate: its sixteen extra
    # variant sessions cost six minutes, which the searches' fresh-server confirmations needed.
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
            "flask-granian",
            "fastapi-granian",
            "fastapi-gunicorn-asgi",
            "fastapi-shedding",
            "flask-sync-64",
            "quart-async",
            "flask-asgiref",
            "flask-a2wsgi",
            "flask-celery",
            "flask-celery-threads",
        ),
        scenarios=("analyse", "stream", "jobs", "chat"),
        users=(8,),
        rates=(),
        scenario_users={"analyse": (16, 128), "jobs": (32,)},
        scenario_rates={"analyse": (16.0,)},
        capacity_scenarios=("analyse",),
        capacity_max_points=7,
        # The article's remedies, each where it speaks: the Celery pair runs jobs (its web tier is
        # flask-sync's, measured above), the ASGI adapters serve requests and streams like the rest.
        # jobs and chat where they tell variants apart: jobs for plain Flask against the Celery pair and
        # the three concurrency models (threads, greenlets, asyncio); chat for the article's pair, the
        # remedies that hold and fastapi-def's thread pool. Every variant kept them before at 14-17 s a
        # point each, and the same ceiling each showed in stream (8 users).
        variant_scenarios={
            "flask-gthread": ("analyse", "stream", "jobs"),
            "flask-async-views": ("analyse", "stream"),
            "fastapi-def": ("analyse", "stream", "chat"),
            "fastapi-workers": ("analyse", "stream"),
            "flask-granian": ("analyse", "stream"),
            "fastapi-granian": ("analyse", "stream"),
            "fastapi-gunicorn-asgi": ("analyse", "stream"),
            "fastapi-shedding": ("analyse", "stream"),
            "flask-sync-64": ("analyse", "stream"),
            "quart-async": ("analyse", "stream", "chat"),
            "flask-celery": ("jobs",),
            "flask-celery-threads": ("jobs",),
            "flask-asgiref": ("analyse", "stream"),
            "flask-a2wsgi": ("analyse", "stream"),
            # One worker blocked by each call: 60 s warm-ups in stream, jobs and chat said nothing analyse
            # does not (its ceiling of 1); analyse keeps it in the reference.
            "fastapi-blocking": ("analyse",),
        },
        time_scale=0.5,
        duration_s=3.0,  # at least: the window still grows to 30 completions (8 s at 4 rps)
        max_warmup_s=60.0,  # 60 L: a point not settled by then is invalid anyway (fastapi-blocking's jobs)
        repeat=1,
        loadgen_processes=2,
    ),
}
