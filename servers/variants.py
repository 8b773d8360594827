"""The variant registry: every way this project serves the same app, in one place.

Like TechEmpower's benchmark_config.json: each entry names its framework, server, worker model and
counts, the concurrency ceiling theory predicts (how many upstream calls can be in flight at once), and
why it exists. Variants differ only in how they are served or in the one code path they are about
(``mode``); business logic, validation, JSON library, log level and client settings are shared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

Framework = Literal["flask", "fastapi", "quart"]
Server = Literal["gunicorn", "uvicorn", "granian", "hypercorn"]
# flask: "sync" (def views), "async-views", "asgiref" / "a2wsgi" (the unchanged app behind that WSGI-to-ASGI
# adapter) or "celery" (jobs run by a Celery worker); fastapi: "async", "def" or "blocking" (see
# fastapi_app); quart: "async".
Mode = Literal["sync", "async-views", "async", "def", "blocking", "asgiref", "a2wsgi", "celery"]
CeleryPool = Literal["", "prefork", "threads"]
# What a load scenario exercises, by endpoint: analyse (POST /analyse), stream (/analyse/stream), jobs
# (/analyse/async + /jobs), chat (WS /ws/chat), overhead (/analyse against an instant upstream).
Scenario = Literal["analyse", "stream", "jobs", "chat", "overhead"]
SCENARIOS: tuple[Scenario, ...] = ("analyse", "stream", "jobs", "chat", "overhead")

GTHREAD_THREADS = 32  # 4 x 32 = 128: the sweep's top load level, so the ceiling is reachable in theory
GEVENT_CONNECTIONS = 1000  # gunicorn's default worker_connections
SDK_POOL = 1000  # anthropic's default max_connections per client
ANYIO_THREADS = 40  # anyio's default thread limiter, which runs FastAPI's plain def endpoints
# granian 2.x sizes a worker from its listen backlog (default 1024): backpressure = backlog / workers
# requests at once, and for WSGI half of that as blocking threads (granian/server/common.py).
GRANIAN_BACKPRESSURE = 1024
GRANIAN_WSGI_THREADS = GRANIAN_BACKPRESSURE // 2
SHEDDING_LIMIT = 64  # uvicorn --limit-concurrency
SYNC_MANY_WORKERS = 64  # flask-sync-64: the "just add workers" answer, one process per call in flight
# asgiref's WsgiToAsgi runs the WSGI app through sync_to_async(thread_sensitive=True): without a
# ThreadSensitiveContext (uvicorn sets none) every call goes to one process-wide single-thread executor.
ASGIREF_THREADS = 1
A2WSGI_THREADS = 10  # a2wsgi.WSGIMiddleware(app, workers=10): its ThreadPoolExecutor's default size
# Celery's worker without --concurrency: billiard.cpu_count(), which is os.cpu_count() (all CPUs, not
# the affinity mask), one prefork process each.
CELERY_DEFAULT_CONCURRENCY = os.cpu_count() or 1
CELERY_THREADS = 100  # flask-celery-threads: --pool threads --concurrency 100


@dataclass(frozen=True, kw_only=True)
class Variant:
    name: str
    framework: Framework
    server: Server
    worker_class: str  # gunicorn -k value, or "uvicorn" for uvicorn's own workers
    workers: int
    threads: int  # threads per worker (gthread); 1 otherwise
    connections: int  # connections per worker the server will hold (gevent, uvicorn); 1 for sync workers
    mode: Mode
    predicted_ceiling: int
    description: str
    # uvicorn --limit-concurrency: past this many connections or tasks it answers 503 itself; 0: no limit.
    limit_concurrency: int = 0
    # Scenarios this way of serving cannot run, each with the reason: the sweep records them as
    # unsupported instead of measuring a failure.
    unsupported: tuple[tuple[Scenario, str], ...] = ()
    # How a WebSocket handshake with a bad token is refused: 401 wherever the server can answer it over
    # plain HTTP; a server without ASGI's denial-response extension can only close, which it sends as 403.
    ws_refusal_status: int = 401
    # Celery variants: the worker's pool and concurrency (0: Celery's default, one per CPU), fed through
    # a Redis broker that `run` starts for the variant; the web tier only enqueues the jobs.
    celery_pool: CeleryPool = ""
    celery_concurrency: int = 0
    # The jobs scenario's own predicted ceiling where another tier than the web tier runs the jobs
    # (Celery); None: jobs are not predicted apart from predicted_ceiling.
    predicted_jobs_ceiling: int | None = None

    @property
    def broker(self) -> str | None:
        """The broker `run` starts beside the server ("redis"), or None."""
        return "redis" if self.celery_pool else None

    @property
    def app_target(self) -> str:
        if self.framework == "fastapi":
            return "servers.asgi:app"
        if self.framework == "quart":
            return "servers.asgi_quart:app"
        if self.mode in ("asgiref", "a2wsgi"):
            return "servers.asgi_flask:app"
        if self.mode == "celery":
            return "servers.wsgi_celery:app"
        return "servers.wsgi:app"

    @property
    def scenarios(self) -> tuple[Scenario, ...]:
        missing = {name for name, _ in self.unsupported}
        return tuple(s for s in SCENARIOS if s not in missing)

    def supports(self, scenario: str) -> bool:
        return scenario in self.scenarios


VARIANTS: tuple[Variant, ...] = (
    Variant(
        name="flask-sync",
        framework="flask",
        server="gunicorn",
        worker_class="sync",
        workers=4,
        threads=1,
        connections=1,
        mode="sync",
        predicted_ceiling=4,
        description="The article's Flask: gunicorn sync workers, one request per process at a time.",
    ),
    Variant(
        name="flask-gthread",
        framework="flask",
        server="gunicorn",
        worker_class="gthread",
        workers=4,
        threads=GTHREAD_THREADS,
        connections=1000,
        mode="sync",
        predicted_ceiling=4 * GTHREAD_THREADS,
        description=(
            "The same Flask app with 32 threads per worker: waiting on I/O releases the GIL, so threads "
            "are the cheap fix; 4 x 32 = 128 matches the top load level (keep-alive piles connections "
            "unevenly on workers, a real effect the sweep shows)."
        ),
    ),
    Variant(
        name="flask-gevent",
        framework="flask",
        server="gunicorn",
        worker_class="gevent",
        workers=1,
        threads=1,
        connections=GEVENT_CONNECTIONS,
        mode="sync",
        predicted_ceiling=GEVENT_CONNECTIONS,
        description=(
            "The same Flask app on a monkey-patched gevent worker: every blocking socket call yields. One "
            "process, like fastapi-async, so cooperative green threads meet an event loop on equal terms; "
            "ceiling 1000 worker connections (= the SDK pool)."
        ),
    ),
    Variant(
        name="flask-async-views",
        framework="flask",
        server="gunicorn",
        worker_class="sync",
        workers=4,
        threads=1,
        connections=1,
        mode="async-views",
        predicted_ceiling=4,
        description=(
            "A popular misconception: Flask `async def` views with AsyncAnthropic on sync workers. Each "
            "request still holds its worker until the view's event loop finishes, so the ceiling stays 4."
        ),
    ),
    Variant(
        name="fastapi-async",
        framework="fastapi",
        server="uvicorn",
        worker_class="uvicorn",
        workers=1,
        threads=1,
        connections=SDK_POOL,
        mode="async",
        predicted_ceiling=SDK_POOL,
        description=(
            "The article's FastAPI: one uvicorn process, `async def` endpoints awaiting AsyncAnthropic; "
            "bounded by the SDK's connection pool (1000)."
        ),
    ),
    Variant(
        name="fastapi-def",
        framework="fastapi",
        server="uvicorn",
        worker_class="uvicorn",
        workers=1,
        threads=ANYIO_THREADS,
        connections=SDK_POOL,
        mode="def",
        predicted_ceiling=ANYIO_THREADS,
        description=(
            "Plain `def` endpoints with the sync client: FastAPI runs them in anyio's thread pool, capped "
            "at 40 threads."
        ),
    ),
    Variant(
        name="fastapi-blocking",
        framework="fastapi",
        server="uvicorn",
        worker_class="uvicorn",
        workers=1,
        threads=1,
        connections=SDK_POOL,
        mode="blocking",
        predicted_ceiling=1,
        description=(
            "The classic bug: `async def` endpoints calling the sync client block the event loop, so one "
            "upstream call at a time for the whole process."
        ),
    ),
    Variant(
        name="fastapi-workers",
        framework="fastapi",
        server="uvicorn",
        worker_class="uvicorn",
        workers=4,
        threads=1,
        connections=SDK_POOL,
        mode="async",
        predicted_ceiling=4 * SDK_POOL,
        description=(
            "fastapi-async in 4 uvicorn processes (uvicorn --workers 4), the same process count as the "
            "Flask variants; ceiling 4 x the SDK pool."
        ),
    ),
    Variant(
        name="flask-granian",
        framework="flask",
        server="granian",
        worker_class="wsgi",
        workers=1,
        threads=GRANIAN_WSGI_THREADS,
        connections=GRANIAN_BACKPRESSURE,
        mode="sync",
        predicted_ceiling=GRANIAN_WSGI_THREADS,
        description=(
            "The unchanged Flask app on granian's WSGI interface with its defaults: one worker whose pool "
            "of 512 blocking threads (half its backpressure of 1024) runs the sync views, so the sync "
            "client waits in 512 threads at once."
        ),
        unsupported=(
            ("chat", "granian's WSGI interface has no WebSocket upgrade (flask-sock needs the raw socket)"),
        ),
    ),
    Variant(
        name="fastapi-granian",
        framework="fastapi",
        server="granian",
        worker_class="asgi",
        workers=1,
        threads=1,
        connections=GRANIAN_BACKPRESSURE,
        mode="async",
        predicted_ceiling=SDK_POOL,
        description=(
            "fastapi-async on granian's ASGI interface (a Rust I/O loop, 1 worker): bounded by the SDK "
            "pool (1000), under granian's backpressure of 1024."
        ),
    ),
    Variant(
        name="fastapi-gunicorn-asgi",
        framework="fastapi",
        server="gunicorn",
        worker_class="asgi",
        workers=1,
        threads=1,
        connections=GEVENT_CONNECTIONS,
        mode="async",
        predicted_ceiling=SDK_POOL,
        description=(
            "fastapi-async on gunicorn's native ASGI worker (-k asgi, 1 worker): gunicorn's own asyncio "
            "protocol instead of uvicorn's; it counts but does not cap worker connections, so the SDK "
            "pool (1000) bounds it. It lacks ASGI's WebSocket denial response, so a bad token's handshake "
            "is refused with 403, not 401."
        ),
        ws_refusal_status=403,
    ),
    Variant(
        name="fastapi-shedding",
        framework="fastapi",
        server="uvicorn",
        worker_class="uvicorn",
        workers=1,
        threads=1,
        connections=SHEDDING_LIMIT,
        mode="async",
        # uvicorn sheds when len(connections) >= 64 and the new connection is already counted: 63 served.
        predicted_ceiling=SHEDDING_LIMIT - 1,
        limit_concurrency=SHEDDING_LIMIT,
        description=(
            "fastapi-async with uvicorn --limit-concurrency 64: a request that finds 64 connections "
            "open (its own included, so 63 are served) or 64 requests running gets uvicorn's own "
            "plain-text 503 at once: it sheds instead of queueing; measure goodput, not only throughput."
        ),
    ),
    Variant(
        name="flask-sync-64",
        framework="flask",
        server="gunicorn",
        worker_class="sync",
        workers=SYNC_MANY_WORKERS,
        threads=1,
        connections=1,
        mode="sync",
        predicted_ceiling=SYNC_MANY_WORKERS,
        description=(
            'flask-sync with 64 workers: the usual answer to "Flask holds 4", one process per call in '
            "flight, priced in memory and start-up."
        ),
    ),
    Variant(
        name="quart-async",
        framework="quart",
        server="hypercorn",
        worker_class="uvloop",
        workers=1,
        threads=1,
        connections=SDK_POOL,
        mode="async",
        predicted_ceiling=SDK_POOL,
        description=(
            "Quart (Flask's API, async) with `async def` views awaiting AsyncAnthropic, on Quart's "
            "documented server, hypercorn, 1 worker on uvloop (uvicorn's loop too); bounded by the SDK "
            "pool (1000), like fastapi-async."
        ),
    ),
    Variant(
        name="flask-asgiref",
        framework="flask",
        server="uvicorn",
        worker_class="uvicorn",
        workers=1,
        threads=ASGIREF_THREADS,
        connections=SDK_POOL,
        mode="asgiref",
        predicted_ceiling=ASGIREF_THREADS,
        description=(
            "The unchanged Flask app behind asgiref's WsgiToAsgi on uvicorn, 1 process: asgiref runs "
            "every WSGI call through sync_to_async(thread_sensitive=True), and with no "
            "ThreadSensitiveContext (uvicorn sets none) that is one shared thread per process: 1 call. "
            "The front runs uvicorn's send in the request's context: asgiref's leaks its quit executor "
            "into the kept-alive connection, and 500s a fifth of the next requests."
        ),
        unsupported=(("chat", "a WSGI app behind a WSGI-to-ASGI adapter gets no WebSocket"),),
    ),
    Variant(
        name="flask-a2wsgi",
        framework="flask",
        server="uvicorn",
        worker_class="uvicorn",
        workers=1,
        threads=A2WSGI_THREADS,
        connections=SDK_POOL,
        mode="a2wsgi",
        predicted_ceiling=A2WSGI_THREADS,
        description=(
            "The unchanged Flask app behind a2wsgi's WSGIMiddleware with its defaults on uvicorn, 1 "
            "process: a ThreadPoolExecutor of 10 threads runs the WSGI calls: 10."
        ),
        unsupported=(("chat", "a WSGI app behind a WSGI-to-ASGI adapter gets no WebSocket"),),
    ),
    Variant(
        name="flask-celery",
        framework="flask",
        server="gunicorn",
        worker_class="sync",
        workers=4,
        threads=1,
        connections=1,
        mode="celery",
        predicted_ceiling=4,
        celery_pool="prefork",
        predicted_jobs_ceiling=CELERY_DEFAULT_CONCURRENCY,
        description=(
            "The article's advice: flask-sync's web tier, whose POST /analyse/async enqueues a Celery "
            "task on a real Redis broker; a Celery worker with its defaults (prefork, one process per "
            f"CPU: {CELERY_DEFAULT_CONCURRENCY} here) runs the jobs. /analyse etc. as flask-sync (4)."
        ),
    ),
    Variant(
        name="flask-celery-threads",
        framework="flask",
        server="gunicorn",
        worker_class="sync",
        workers=4,
        threads=1,
        connections=1,
        mode="celery",
        predicted_ceiling=4,
        celery_pool="threads",
        celery_concurrency=CELERY_THREADS,
        predicted_jobs_ceiling=CELERY_THREADS,
        description=(
            "flask-celery with the worker on a thread pool (--pool threads --concurrency 100): "
            "100 jobs at once, whatever the CPU count. /analyse etc. as flask-sync (4)."
        ),
    ),
)

_BY_NAME = {v.name: v for v in VARIANTS}


class UnknownVariantError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_variant(name: str) -> Variant:
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(_BY_NAME)
        raise UnknownVariantError(f"unknown variant {name!r}; known variants: {known}") from None
