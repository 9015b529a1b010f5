"""Requests through aiohttp (the ``[fast]`` extra; asyncio only)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import httpx

from .._connections import Network
from ..errors import ValidationError
from ._base import DEFAULT_KEEPALIVE_EXPIRY, DIRECT, USER_AGENT, Phases, Reply, SendFailed, describe

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpExchange"]


class AiohttpExchange:
    """Requests through an ``aiohttp.ClientSession`` (the ``[fast]`` extra; asyncio only).

    The session is made on first use, inside the running event loop, as aiohttp requires.
    aiohttp sets ``TCP_NODELAY`` itself.
    """

    def __init__(
        self,
        max_connections: int,
        timeout: httpx.Timeout,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        network: Network = DIRECT,
    ):
        if network.proxy is not None and network.proxy.startswith("socks"):
            raise ValidationError(
                "http_backend='aiohttp' has no socks proxies; use the default backend",
                field="proxy",
            )
        try:
            import aiohttp
        except ImportError:
            raise ValidationError(
                "http_backend='aiohttp' needs the fast extra: pip install 'messaging-async[fast]'",
                field="http_backend",
            ) from None
        self._aiohttp = aiohttp
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._network = network
        self._timeout = self._client_timeout(timeout.as_dict())
        self._session: aiohttp.ClientSession | None = None
        self._options: dict[str, Any] = {"allow_redirects": False}
        if network.proxy is not None:
            self._options["proxy"] = network.proxy
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _client_timeout(self, phases: Phases) -> aiohttp.ClientTimeout:
        return self._aiohttp.ClientTimeout(
            total=None,
            connect=phases["pool"],  # waiting for a pooled connection, connecting included
            sock_connect=phases["connect"],
            sock_read=phases["read"],
        )

    def _open(self) -> aiohttp.ClientSession:
        aiohttp = self._aiohttp
        # aiohttp checks the idle time when it hands a connection out, so none older than
        # ``keepalive_expiry`` is reused; 0 means a connection per request.
        reuse: dict[str, Any] = (
            {"keepalive_timeout": self._keepalive_expiry}
            if self._keepalive_expiry > 0
            else {"force_close": True}
        )
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            ssl=self._network.ssl_context or False,
            **reuse,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
            # aiohttp reads HTTP(S)_PROXY and NO_PROXY itself when trusted to.
            trust_env=self._network.trust_env,
        )
        return self._session

    async def post(
        self, url: str, content: bytes, content_type: str, phases: Phases | None = None
    ) -> Reply:
        session = self._session or self._open()
        options = self._options
        if phases is not None:
            options = {**options, "timeout": self._client_timeout(phases)}
        try:
            async with session.post(
                url, data=content, headers=_headers(content_type), **options
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


@functools.cache
def _headers(content_type: str) -> Mapping[str, str]:
    """The request's own headers, one read-only mapping per content type (aiohttp copies
    them into each request)."""
    return MappingProxyType({"Content-Type": content_type})
