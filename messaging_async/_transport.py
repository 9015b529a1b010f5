"""Failover across base URLs, retry rules and timeouts, over one ``_exchange`` per client.

Every failure is classified by whether the request may have reached the gateway:

- before it left (DNS, connect refused or timed out, TLS, proxy): nothing was sent, so the
  next base URL is tried at once and the failed one is tried last for ``cooldown`` seconds;
- after it may have left (read timeout, reset, 5xx, 408): retried only when the caller says
  a retry cannot duplicate a message, else ``OutcomeUnknownError`` at once;
- 429: the gateway says it did not process the request; retried after ``Retry-After``.

Requests go as POST bodies, never query strings, so no credential is ever in a URL, and so
never in a request log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
import httpx
import sniffio
from attrs import define, field, frozen

from ._exchange import (
    DEFAULT_KEEPALIVE_EXPIRY,
    AiohttpExchange,
    Exchange,
    HttpxExchange,
    Reply,
    SendFailed,
)
from .errors import OutcomeUnknownError, UnreachableError, ValidationError
from .retry import RetryPolicy

__all__ = [
    "DEFAULT_KEEPALIVE_EXPIRY",
    "Answer",
    "SendProgress",
    "Transport",
    "check_base_urls",
    "check_keepalive_expiry",
    "make_timeout",
]

logger = logging.getLogger("messaging_async.transport")

_AMBIGUOUS_STATUSES = frozenset({408, 500, 502, 503, 504})
_THROTTLED = 429
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


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
MAX_KEEPALIVE_EXPIRY = 3600.0


def check_keepalive_expiry(value: object) -> float:
    """Seconds an idle connection may wait for reuse: a number from 0 (a new connection per
    request) to an hour. Keep it under the gateway's own keep-alive timeout."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_KEEPALIVE_EXPIRY  # also refuses nan
    ):
        raise ValidationError(
            f"keepalive_expiry must be a number of seconds from 0 to {MAX_KEEPALIVE_EXPIRY:g}",
            field="keepalive_expiry",
        )
    return float(value)


def _make_exchange(
    backend: str,
    transport: httpx.AsyncBaseTransport | None,
    timeout: httpx.Timeout,
    max_connections: int,
    keepalive_expiry: float,
) -> Exchange:
    if backend not in HTTP_BACKENDS:
        raise ValidationError(
            f"http_backend must be one of {', '.join(HTTP_BACKENDS)}", field="http_backend"
        )
    if transport is not None:  # the caller's: used as given, never closed by us
        if backend != "httpx":
            raise ValidationError(
                "transport= takes an httpx transport; it cannot be combined with "
                f"http_backend={backend!r}",
                field="http_backend",
            )
        return HttpxExchange([(transport, max_connections)], timeout, owned=False)
    if backend == "aiohttp":
        return AiohttpExchange(max_connections, timeout, keepalive_expiry)
    return HttpxExchange.pooled(max_connections, timeout, keepalive_expiry)


