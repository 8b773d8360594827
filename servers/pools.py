"""The SDK's HTTP client split into several connection pools, used in turn (``BENCH_UPSTREAM_POOLS``).

Why: httpcore's pool walks all of its connections each time a request arrives and each time one ends
(``_assign_requests_to_connections``), so with one pool per process every request costs CPU in proportion
to the calls in flight. The profile of fastapi-async at 64 users (``results/cpu64``) puts 8 % of its CPU per
request there. N pools, each holding about 1/N of the connections, make that walk N times shorter. The SDK,
its client options and each pool's own limits are unchanged; only which pool a request goes to is added.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import httpx2


class RoundRobinTransport(httpx2.BaseTransport):
    def __init__(self, transports: Sequence[httpx2.BaseTransport]) -> None:
        self._transports = list(transports)
        self._turn = itertools.cycle(self._transports)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return next(self._turn).handle_request(request)

    def close(self) -> None:
        for transport in self._transports:
            transport.close()


class AsyncRoundRobinTransport(httpx2.AsyncBaseTransport):
    def __init__(self, transports: Sequence[httpx2.AsyncBaseTransport]) -> None:
        self._transports = list(transports)
        self._turn = itertools.cycle(self._transports)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await next(self._turn).handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._transports:
            await transport.aclose()


def split_sync(first: httpx2.Client, others: Sequence[httpx2.Client]) -> httpx2.Client:
    """``first``, its requests spread in turn over its own pool and the pools of ``others`` (built alike)."""
    if others:
        transports = [first._transport, *(c._transport for c in others)]  # httpx2 has no public handle
        first._transport = RoundRobinTransport(transports)
    return first


def split_async(first: httpx2.AsyncClient, others: Sequence[httpx2.AsyncClient]) -> httpx2.AsyncClient:
    if others:
        transports = [first._transport, *(c._transport for c in others)]
        first._transport = AsyncRoundRobinTransport(transports)
    return first
