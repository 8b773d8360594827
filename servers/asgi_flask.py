"""ASGI entry point for the unchanged Flask app behind a WSGI-to-ASGI adapter on uvicorn:
``servers.asgi_flask:app`` (flask-asgiref, flask-a2wsgi; the variant's mode names the adapter),
configured from the environment (BENCH_*)."""

from __future__ import annotations

from typing import cast

from servers.flask_app import create_app
from servers.settings import load_settings
from servers.variants import get_variant
from servers.wsgi_on_asgi import Adapter, wsgi_on_asgi

_settings = load_settings()
_mode = get_variant(_settings.variant).mode if _settings.variant != "dev" else "a2wsgi"
if _mode not in ("asgiref", "a2wsgi"):
    raise ValueError(f"variant {_settings.variant!r} is not served through a WSGI-to-ASGI adapter")
app = wsgi_on_asgi(create_app(_settings), cast(Adapter, _mode))
