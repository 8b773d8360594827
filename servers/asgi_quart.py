"""ASGI entry point for hypercorn: ``servers.asgi_quart:app`` (quart-async), configured from the environment
(BENCH_*)."""

from __future__ import annotations

from servers.quart_app import create_app
from servers.settings import load_settings

app = create_app(load_settings())
