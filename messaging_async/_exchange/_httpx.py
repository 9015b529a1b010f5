"""Requests through httpx's transports: our pools (several small httpcore pools on a native
asyncio network backend) or the caller's transport.

Why not ``httpx.AsyncClient``: per request it merges URLs, headers and cookies, runs the
auth and redirect machinery and times the exchange — none of which we use — and that
measured about 70% of httpx's CPU per request on our benchmark machine. Handing a prebuilt
``httpx.Request`` to the client's transport keeps everything users rely on: its connection
pool, its timeouts, respx and ``httpx.MockTransport``.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable

import httpcore
import httpx
from attrs import define

from .._connections import Network
from ..errors import ValidationError
from ._base import DEFAULT_KEEPALIVE_EXPIRY, DIRECT, USER_AGENT, Phases, Reply, SendFailed, describe
from ._direct import DirectPool, mocked
from ._httpcore_logs import keep_answers_out_of_httpcore_logs
from ._native import NativeBackend

__all__ = ["SHARD_SIZE", "HttpxExchange", "default_transport", "shard_sizes"]

# Raised by httpx before a single byte of the request could have reached the gateway.
_NOT_SENT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


# Connections per httpcore pool. httpcore 1.0 re-examines every connection of a pool on
# every request and every response (its keep-alive check alone is quadratic in the pool's
# size: httpx #3215, httpcore #1035); at 50 connections that was most of the client's CPU.
# Small pools side by side keep that work small where httpcore's pool is used (through a
# proxy); see ``HttpxExchange``.
SHARD_SIZE = 4

_Headers = tuple[tuple[bytes, bytes], ...]

# One for every pool: it keeps no state of its own (see ``_native``).
_NATIVE = NativeBackend()


def default_transport(
    max_connections: int,
    keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
    network: Network = DIRECT,
    proxy: str | None = None,
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, HTTP/1.1, with ``TCP_NODELAY`` (httpcore may write a request's
    head and body apart, which Nagle's algorithm would hold back for an ACK: about 10% of
    throughput measured here), its connections on ``NativeBackend``. Idle connections are
    dropped after ``keepalive_expiry`` seconds (see ``DEFAULT_KEEPALIVE_EXPIRY``); requests
    go through ``proxy`` when given, the gateway's certificate checked as ``network`` says."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive_expiry,
    )
    try:
        transport = httpx.AsyncHTTPTransport(
            verify=network.ssl_context or False,
            limits=limits,
            proxy=proxy,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
    except ImportError as exc:  # a socks proxy without httpx's socks extra
        raise ValidationError(
            f"proxy: {exc.msg or exc}; install 'httpx[socks]'", field="proxy"
        ) from None
    # httpx takes no network backend; its pool (direct, HTTP or SOCKS proxy alike) keeps
    # the one it hands every connection it makes in ``_network_backend``.
    pool = transport._pool
    assert isinstance(pool._network_backend, httpcore.AsyncNetworkBackend)
    pool._network_backend = _NATIVE
    return transport


def shard_sizes(max_connections: int) -> list[int]:
    """``max_connections`` split into near-equal pools of at most ``SHARD_SIZE``."""
    count = -(-max_connections // SHARD_SIZE)
    base, extra = divmod(max_connections, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


@define
class _Shard:
    """One pool. ``pool``: httpcore's pool inside ``transport`` when the transport is ours,
    which requests then go to directly (see ``_through_pool``); ``direct``: our own pool
    of the same connections' kind, used instead when the requests go to the gateway
    without a proxy (see ``_direct``)."""

    transport: httpx.AsyncBaseTransport
    capacity: int
    in_flight: int = 0
    pool: httpcore.AsyncConnectionPool | None = None
    direct: DirectPool | None = None


# httpcore's failures, each re-raised as httpx's exception of the same name (as httpx's
# transport does): what callers, hooks and the "never sent" rule see does not depend on
# the path a request took.
_HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)


class HttpxExchange:
    """Requests through httpx transports: ours (closed with the client), or the caller's one
    (``owned=False``: used as given, closed by its owner).

    Ours, without a proxy: one ``DirectPool`` of every connection (``_direct``). Through a
    proxy: several small httpcore pools (``shard_sizes``), each request to the one with
    the most free connections. Either way the caller above bounds the requests in flight
    to the connections there are, so one is always free and no request ever waits inside
    httpcore (where a cancelled wait leaks a slot: httpcore #1093). Requests that go
    through a proxy the environment names for their host (``trust_env``) get pools of
    their own, made on first use.
    """

    def __init__(
        self,
        transports: list[tuple[httpx.AsyncBaseTransport, int]],
        timeout: httpx.Timeout,
        owned: bool,
        make_shards: Callable[[str | None], list[_Shard]] | None = None,
        network: Network = DIRECT,
    ):
        keep_answers_out_of_httpcore_logs()
        self._shards = [_Shard(transport, capacity) for transport, capacity in transports]
        self._owned = owned
        self._timeout = timeout.as_dict()
        self._closed = False
        self._network = network
        self._make_shards = make_shards
        # Only with trust_env and no explicit proxy does the proxy depend on the host.
        self._by_proxy: dict[str | None, list[_Shard]] | None = None
        if make_shards is not None and network.trust_env and network.proxy is None:
            self._by_proxy = {None: self._shards}

    @classmethod
    def pooled(
        cls,
        max_connections: int,
        timeout: httpx.Timeout,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        network: Network = DIRECT,
    ) -> HttpxExchange:
        def make_shards(proxy: str | None) -> list[_Shard]:
            if proxy is None:
                return [_direct_shard(max_connections, keepalive_expiry, network)]
            shards = []
            for size in shard_sizes(max_connections):
                transport = default_transport(size, keepalive_expiry, network, proxy)
                shards.append(_Shard(transport, size, pool=transport._pool))
            return shards

        exchange = cls([], timeout, owned=True, make_shards=make_shards, network=network)
        exchange._shards = make_shards(network.proxy)
        if exchange._by_proxy is not None:
            exchange._by_proxy[None] = exchange._shards
        return exchange

    @property
    def closed(self) -> bool:
        return self._closed

    async def post(
        self, url: str, content: bytes, content_type: str, phases: Phases | None = None
    ) -> Reply:
        shard = self._least_busy(url)
        timeout = self._timeout if phases is None else phases
        shard.in_flight += 1
        try:
            if shard.direct is not None and not mocked():
                return await _through_direct(shard.direct, url, content, content_type, timeout)
            if shard.pool is not None:
                return await _through_pool(shard.pool, url, content, content_type, timeout)
            return await _through_transport(shard.transport, url, content, content_type, timeout)
        finally:
            shard.in_flight -= 1

    def _least_busy(self, url: str) -> _Shard:
        shards = self._shards if self._by_proxy is None else self._shards_for(url)
        if len(shards) == 1:
            return shards[0]
        return max(shards, key=_free_connections)

    def _shards_for(self, url: str) -> list[_Shard]:
        assert self._by_proxy is not None
        assert self._make_shards is not None
        proxy = self._network.proxy_for(url)
        shards = self._by_proxy.get(proxy)
        if shards is None:
            shards = self._by_proxy[proxy] = self._make_shards(proxy)
        return shards

    async def aclose(self) -> None:
        self._closed = True
        if self._owned:
            groups = self._by_proxy.values() if self._by_proxy is not None else [self._shards]
            for shards in groups:
                for shard in shards:
                    if shard.direct is not None:
                        await shard.direct.aclose()
                    await shard.transport.aclose()


async def _through_transport(
    transport: httpx.AsyncBaseTransport, url: str, content: bytes, kind: str, timeout: Phases
) -> Reply:
    """The request through an httpx transport (the caller's: respx, ``MockTransport``...)."""
    parsed, fixed_headers = _target(url, kind)
    request = httpx.Request(
        "POST",
        parsed,
        headers=[*fixed_headers, _content_length(content)],
        stream=httpx.ByteStream(content),
        extensions={"timeout": timeout},
    )
    try:
        response = await transport.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()  # the connection goes back to its pool here
    except httpx.TransportError as exc:
        raise _failed(exc) from exc
    return Reply(response.status_code, body, response.headers.get("Retry-After"))


def _direct_shard(max_connections: int, keepalive_expiry: float, network: Network) -> _Shard:
    """One shard of every connection, served by a ``DirectPool`` (it has no per-request
    work that grows with its size, so it needs no splitting); the transport and its
    httpcore pool, made with the same settings, serve only while respx mocks httpcore."""
    transport = default_transport(max_connections, keepalive_expiry, network)
    pool = transport._pool
    assert pool._ssl_context is not None  # httpx always gives its pool one
    direct = DirectPool(
        max_connections,
        ssl_context=pool._ssl_context,
        keepalive_expiry=keepalive_expiry,
        socket_options=pool._socket_options,
        network_backend=_NATIVE,
    )
    return _Shard(transport, max_connections, pool=pool, direct=direct)


def _core_request(url: str, content: bytes, kind: str, timeout: Phases) -> httpcore.Request:
    """httpcore's request, its five fields set as ``Request.__init__`` would set them.
    ``__init__`` checks every header (bytes or ASCII text?) and the body's and headers'
    types through ``typing.Mapping``/``Sequence`` ABC checks: 6.2 µs a request, against
    0.6 µs for values that are ours and already in their final form (``_core_target``,
    made once per URL). ``tests/test_direct_pool.py`` holds the two to the same fields."""
    target, fixed_headers = _core_target(url, kind)
    request: httpcore.Request = _new_request(httpcore.Request)
    request.method = b"POST"
    request.url = target
    request.headers = [*fixed_headers, _content_length(content)]
    request.stream = _Body(content)
    request.extensions = {"timeout": timeout}
    return request


_new_request = object.__new__


def _as_httpx(exc: Exception) -> httpx.TransportError:
    """httpcore's failure as httpx's exception of the same name (as httpx's transport maps
    it); httpx's own (respx raises them) as it is."""
    if isinstance(exc, httpx.TransportError):
        return exc
    error: httpx.TransportError = getattr(httpx, type(exc).__name__, httpx.TransportError)(str(exc))
    error.__cause__ = exc
    return error


def _failed(error: httpx.TransportError) -> SendFailed:
    return SendFailed(describe(error), never_sent=isinstance(error, _NOT_SENT_ERRORS))


async def _through_direct(
    pool: DirectPool, url: str, content: bytes, kind: str, timeout: Phases
) -> Reply:
    """The request through our own pool of httpcore connections (see ``_direct``)."""
    try:
        status, headers, body = await pool.send(_core_request(url, content, kind, timeout))
    except _HTTPCORE_ERRORS as exc:
        error = _as_httpx(exc)
        raise _failed(error) from error
    return Reply(status, body, _retry_after(headers))


async def _through_pool(
    pool: httpcore.AsyncConnectionPool, url: str, content: bytes, kind: str, timeout: Phases
) -> Reply:
    """The request straight to our httpcore pool. httpx's transport would turn the request
    into httpcore's, the answer into an ``httpx.Response`` with a stream wrapper, and map
    exceptions around each step: about a tenth of the CPU per WhatsApp message, measured
    (benchmarks/RESULTS.md, "WhatsApp: before / after per stage")."""
    try:
        response = await pool.handle_async_request(_core_request(url, content, kind, timeout))
        try:
            body = await response.aread()
        finally:
            await response.aclose()  # the connection goes back to its pool here
    except (*_HTTPCORE_ERRORS, httpx.TransportError) as exc:  # respx raises httpx's errors
        error = _as_httpx(exc)
        raise _failed(error) from error
    return Reply(response.status, body, _retry_after(response.headers))


class _Body:
    """A request body as httpcore reads it: one chunk. Not an async generator (as httpcore's
    and httpx's byte streams are): one a cancellation leaves unfinished is finalised by the
    garbage collector, which trio reports as a ResourceWarning."""

    __slots__ = ("_content", "_given")

    def __init__(self, content: bytes):
        self._content = content
        self._given = False

    def __aiter__(self) -> _Body:
        self._given = False
        return self

    async def __anext__(self) -> bytes:
        if self._given:
            raise StopAsyncIteration
        self._given = True
        return self._content


def _retry_after(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"retry-after":
            return value.decode("latin-1")
    return None


def _free_connections(shard: _Shard) -> int:
    return shard.capacity - shard.in_flight


def _content_length(content: bytes) -> tuple[bytes, bytes]:
    return b"Content-Length", str(len(content)).encode()


@functools.lru_cache(maxsize=64)
def _target(url: str, content_type: str) -> tuple[httpx.URL, _Headers]:
    """The parsed URL and the headers httpx would write for it, made once per URL: given
    both, and the body as a stream, ``httpx.Request`` skips its URL parsing and header
    building (a sixth of its time, measured). URLs are few: base URLs times paths."""
    parsed = httpx.URL(url)
    headers = (
        (b"Host", parsed.netloc),
        (b"Content-Type", content_type.encode("ascii")),
        (b"User-Agent", USER_AGENT.encode("ascii")),
    )
    return parsed, headers


@functools.lru_cache(maxsize=64)
def _core_target(url: str, content_type: str) -> tuple[httpcore.URL, _Headers]:
    """``_target`` in httpcore's terms, made once per URL."""
    parsed, headers = _target(url, content_type)
    target = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return target, headers
