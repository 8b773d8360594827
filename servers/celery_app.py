"""The Celery side of flask-celery and flask-celery-threads: the app, its settings and its one task.

The worker runs ``python -m celery --app servers.celery_app worker`` with Celery's defaults but for the
pool and concurrency the variant names; the web tier (``servers.celery_web``) sends the task. Redis is the
broker (``BENCH_BROKER_URL``, set by `python -m servers run` for the variant).

Celery keeps no results (``task_ignore_result``): the task records the job in the shared job store
(``servers.jobs``), as every variant's jobs do, so ``GET /jobs/{id}`` is the same code everywhere and the
ownership and deadline rules hold unchanged. Celery's Redis result backend would also subscribe the web
process to one result channel per job sent and never drain it when results are polled instead of awaited
(celery/celery#6963): a leak no variant should carry into a measurement.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import anthropic
from celery import Celery
from celery.signals import worker_ready

from servers import upstream
from servers.errors import ApiError
from servers.models import AnalyseRequest
from servers.service import Core, run_job_sync
from servers.settings import load_settings

BROKER_URL_ENV = "BENCH_BROKER_URL"
READY_FILE_ENV = "BENCH_CELERY_READY_FILE"  # `run` waits for the worker to create it
TASK_NAME = "servers.analyse_job"

app = Celery("servers", broker=os.environ.get(BROKER_URL_ENV, "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    # Celery's behaviour today, said explicitly (unset, Celery 5 warns that the default will change).
    broker_connection_retry_on_startup=True,
)

_lock = threading.Lock()
_runtime: dict[int, tuple[Core, anthropic.Anthropic]] = {}


def _core_and_client() -> tuple[Core, anthropic.Anthropic]:
    """One core and one sync client per worker process (made after the prefork pool forks), shared by
    the threads of a thread pool."""
    pid = os.getpid()
    with _lock:
        if pid not in _runtime:
            settings = load_settings()
            _runtime.clear()
            _runtime[pid] = (Core(settings), upstream.sync_client(settings))
        return _runtime[pid]


@app.task(name=TASK_NAME)
def analyse_job(job_id: str, request: dict[str, Any]) -> None:
    core, client = _core_and_client()
    # run_job_sync gives back one of this process's background slots; the pool, not the slots, bounds
    # how many jobs a worker runs, so a slot is free unless BENCH_MAX_BACKGROUND_JOBS is set below it.
    if not core.slots.try_acquire():
        core.job_failed(
            job_id,
            ApiError(status=503, error="jobs_busy", detail="The worker's background slots are all taken"),
        )
        return
    run_job_sync(core, client, job_id, AnalyseRequest.model_validate(request))


@worker_ready.connect
def _announce_ready(**_: Any) -> None:
    path = os.environ.get(READY_FILE_ENV)
    if path:
        Path(path).write_text(str(os.getpid()))
