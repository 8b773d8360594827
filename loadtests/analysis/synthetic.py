"""Synthetic runs that follow the queueing physics, for tests and for previewing the report.

With L the upstream latency and C a variant's concurrency ceiling, a closed loop of U users gives
throughput min(U, C) / L, latency L below the ceiling and U / C x L above it (the rest queue), and
the mock sees min(U, C) calls in flight. ``python -m loadtests.commands.synthetic OUT_DIR`` writes such a run
so the report can be looked at before any real sweep exists. Nothing here is a measurement.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from loadtests.results import CpuUsage, LittlesLaw, Percentiles, Point, RunResults, VariantInfo

# (framework, server, worker class, workers, predicted ceiling, server CPU ms per request)
VARIANTS: dict[str, tuple[str, str, str, int, int, float]] = {
    "flask-sync": ("flask", "gunicorn", "sync", 4, 4, 2.2),
    "flask-gthread": ("flask", "gunicorn", "gthread", 4, 32, 2.6),
    "flask-gevent": ("flask", "gunicorn", "gevent", 4, 4000, 2.4),
    "flask-async-views": ("flask", "gunicorn", "sync", 4, 4, 3.1),
    "fastapi-async": ("fastapi", "uvicorn", "asyncio", 1, 1000, 1.6),
    "fastapi-def": ("fastapi", "uvicorn", "threadpool", 1, 40, 2.0),
    "fastapi-blocking": ("fastapi", "uvicorn", "asyncio", 1, 1, 1.5),
    "fastapi-workers": ("fastapi", "uvicorn", "asyncio", 4, 4000, 1.8),
    "flask-granian": ("flask", "granian", "wsgi", 1, 512, 2.3),
    # The article's remedies (issue 23); not in a synthetic run unless named.
    "quart-async": ("quart", "hypercorn", "asyncio", 1, 1000, 1.9),
    "flask-asgiref": ("flask", "uvicorn", "asgiref", 1, 1, 2.4),
    "flask-a2wsgi": ("flask", "uvicorn", "a2wsgi", 1, 10, 2.4),
    "flask-celery": ("flask", "gunicorn", "sync+celery", 4, 2, 2.6),  # jobs: Celery prefork, 2 CPUs
    "flask-celery-threads": ("flask", "gunicorn", "sync+celery", 4, 100, 2.6),
}
DEFAULT_VARIANTS = tuple(VARIANTS)[:9]
SCENARIOS = ("analyse", "stream", "jobs", "chat", "overhead")
STREAMING = frozenset({"stream", "chat"})
USERS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
RATES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


@dataclass(frozen=True, kw_only=True)
class SyntheticSpec:
    variants: Sequence[str] = DEFAULT_VARIANTS
    scenarios: Sequence[str] = ("analyse", "stream")
    users: Sequence[int] = USERS
    rates: Sequence[float] = ()  # open-loop levels; empty: closed loop only
    repeats: int = 1
    upstream_latency_s: float = 1.0
    ttft_fraction: float = 0.3  # first chunk after this fraction of L
    noise: float = 0.01  # relative, seeded
    seed: int = 0
    mock_profile: str = "fixed"
    time_scale: float = 1.0
    preset: str = "synthetic"
    duration_s: float = 30.0
    ceilings: dict[str, int] = field(default_factory=dict)  # override a variant's real ceiling
    throughput_factor: dict[str, float] = field(default_factory=dict)  # scale one variant's throughput


def synthetic_run(spec: SyntheticSpec | None = None, **overrides: object) -> RunResults:
    """A complete run whose numbers follow the physics above (plus seeded noise)."""
    spec = replace(spec or SyntheticSpec(), **overrides)  # type: ignore[arg-type]
    rng = random.Random(spec.seed)
    points: list[Point] = []
    for variant in spec.variants:
        for scenario in spec.scenarios:
            for repeat in range(spec.repeats):
                for users in spec.users:
                    points.append(_closed_point(spec, rng, variant, scenario, users, repeat))
                for rate in spec.rates:
                    points.append(_open_point(spec, rng, variant, scenario, rate, repeat))
    return RunResults(metadata=_metadata(spec), variants=_variants(spec), points=points)


def modify(run: RunResults, change: Callable[[Point], Point | None]) -> RunResults:
    """A copy of ``run`` with ``change`` applied to every point (None drops the point)."""
    points = [new for p in run.points if (new := change(p)) is not None]
    return RunResults(metadata=dict(run.metadata), variants=list(run.variants), points=points)


def _ceiling(spec: SyntheticSpec, variant: str) -> int:
    return spec.ceilings.get(variant, VARIANTS[variant][4] if variant in VARIANTS else 1000)


def _closed_point(
    spec: SyntheticSpec, rng: random.Random, variant: str, scenario: str, users: int, repeat: int
) -> Point:
    big_l = spec.upstream_latency_s
    ceiling = _ceiling(spec, variant)
    in_flight = min(users, ceiling)
    jitter = 1.0 + rng.uniform(-spec.noise, spec.noise)
    throughput = in_flight / big_l * jitter * spec.throughput_factor.get(variant, 1.0)
    # Above the ceiling every request waits for users / ceiling upstream periods.
    latency_s = max(1.0, users / ceiling) * big_l * (1.0 + 0.01 * rng.random())
    ttft_s = None
    if scenario in STREAMING:
        ttft_s = (max(1.0, users / ceiling) - 1.0) * big_l + spec.ttft_fraction * big_l
    return _point(
        spec, rng, variant, scenario, "closed", users, None, repeat, throughput, latency_s, ttft_s, in_flight
    )


def _open_point(
    spec: SyntheticSpec, rng: random.Random, variant: str, scenario: str, rate: float, repeat: int
) -> Point:
    big_l = spec.upstream_latency_s
    ceiling = _ceiling(spec, variant)
    capacity = ceiling / big_l
    throughput = min(rate, capacity) * (1.0 + rng.uniform(-spec.noise, spec.noise))
    # Past capacity the queue grows for the whole window: the mean request waits half of it.
    overload = max(0.0, rate - capacity) / rate
    latency_s = big_l + overload * spec.duration_s / 2
    ttft_s = latency_s - (1 - spec.ttft_fraction) * big_l if scenario in STREAMING else None
    in_flight = min(ceiling, max(1, round(rate * big_l)))
    return _point(
        spec, rng, variant, scenario, "open", None, rate, repeat, throughput, latency_s, ttft_s, in_flight
    )


def _point(
    spec: SyntheticSpec,
    rng: random.Random,
    variant: str,
    scenario: str,
    load_model: str,
    users: int | None,
    rate: float | None,
    repeat: int,
    throughput: float,
    latency_s: float,
    ttft_s: float | None,
    in_flight: int,
) -> Point:
    completed = round(throughput * spec.duration_s)
    cpu_ms = (VARIANTS[variant][5] if variant in VARIANTS else 2.0) * (1.0 + rng.uniform(-0.05, 0.05))
    expected = float(users) if users is not None else (rate or 0.0) * latency_s
    measured = throughput * latency_s
    return Point(
        variant=variant,
        scenario=scenario,
        load_model=load_model,  # type: ignore[arg-type]
        users=users,
        rate=rate,
        repeat=repeat,
        warmup_s=5.0,
        duration_s=spec.duration_s,
        completed=completed,
        failed=0,
        unfinished=min(in_flight, users or in_flight),
        failures_by_status={},
        throughput_rps=throughput,
        latency_ms=_percentiles(latency_s * 1000, completed),
        ttft_ms=_percentiles(ttft_s * 1000, completed) if ttft_s is not None else None,
        upstream_peak_in_flight=in_flight,
        upstream_requests=completed + in_flight,
        predicted_ceiling=_ceiling(spec, variant),
        littles_law=LittlesLaw(
            expected_in_flight=expected,
            measured_in_flight=measured,
            ratio=measured / expected if expected else 1.0,
        ),
        server_cpu_ms_per_request=cpu_ms,
        cpu=CpuUsage(loadgen_percent=12.0, server_percent=throughput * cpu_ms / 10, mock_percent=8.0),
        valid=True,
    )


def _percentiles(median_ms: float, count: int) -> Percentiles:
    return Percentiles(
        p50=median_ms,
        p90=median_ms * 1.02,
        p95=median_ms * 1.03,
        p99=median_ms * 1.05,
        max=median_ms * 1.08,
        mean=median_ms * 1.01,
        min=median_ms * 0.98,
        count=count,
    )


def _metadata(spec: SyntheticSpec) -> dict[str, object]:
    return {
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:30:00Z",
        "python": "3.11",
        "packages": {},
        "cpu_count": 2,
        "cpu_model": "Synthetic CPU",
        "platform": "synthetic",
        "git_commit": "0000000",
        "git_dirty": False,
        "command_line": "synthetic",
        "preset": spec.preset,
        "mock_profile": spec.mock_profile,
        "time_scale": spec.time_scale,
        "seed": spec.seed,
        "upstream_latency_s": spec.upstream_latency_s,
        "scenarios": list(spec.scenarios),
        "load_models": ["closed", "open"] if spec.rates else ["closed"],
        "synthetic": True,
    }


def _variants(spec: SyntheticSpec) -> list[VariantInfo]:
    infos = []
    for name in spec.variants:
        framework, server, worker_class, workers, _, _ = VARIANTS.get(
            name, ("unknown", "unknown", "unknown", 1, 1000, 2.0)
        )
        infos.append(
            VariantInfo(
                name=name,
                framework=framework,
                server=server,
                worker_class=worker_class,
                workers=workers,
                predicted_ceiling=_ceiling(spec, name),
                verified=True,
            )
        )
    return infos
