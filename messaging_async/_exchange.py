"""One HTTP POST and its answer, over httpx's transport or over aiohttp: the only code that
does network I/O. ``_transport`` builds failover and retry rules on top of it.

Both exchanges answer the one question the retry rules need about a failure: could the
request have reached the gateway? (``SendFailed.never_sent``). Neither follows redirects,
stores cookies or reads proxy settings from the environment.

Why not ``httpx.AsyncClient``: per request it merges URLs, headers and cookies, runs the
auth and redirect machinery and times the exchange — none of which we use — and that
measured about 70% of httpx's CPU per request on our benchmark machine. Handing a prebuilt
``httpx.Request`` to the client's transport keeps everything users rely on: its connection
pool, its timeouts, respx and ``httpx.MockTransport``.
"""

from __future__ import annotations

import functools
import socket
import ssl
from typing import TYPE_CHECKING, Protocol

import httpx
from attrs import frozen

from ._version import __version__
from .errors import ValidationError

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "AiohttpExchange",
    "Exchange",
    "HttpxExchange",
    "Reply",
    "SendFailed",
    "default_transport",
    "shared_ssl_context",
]

USER_AGENT = f"messaging-async/{__version__}"

# Raised by httpx before a single byte of the request could have reached the gateway.
_NOT_SENT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


@frozen
class Reply:
    """The HTTP answer: status, body bytes, and the ``Retry-After`` header if there was one."""

    status: int
    body: bytes
    retry_after: str | None = None


class SendFailed(Exception):
    """No HTTP answer came back. ``never_sent``: the request certainly did not leave."""

    def __init__(self, description: str, *, never_sent: bool):
        super().__init__(description)
        self.never_sent = never_sent


class Exchange(Protocol):
    @property
    def closed(self) -> bool: ...

    async def post(self, url: str, content: bytes, content_type: str) -> Reply:
        """POST ``content``; the reply, or ``SendFailed``."""

    async def aclose(self) -> None: ...


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One SSL context for every client: building one costs milliseconds and memory each."""
    return httpx.create_ssl_context()


def default_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """httpx's own transport, HTTP/1.1, pool sized to the concurrency, with ``TCP_NODELAY``:
    the request headers and body go out in separate writes, which Nagle's algorithm would
    otherwise hold back for an ACK (about 10% of throughput measured here)."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncHTTPTransport(
        verify=shared_ssl_context(),
        limits=limits,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )


def describe(exc: BaseException) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class HttpxExchange:
    """Requests through an ``httpx.AsyncBaseTransport``: ours (closed with the client) or the
    caller's (``owned=False``: used as given, closed by its owner)."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout, owned: bool):
        self._transport = transport
        self._owned = owned
        self._timeout = timeout.as_dict()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def post(self, url: str, content: bytes, content_type: str) -> Reply:
        request = httpx.Request(
            "POST",
            _parsed_url(url),
            content=content,
            headers={"Content-Type": content_type, "User-Agent": USER_AGENT},
            extensions={"timeout": self._timeout},
        )
        try:
            response = await self._transport.handle_async_request(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise SendFailed(describe(exc), never_sent=isinstance(exc, _NOT_SENT_ERRORS)) from exc
        return Reply(response.status_code, body, response.headers.get("Retry-After"))

    async def aclose(self) -> None:
        self._closed = True
        if self._owned:
            await self._transport.aclose()


@functools.lru_cache(maxsize=64)
def _parsed_url(url: str) -> httpx.URL:
    """URLs are few (base URLs times paths) and parsing one is most of ``httpx.Request``'s cost."""
    return httpx.URL(url)


class AiohttpExchange:
    """Requests through an ``aiohttp.ClientSession`` (the ``[fast]`` extra; asyncio only).

    The session is made on first use, inside the running event loop, as aiohttp requires.
    aiohttp sets ``TCP_NODELAY`` itself.
    """

    def __init__(self, max_connections: int, timeout: httpx.Timeout):
        try:
            import aiohttp
        except ImportError:
            raise ValidationError(
                "http_backend='aiohttp' needs the fast extra: pip install 'messaging-async[fast]'",
                field="http_backend",
            ) from None
        self._aiohttp = aiohttp
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeout.pool,  # waiting for a pooled connection, connecting included
            sock_connect=timeout.connect,
            sock_read=timeout.read,
        )
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _open(self) -> aiohttp.ClientSession:
        aiohttp = self._aiohttp
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, ssl=shared_ssl_context()
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )
        return self._session

    async def post(self, url: str, content: bytes, content_type: str) -> Reply:
        session = self._session or self._open()
        headers = {"Content-Type": content_type}
        try:
            async with session.post(
                url, data=content, headers=headers, allow_redirects=False
            ) as response:
                body = await response.read()
                return Reply(response.status, body, response.headers.get("Retry-After"))
        except (self._aiohttp.ClientError, TimeoutError) as exc:
            raise SendFailed(describe(exc), never_sent=self._never_sent(exc)) from exc

    def _never_sent(self, exc: BaseException) -> bool:
        """Only a failure to get a connection proves the request never left; a disconnect,
        reset or read timeout may come after the gateway had it all."""
        aiohttp = self._aiohttp
        return isinstance(
            exc,
            aiohttp.ClientConnectorError
            | aiohttp.ConnectionTimeoutError
            | aiohttp.InvalidURL
            | aiohttp.ClientProxyConnectionError,
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
