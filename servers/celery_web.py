"""flask-celery's web tier: the unchanged Flask app, whose ``POST /analyse/async`` enqueues a Celery task.

Only that view changes (by its endpoint name, so the Flask adapter itself stays as flask-sync serves it):
it records the job in the shared job store as queued for another process, then sends the task through
the broker. ``GET /jobs/{id}`` is the Flask adapter's own: the task writes the job's state to the same
store, so a job is visible only to the token that made it and found whichever web worker answers.
"""

from __future__ import annotations

from celery.exceptions import OperationalError
from flask import Flask, Response, request

from servers.celery_app import analyse_job
from servers.errors import ApiError
from servers.jsonio import JSON_MEDIA_TYPE
from servers.service import JOB_GRACE_S, Core, job_created_body
from servers.settings import Settings
from servers.validation import parse_body, validate_request

ENDPOINT = "analyse_async_job"  # the Flask adapter's view for POST /analyse/async


def broker_unavailable() -> ApiError:
    return ApiError(
        status=503,
        error="broker_unavailable",
        detail="The job queue's broker did not take the job; retry shortly",
        headers={"Retry-After": "1"},
    )


def use_celery_jobs(app: Flask, settings: Settings) -> None:
    if ENDPOINT not in app.view_functions:
        raise RuntimeError(f"the Flask app has no {ENDPOINT!r} view to hand to Celery")
    core = Core(settings)  # the same job store and rate limit (one SQLite file) as the app's own core
    # A job is failed by the first poll after this (servers.jobs); Celery drops the task if a worker
    # only gets to it later, so an expired job never runs.
    expires_s = settings.upstream_deadline_s + JOB_GRACE_S

    def analyse_async_job() -> Response:
        # The Flask adapter's order: decode JSON, then authenticate, then validate against the model.
        data = parse_body(request.get_data(cache=False), request.headers.get("Content-Type"))
        who = core.authorize(request.headers.get("Authorization"))
        req = validate_request(data)
        job_id = core.jobs.create(who.owner, runs_here=False)
        try:
            analyse_job.apply_async((job_id, req.model_dump(mode="json")), task_id=job_id, expires=expires_s)
        except OperationalError:
            error = broker_unavailable()
            core.job_failed(job_id, error)
            raise error from None
        return Response(job_created_body(job_id), status=202, content_type=JSON_MEDIA_TYPE)

    app.view_functions[ENDPOINT] = analyse_async_job
