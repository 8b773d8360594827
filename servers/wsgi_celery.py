"""WSGI entry point for the Celery variants' web tier (gunicorn): ``servers.wsgi_celery:app``, configured
from the environment (BENCH_*, and BENCH_BROKER_URL for the broker `run` started)."""

from __future__ import annotations

from servers import gunicorn_errors
from servers.celery_web import use_celery_jobs
from servers.flask_app import create_app
from servers.settings import load_settings

gunicorn_errors.install()
_settings = load_settings()
app = create_app(_settings)
use_celery_jobs(app, _settings)
