"""ASGI entry point for uvicorn: ``servers.asgi:app``, configured from the environment (BENCH_*)."""

from __future__ import annotations

from typing import cast

from servers.fastapi_app import Mode, create_app
from servers.settings import load_settings
from servers.variants import get_variant

_settings = load_settings()
_mode = get_variant(_settings.variant).mode if _settings.variant != "dev" else "async"
app = create_app(_settings, mode=cast(Mode, _mode))
