"""One overall deadline per upstream call, enforced at the socket, the same way for sync and async clients.

The SDK's timeout is per read: a stream that drips one token a second never trips it, and a stall right
before the end costs a whole read timeout more. Here every connect, write and read of the SDK's connection
pool waits at most until the deadline of the call that is using it, so a call ends at its deadline
whatever the upstream does. The deadline travels in a context variable that the call sets around each
step (opening, each chunk read), so it is never left set between steps: safe for threads, greenlets,
asyncio tasks and iterators stepped from a thread pool alike.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anthropic
import httpcore2
import httpx2

_DEADLINE: ContextVar[float | None] = ContextVar("upstream_deadline", default=None)


class DeadlinePassed(TimeoutError):
    """The call's overall deadline passed (between chunks: the socket never got to time out)."""


@dataclass(frozen=True, kw_only=True)
class Deadline:
    at: float  # time.monotonic() value

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(at=time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self) -> None:
        if self.remaining() <= 0:
            raise DeadlinePassed("the upstream call's deadline passed")


@contextlib.contextmanager
def within(deadline: Deadline) -> Iterator[None]:
    """Every socket wait of the pool inside this block ends by ``deadline``."""
    token = _DEADLINE.set(deadline.at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _cap(timeout: float | None, error: type[Exception]) -> float | None:
    at = _DEADLINE.get()
    if at is None:
        return timeout
    remaining = at - time.monotonic()
    if remaining <= 0:
        raise error("the upstream call's deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


class _Stream(httpcore2.NetworkStream):
    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cap(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cap(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        return _Stream(
            self._inner.start_tls(ssl_context, server_hostname, _cap(timeout, httpcore2.ConnectTimeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore2.NetworkBackend):
    def __init__(self, inner: httpcore2.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        capped = _cap(timeout, httpcore2.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, capped, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        capped = _cap(timeout, httpcore2.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, capped, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncStream(httpcore2.AsyncNetworkStream):
    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _cap(timeout, httpcore2.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, _cap(timeout, httpcore2.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        capped = _cap(timeout, httpcore2.ConnectTimeout)
        return _AsyncStream(await self._inner.start_tls(ssl_context, server_hostname, capped))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class AsyncDeadlineBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self, inner: httpcore2.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        capped = _cap(timeout, httpcore2.ConnectTimeout)
        return _AsyncStream(await self._inner.connect_tcp(host, port, capped, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        capped = _cap(timeout, httpcore2.ConnectTimeout)
        return _AsyncStream(await self._inner.connect_unix_socket(path, capped, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _client_options(limits: httpx2.Limits | None, trust_env: bool) -> dict[str, Any]:
    return {"trust_env": trust_env, **({} if limits is None else {"limits": limits})}


def sync_http_client(
    limits: httpx2.Limits | None = None, *, trust_env: bool = True
) -> anthropic.DefaultHttpxClient:
    """The SDK's own default HTTP client (its limits unless given, keep-alive), its pool's sockets bound by
    the deadline. ``trust_env=False``: no proxy (nor other setting) from the environment."""
    client = anthropic.DefaultHttpxClient(**_client_options(limits, trust_env))
    pool = client._transport._pool  # type: ignore[attr-defined]  # httpx2 has no public handle on it
    pool._network_backend = DeadlineBackend(pool._network_backend)
    return client


def async_http_client(
    limits: httpx2.Limits | None = None, *, trust_env: bool = True
) -> anthropic.DefaultAsyncHttpxClient:
    client = anthropic.DefaultAsyncHttpxClient(**_client_options(limits, trust_env))
    pool = client._transport._pool  # type: ignore[attr-defined]
    pool._network_backend = AsyncDeadlineBackend(pool._network_backend)
    return client
