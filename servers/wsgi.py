"""WSGI entry point for gunicorn: ``servers.wsgi:app``, configured from the environment (BENCH_*)."""

from __future__ import annotations

from servers import gunicorn_errors
from servers.flask_app import create_app
from servers.settings import load_settings
from servers.variants import get_variant

gunicorn_errors.install()
_settings = load_settings()
_mode = get_variant(_settings.variant).mode if _settings.variant != "dev" else "sync"
app = create_app(_settings, async_views=_mode == "async-views")
