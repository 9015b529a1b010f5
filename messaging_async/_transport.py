"""The only module that touches httpx: failover across base URLs, retry rules, timeouts.

Every failure is classified by whether the request may have reached the gateway:

- before it left (DNS, connect refused or timed out, TLS, proxy): nothing was sent, so the
  next base URL is tried at once and the failed one is tried last for ``cooldown`` seconds;
- after it may have left (read timeout, reset, 5xx, 408): retried only when the caller says
  a retry cannot duplicate a message, else ``OutcomeUnknownError`` at once;
- 429: the gateway says it did not process the request; retried after ``Retry-After``.

Requests go as POST bodies, never query strings, so no credential is ever in a URL, and so
never in httpx's request log.
"""

from __future__ import annotations

import functools
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import urlsplit

import anyio
import httpx
import sniffio
from attrs import define, field, frozen

from ._version import __version__
from .errors import OutcomeUnknownError, UnreachableError, ValidationError
from .retry import RetryPolicy

__all__ = ["Answer", "SendProgress", "Transport", "check_base_urls", "make_timeout"]

logger = logging.getLogger("messaging_async.transport")

# Raised before a single byte of the request could have reached the gateway.
_NOT_SENT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)
_AMBIGUOUS_STATUSES = frozenset({408, 500, 502, 503, 504})
_THROTTLED = 429
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
USER_AGENT = f"messaging-async/{__version__}"


@frozen
class Answer:
    """An HTTP answer the gateway gave: status, body, and the base URL that gave it."""

    status: int
    body: bytes
    base_url: str
    text: str = field(init=False, repr=False)
    """The body as text, decoded once; PHP gateways often start it with a byte-order mark."""

    @text.default
    def _decode(self) -> str:
        return self.body.decode("utf-8", "replace").lstrip("\ufeff")


@frozen
class _RoundOver:
    """This round of attempts ended; ``pause`` is what the gateway asked for, if anything."""

    pause: float | None


class _NextHost:
    """Nothing was sent: try the next base URL at once."""


_NEXT_HOST: Final = _NextHost()


@define
class SendProgress:
    """Tells a caller that was cancelled whether its request may have left.

    ``in_flight`` is true while httpx holds the request; ``ambiguous`` once any attempt
    ended in a way that may have reached the gateway.
    """

    in_flight: bool = False
    ambiguous: bool = False

    @property
    def may_have_left(self) -> bool:
        return self.in_flight or self.ambiguous


class _Borrowed(httpx.AsyncBaseTransport):
    """An injected transport, used as given and left open: its owner closes it."""

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        return None


