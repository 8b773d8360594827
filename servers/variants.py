"""The variant registry: every way this project serves the same app, in one place.

Like TechEmpower's benchmark_config.json: each entry names its framework, server, worker model and
counts, the concurrency ceiling theory predicts (how many upstream calls can be in flight at once), and
why it exists. Variants differ only in how they are served or in the one code path they are about
(``mode``); business logic, validation, JSON library, log level and client settings are shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Framework = Literal["flask", "fastapi"]
Server = Literal["gunicorn", "uvicorn"]
# flask: "sync" (def views) or "async-views"; fastapi: "async", "def" or "blocking" (see fastapi_app).
Mode = Literal["sync", "async-views", "async", "def", "blocking"]

GTHREAD_THREADS = 32  # 4 x 32 = 128: the sweep's top load level, so the ceiling is reachable in theory
GEVENT_CONNECTIONS = 1000  # gunicorn's default worker_connections
SDK_POOL = 1000  # anthropic's default max_connections per client
ANYIO_THREADS = 40  # anyio's default thread limiter, which runs FastAPI's plain def endpoints


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

    @property
    def app_target(self) -> str:
        return "servers.wsgi:app" if self.framework == "flask" else "servers.asgi:app"


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
