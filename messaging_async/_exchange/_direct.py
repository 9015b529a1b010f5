"""Requests that go straight to the gateway (no proxy): httpcore's own HTTP/1.1 connections
(h11 inside), kept in a pool of ours instead of ``httpcore.AsyncConnectionPool``.

Why: per request httpcore's pool re-examines every connection it holds (expired? the
socket readable? a ``poll`` each) twice, enters three shielded anyio cancel scopes, wraps
the answer in a stream of its own, and its connection layer takes an anyio lock (a trip
through the event loop) before handing the request to the HTTP/1.1 connection. None of it
is needed here: ``HttpxExchange`` never has more requests in flight than connections, so
no request ever waits for one, and each connection serves one request at a time. Over
loopback (50-recipient requests, 50 at a time) this pool cut the exchange's CPU per request
from about 260 to 170 µs (benchmarks/RESULTS.md, "Issue 17: SMS, third pass").

What the pool keeps from httpcore's: a connection idle longer than ``keepalive_expiry``, or
one the server has closed (the readable check), is never reused; at most ``size``
connections are open, an idle one to another origin closed to make room; a connection a
failure or cancellation left midway is closed, shielded, never reused. respx mocks
httpcore's pool class: while it does, ``HttpxExchange`` sends through that pool instead
(``mocked``), so tests of code using the SDK keep working.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, Iterable
from typing import cast

import anyio
import httpcore

__all__ = ["DirectPool", "mocked"]

_POOL_HANDLE = httpcore.AsyncConnectionPool.handle_async_request


def mocked() -> bool:
    """Whether something (respx) has replaced httpcore's pool's request method."""
    return httpcore.AsyncConnectionPool.handle_async_request is not _POOL_HANDLE


class DirectPool:
    """Up to ``size`` HTTP/1.1 connections, idle ones kept per origin (most recent first)."""

    def __init__(
        self,
        size: int,
        ssl_context: ssl.SSLContext,
        keepalive_expiry: float | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
        network_backend: httpcore.AsyncNetworkBackend,
    ) -> None:
        self._size = size
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._socket_options = list(socket_options or ())
        self._backend = network_backend
        self._connecting = 0
        self._closed = False
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTP11Connection]] = {}
        # Every open connection, idle or serving a request: what ``aclose`` closes.
        self.connections: list[httpcore.AsyncHTTP11Connection] = []

    async def send(self, request: httpcore.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The answer's status, headers and whole body."""
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        connection = await self._take(key, request)
        try:
            response = await connection.handle_async_request(request)
            parts = cast(AsyncIterable[bytes], response.stream)
            try:
                body = b"".join([part async for part in parts])
            finally:
                await response.aclose()  # the connection is idle again (or closed) here
        finally:
            if connection.is_idle() and self._keepalive_expiry != 0 and not self._closed:
                self._idle.setdefault(key, []).append(connection)
            else:  # not to be reused (closed, expiry 0, the pool closed while it was out),
                # or left midway by a cancellation
                await self._discard(connection)
        return response.status, response.headers, body

    async def _take(
        self, key: tuple[bytes, bytes, int], request: httpcore.Request
    ) -> httpcore.AsyncHTTP11Connection:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.has_expired():
                return connection
            await self._discard(connection)
        if len(self.connections) + self._connecting >= self._size:
            await self._make_room()
        self._connecting += 1
        try:
            return await self._connect(request)
        finally:
            self._connecting -= 1

    async def _make_room(self) -> None:
        """Close the longest-idle connection to any origin (the caller's bound on requests
        in flight means there is one whenever every connection is open)."""
        for idle in self._idle.values():
            if idle:
                await self._discard(idle.pop(0))
                return

    async def _connect(self, request: httpcore.Request) -> httpcore.AsyncHTTP11Connection:
        """A new connection, as httpcore's ``AsyncHTTPConnection`` makes one for HTTP/1.1."""
        origin = request.url.origin
        timeouts = request.extensions.get("timeout", {})
        timeout = timeouts.get("connect")
        host = origin.host.decode("ascii")
        stream = await self._backend.connect_tcp(
            host, origin.port, timeout=timeout, socket_options=self._socket_options
        )
        if origin.scheme == b"https":
            context = self._ssl_context
            context.set_alpn_protocols(["http/1.1"])
            # A failed or cancelled handshake closes the stream itself (``_native``, trio's).
            stream = await stream.start_tls(context, server_hostname=host, timeout=timeout)
        connection = httpcore.AsyncHTTP11Connection(
            origin=origin, stream=stream, keepalive_expiry=self._keepalive_expiry
        )
        _without_lock_trips(connection)
        self.connections.append(connection)
        return connection

    async def _discard(self, connection: httpcore.AsyncHTTP11Connection) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
        with anyio.CancelScope(shield=True):
            await connection.aclose()

    async def aclose(self) -> None:
        """Close every connection; one still being made (its request outlived a cancelled
        wait for the requests out) is closed when its request ends."""
        self._closed = True
        self._idle.clear()
        connections, self.connections = self.connections, []
        with anyio.CancelScope(shield=True):
            for connection in connections:
                await connection.aclose()


def _without_lock_trips(connection: httpcore.AsyncHTTP11Connection) -> None:
    """The connection's state lock, taken twice per request, made one that does not yield
    to the event loop when it is free (anyio's ``fast_acquire``; a pending cancellation
    is still raised). httpcore's lock takes a trip through the scheduler on every acquire,
    to let other tasks run; a connection here serves one request at a time, so its lock is
    always free: 899,000 -> 828,000 instructions per request over loopback (callgrind).
    Left as it is if httpcore no longer has the attribute."""
    if hasattr(connection, "_state_lock"):
        connection._state_lock = anyio.Lock(fast_acquire=True)  # type: ignore[assignment]
