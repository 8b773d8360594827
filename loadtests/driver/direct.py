"""HTTP to the processes the harness started (the mock's control plane, a server's health and contract):
always direct, never through a proxy the environment names.

``urllib`` honours ``http_proxy`` even for 127.0.0.1 unless ``no_proxy`` lists it, so on a machine with a
proxy configured every readiness check, reset and stats call would leave for the proxy (and fail, or be
answered by it). The load itself goes direct too (geventhttpclient and the WebSocket client never read the
proxy variables).
"""

from __future__ import annotations

import urllib.request
from http.client import HTTPResponse

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def open_direct(request: urllib.request.Request | str, *, timeout: float) -> HTTPResponse:
    """``urllib.request.urlopen`` without any proxy; raises what urlopen raises."""
    response: HTTPResponse = _OPENER.open(request, timeout=timeout)
    return response