def make_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """Seconds (for every phase) or an ``httpx.Timeout``; ``None`` means the default, never
    "no timeout": a request without one can hang a blast forever."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValidationError("timeout must be a positive number of seconds or an httpx.Timeout")
    return httpx.Timeout(float(timeout), connect=min(5.0, float(timeout)))


def check_base_urls(urls: Sequence[str], *, field: str) -> tuple[str, ...]:
    """Validate base URLs (absolute http(s), a host, no credentials) and strip trailing ``/``."""
    if isinstance(urls, str) or not urls:
        raise ValidationError(f"{field} must be a non-empty sequence of URLs", field=field)
    checked = []
    for url in urls:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(f"{field}: {url!r} is not an absolute http(s) URL", field=field)
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValidationError(
                f"{field}: base URLs carry no credentials, query or fragment", field=field
            )
        checked.append(url.rstrip("/"))
    return tuple(checked)


HTTP_BACKENDS = ("httpx", "aiohttp")


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


def _aiohttp_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """httpx's API over aiohttp's connection handling (the ``[fast]`` extra)."""
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:
        raise ValidationError(
            "http_backend='aiohttp' needs the fast extra: pip install 'messaging-async[fast]'",
            field="http_backend",
        ) from None
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return AiohttpTransport(verify=shared_ssl_context(), limits=limits, trust_env=False)


def never_sent(exc: httpx.TransportError) -> bool:
    """Whether ``exc`` proves the request never left.

    httpx-aiohttp reports every ``aiohttp.ClientConnectionError`` as a ``ConnectTimeout`` —
    including a server that disconnects or a reset *after* the request was written. Only
    aiohttp's connector errors and connect timeouts really mean "not sent"; reading the
    original exception keeps a reset after sending from being re-sent as if it never left.
    """
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        import aiohttp

        return isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    return isinstance(exc, _NOT_SENT_ERRORS)


class Transport:
    """One pooled ``httpx.AsyncClient`` per SDK client, with failover and retry rules.

    ``max_connections`` also bounds the requests in flight through this transport, so no
    request ever waits inside httpcore's pool: cancelling such a waiting request leaks a
    pool slot in httpcore 1.0.x (httpcore issue #1093), and enough leaks starve the client.
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy,
        timeout: httpx.Timeout,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
        http_backend: str = "httpx",
    ):
        if http_backend not in HTTP_BACKENDS:
            raise ValidationError(
                f"http_backend must be one of {', '.join(HTTP_BACKENDS)}", field="http_backend"
            )
        if transport is None:  # ours to build, and to close
            http: httpx.AsyncBaseTransport = (
                _aiohttp_transport(max_connections)
                if http_backend == "aiohttp"
                else default_transport(max_connections)
            )
        else:  # the caller's: used as given, never closed by us
            http = _Borrowed(transport)
        self._backend = http_backend
        self._retry = retry
        self._cooling_until: dict[str, float] = {}
        self._limiter = anyio.CapacityLimiter(max_connections)
        self._client = httpx.AsyncClient(
            transport=http,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            trust_env=False,
        )

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(
        self,
        base_urls: Sequence[str],
        path: str,
        *,
        content: bytes,
        content_type: str,
        retry_after_send: bool,
        progress: SendProgress | None = None,
        ambiguous_answer: Callable[[Answer], bool] | None = None,
    ) -> Answer:
        """POST ``content`` to ``path`` under the first base URL that answers usably.

        ``ambiguous_answer`` flags answers that say the gateway failed midway (sms.com.my's
        1703, or a page that is no answer at all): they are retried like a 5xx page, and when
        the attempts run out the last such answer is returned for the caller to judge. Raises
        ``UnreachableError`` when no attempt can have reached the gateway and
        ``OutcomeUnknownError`` when one may have.
        """
        if self._backend == "aiohttp" and sniffio.current_async_library() != "asyncio":
            raise ValidationError(
                "http_backend='aiohttp' runs on asyncio only; use the default backend under trio",
                field="http_backend",
            )
        progress = progress if progress is not None else SendProgress()
        headers = {"Content-Type": content_type}
        notes: list[str] = []
        started = anyio.current_time()
        round_number = 0
        last_answer: Answer | None = None  # an ambiguous answer, if the last attempt gave one
        while True:
            retry_after: float | None = None
            for base_url in self._in_preferred_order(base_urls):
                if not self._may_attempt(notes, started):
                    return self._give_up(notes, progress, last_answer)
                result = await self._attempt(base_url, path, content, headers, progress, notes)
                last_answer = None
                if isinstance(result, Answer):
                    if ambiguous_answer is None or not ambiguous_answer(result):
                        return result
                    progress.ambiguous = True
                    last_answer = result
                    notes.append(f"{urlsplit(base_url).netloc}: an answer saying nothing certain")
                    result = _RoundOver(pause=None)
                if isinstance(result, _NextHost):
                    continue
                if progress.ambiguous and not retry_after_send:
                    return self._give_up(notes, progress, last_answer)
                retry_after = result.pause
                break
            round_number += 1
            pause = self._retry.backoff(round_number, retry_after)
            remaining = self._retry.max_elapsed - (anyio.current_time() - started)
            if not self._may_attempt(notes, started) or pause >= remaining:
                return self._give_up(notes, progress, last_answer)
            if pause > 0:
                logger.info("retrying in %.2fs after: %s", pause, notes[-1])
                await anyio.sleep(pause)

    async def _attempt(
        self,
        base_url: str,
        path: str,
        content: bytes,
        headers: dict[str, str],
        progress: SendProgress,
        notes: list[str],
    ) -> Answer | _NextHost | _RoundOver:
        """One HTTP attempt: a usable ``Answer``, or what to do next."""
        host = urlsplit(base_url).netloc
        async with self._limiter:
            # Cleared only once we know how the attempt ended: a cancellation arriving while
            # httpx holds the request leaves it set, and the request counts as maybe sent.
            progress.in_flight = True
            try:
                response = await self._client.post(
                    f"{base_url}/{path}", content=content, headers=headers
                )
            except httpx.TransportError as exc:
                progress.in_flight = False
                if never_sent(exc):
                    self._cool_down(base_url)
                    notes.append(f"{host}: not sent ({_describe(exc)})")
                    logger.warning(
                        "%s failed before sending (%s); trying the next base URL",
                        host,
                        _describe(exc),
                    )
                    return _NEXT_HOST
                progress.ambiguous = True
                notes.append(f"{host}: no answer after sending ({_describe(exc)})")
                return _RoundOver(pause=None)
            progress.in_flight = False
        self._cooling_until.pop(base_url, None)
        status = response.status_code
        if status in _AMBIGUOUS_STATUSES or status >= 500:
            progress.ambiguous = True
            notes.append(f"{host}: HTTP {status} in place of an answer")
            return _RoundOver(pause=_retry_after_seconds(response))
        if status == _THROTTLED:
            notes.append(f"{host}: HTTP 429, rate limited")
            return _RoundOver(pause=_retry_after_seconds(response))
        return Answer(status=status, body=response.content, base_url=base_url)

    def _in_preferred_order(self, base_urls: Sequence[str]) -> list[str]:
        """Provider order, with hosts that recently failed to connect moved last."""
        if not self._cooling_until:
            return list(base_urls)
        now = anyio.current_time()
        cooling = {url for url in base_urls if self._cooling_until.get(url, 0.0) > now}
        healthy = [url for url in base_urls if url not in cooling]
        return healthy + sorted(cooling, key=self._cooling_until.__getitem__)

    def _cool_down(self, base_url: str) -> None:
        if self._retry.cooldown > 0:
            self._cooling_until[base_url] = anyio.current_time() + self._retry.cooldown

    def _may_attempt(self, notes: list[str], started: float) -> bool:
        if len(notes) >= self._retry.max_attempts:
            return False
        return not notes or anyio.current_time() - started < self._retry.max_elapsed

    @staticmethod
    def _give_up(notes: list[str], progress: SendProgress, last_answer: Answer | None) -> Answer:
        """The last answer, if the last attempt gave one, for the caller to judge; else raise
        what the attempts amount to."""
        if last_answer is not None:
            return last_answer
        summary = f"no usable answer after {len(notes)} attempt(s); last: {notes[-1]}"
        if progress.ambiguous:
            raise OutcomeUnknownError(
                "the request may have reached the gateway: " + summary, attempts=tuple(notes)
            )
        raise UnreachableError(
            "the request never reached the gateway: " + summary, attempts=tuple(notes)
        )


def _describe(exc: Exception) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (either form the header allows), or ``None``."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
