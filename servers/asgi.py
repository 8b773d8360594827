"""ASGI entry point for uvicorn, granian and gunicorn's asgi worker: ``servers.asgi:app``, configured from
the environment (BENCH_*)."""

from __future__ import annotations

import sys
from typing import cast

from servers import gunicorn_errors
from servers.fastapi_app import Mode, create_app
from servers.settings import load_settings
from servers.variants import get_variant

if "gunicorn" in sys.modules:  # served by gunicorn's asgi worker (fastapi-gunicorn-asgi)
    gunicorn_errors.install_asgi()
_settings = load_settings()
_mode = get_variant(_settings.variant).mode if _settings.variant != "dev" else "async"
app = create_app(_settings, mode=cast(Mode, _mode))
