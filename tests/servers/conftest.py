"""Fixtures for the servers tests (helpers live in serverkit.py)."""

from __future__ import annotations

import sys

# respx patches httpx/httpcore, but anthropic 2.x runs on httpx2: alias them before anything imports httpx.
# If another suite already imported the real httpx in this process, the respx tests skip themselves.
if "httpx" not in sys.modules:
    import httpx2

    httpx2.alias_httpx()

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def servers_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers-logs")
