"""Root conftest: loaded before any test module, so the httpx2 alias is in place for every suite."""

from __future__ import annotations

# respx patches httpx/httpcore, but anthropic 2.x runs on httpx2: alias them before anything (respx
# included) imports the real httpx. Doing it here, once, makes it independent of collection order.
import httpx2

httpx2.alias_httpx()