class Transport:
    """One connection pool per SDK client, with failover and retry rules.

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
        keepalive_expiry: object = DEFAULT_KEEPALIVE_EXPIRY,
    ):
        """``keepalive_expiry`` applies to the connections we make; a caller's ``transport``
        keeps its own settings."""
        expiry = check_keepalive_expiry(keepalive_expiry)
        self._backend = http_backend
        self._exchange = _make_exchange(http_backend, transport, timeout, max_connections, expiry)
        self._retry = retry
        self._cooling_until: dict[str, float] = {}
        self._limiter = anyio.CapacityLimiter(max_connections)

    @property
    def closed(self) -> bool:
        return self._exchange.closed

    async def aclose(self) -> None:
        await self._exchange.aclose()

    async def post(
        self,
        base_urls: Sequence[str],
        path: str,
        *,
        content: bytes,
        content_type: str,
        retry_after_send: bool,
        redact: Callable[[str], str],
        progress: SendProgress | None = None,
        ambiguous_answer: Callable[[Answer], bool] | None = None,
    ) -> Answer:
        """POST ``content`` to ``path`` under the first base URL that answers usably.

        ``ambiguous_answer`` flags answers that say the gateway failed midway (sms.com.my's
        1703, or a page that is no answer at all): they are retried like a 5xx page, and when
        the attempts run out the last such answer is returned for the caller to judge. Raises
        ``UnreachableError`` when no attempt can have reached the gateway and
        ``OutcomeUnknownError`` when one may have.

        ``redact`` (the request's ``Redactor``) cleans what a failure says before it goes
        into a note, an exception or a log line: a malformed answer is quoted by httpx's and
        aiohttp's protocol errors, and may echo the request.
        """
        if self._backend == "aiohttp" and sniffio.current_async_library() != "asyncio":
            raise ValidationError(
                "http_backend='aiohttp' runs on asyncio only; use the default backend under trio",
                field="http_backend",
            )
        progress = progress if progress is not None else SendProgress()
        notes: list[str] = []
        started = anyio.current_time()
        round_number = 0
        last_answer: Answer | None = None  # an ambiguous answer, if the last attempt gave one
        while True:
            retry_after: float | None = None
            for base_url in self._in_preferred_order(base_urls):
                if not self._may_attempt(notes, started):
                    return self._give_up(notes, progress, last_answer)
                result = await self._attempt(
                    base_url, path, content, content_type, progress, notes, redact
                )
                last_answer = None
                if isinstance(result, Answer):
                    if ambiguous_answer is None or not ambiguous_answer(result):
                        return result
                    progress.ambiguous = True
                    last_answer = result
                    notes.append(f"{_host(base_url)}: an answer saying nothing certain")
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
        content_type: str,
        progress: SendProgress,
        notes: list[str],
        redact: Callable[[str], str],
    ) -> Answer | _NextHost | _RoundOver:
        """One HTTP attempt: a usable ``Answer``, or what to do next."""
        await _acquire(self._limiter)
        try:
            # Cleared only once we know how the attempt ended: a cancellation arriving while
            # the request is out leaves it set, and the request counts as maybe sent.
            progress.in_flight = True
            try:
                reply = await self._exchange.post(f"{base_url}/{path}", content, content_type)
            except SendFailed as failure:
                progress.in_flight = False
                return self._failed(base_url, redact(str(failure)), failure, progress, notes)
            progress.in_flight = False
        finally:
            self._limiter.release()
        if self._cooling_until:
            self._cooling_until.pop(base_url, None)
        status = reply.status
        if status in _AMBIGUOUS_STATUSES or status >= 500:
            progress.ambiguous = True
            notes.append(f"{_host(base_url)}: HTTP {status} in place of an answer")
            return _RoundOver(pause=_retry_after_seconds(reply))
        if status == _THROTTLED:
            notes.append(f"{_host(base_url)}: HTTP 429, rate limited")
            return _RoundOver(pause=_retry_after_seconds(reply))
        return Answer(status=status, body=reply.body, base_url=base_url)

    def _failed(
        self,
        base_url: str,
        said: str,
        failure: SendFailed,
        progress: SendProgress,
        notes: list[str],
    ) -> _NextHost | _RoundOver:
        """``said``: what the failure says, redacted."""
        host = _host(base_url)
        if failure.never_sent:
            self._cool_down(base_url)
            notes.append(f"{host}: not sent ({said})")
            logger.warning("%s failed before sending (%s); trying the next base URL", host, said)
            return _NEXT_HOST
        progress.ambiguous = True
        notes.append(f"{host}: no answer after sending ({said})")
        return _RoundOver(pause=None)

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


async def _acquire(limiter: anyio.CapacityLimiter) -> None:
    """``limiter.acquire()``, without its two scheduler round trips when a token is free.

    A cancellation already pending is still raised here, before anything is sent, so the
    request is honestly ``not_sent`` rather than maybe sent.
    """
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        await limiter.acquire()
    else:
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            limiter.release()
            raise


def _host(base_url: str) -> str:
    return urlsplit(base_url).netloc


def _retry_after_seconds(reply: Reply) -> float | None:
    """``Retry-After`` as seconds (either form the header allows), or ``None``."""
    value = (reply.retry_after or "").strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
