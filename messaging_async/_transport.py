"""Failover across base URLs, retry rules and timeouts, over one ``_exchange`` per client.

Every failure is classified by whether the request may have reached the gateway:

- before it left (DNS, connect refused or timed out, TLS, proxy): nothing was sent, so the
  next base URL is tried at once and the failed one is tried last for ``cooldown`` seconds;
- after it may have left (read timeout, reset, 5xx, 408): retried only when the caller says
  a retry cannot duplicate a message, else ``OutcomeUnknownError`` at once;
- 429 (or 503 with ``Retry-After``): the gateway says it did not process the request;
  every send of the client pauses until the time it gives, then the same request goes
  again (see ``Transport._throttled``).

Every attempt first waits for its turn: the throttle pause, the client's rate limit, and a
connection slot (single sends have slots of their own). A per-call deadline (``_call``)
bounds all of it, failover and retries included.

Requests go as POST bodies, never query strings, so no credential is ever in a URL, and so
never in a request log.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import httpx
import sniffio

from ._attempts import Answer, Attempt, NextHost, RoundOver, SendProgress, give_up, judge
from ._call import CallOptions, current_call
from ._connections import (
    DEFAULT_TIMEOUT,
    HTTP_BACKENDS,
    Network,
    check_base_urls,
    check_keepalive_expiry,
    make_timeout,
)
from ._exchange import DEFAULT_KEEPALIVE_EXPIRY, Phases, Reply, SendFailed
from ._limiter import Lanes, Pacer, ThrottlePause
from ._observe import Observer, failure_kind, host_of
from ._shared import Shared, make_exchange
from .errors import ValidationError
from .rate import RateLimit
from .retry import RetryPolicy

__all__ = [
    "DEFAULT_KEEPALIVE_EXPIRY",
    "DEFAULT_TIMEOUT",
    "HTTP_BACKENDS",
    "Answer",
    "SendProgress",
    "Transport",
    "check_base_urls",
    "check_keepalive_expiry",
    "make_timeout",
]

logger = logging.getLogger("messaging_async.transport")

_PHASE_GRACE = 0.1  # seconds


class Transport:
    """One connection pool per SDK client, with failover, retry and throttling rules.

    ``max_connections`` also bounds the requests in flight through this transport (see
    ``Lanes``); ``single_send_capacity`` of them are kept for single sends.
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
        network: Network | None = None,
        single_send_capacity: int = 0,
        rate_limit: RateLimit | None = None,
        observer: Observer | None = None,
    ):
        """``keepalive_expiry`` and ``network`` apply to the connections we make; a caller's
        ``transport`` keeps its own settings."""
        expiry = check_keepalive_expiry(keepalive_expiry)
        exchange = make_exchange(
            http_backend, transport, timeout, max_connections, expiry, network or Network()
        )
        self._shared = Shared(
            exchange=exchange,
            backend=http_backend,
            lanes=Lanes(max_connections, single_send_capacity),
            pause=ThrottlePause(),
            observer=observer or Observer("gateway", None),
            cooling_until={},
        )
        self._shared.owner = self
        self._configure(retry, timeout, rate_limit, own_timeout=False)

    def _configure(
        self,
        retry: RetryPolicy,
        timeout: httpx.Timeout,
        rate_limit: RateLimit | None,
        *,
        own_timeout: bool,
    ) -> None:
        """``own_timeout``: this transport's timeouts differ from the exchange's, so every
        request says its own."""
        self._retry = retry
        self._phases: Phases = timeout.as_dict()
        self._phases_override = self._phases if own_timeout else None
        self._pacer = Pacer(rate_limit, self._shared.pause)
        self._exchange = self._shared.exchange
        self._cooling_until = self._shared.cooling_until
        self._observer = self._shared.observer

    def derive(
        self, *, retry: RetryPolicy, timeout: httpx.Timeout, rate_limit: RateLimit | None
    ) -> Transport:
        """A transport over the same connections and throttle pause, with its own retry
        policy, timeouts and rate limit (``with_options``). Closing it closes nothing: the
        connections belong to the original."""
        derived = object.__new__(Transport)
        derived._shared = self._shared
        owner = self._shared.owner
        own_timeout = owner is None or timeout.as_dict() != owner._phases
        derived._configure(retry, timeout, rate_limit, own_timeout=own_timeout)
        if rate_limit is not None and rate_limit == self._pacer.rate_limit:
            derived._pacer = self._pacer  # the same limit: the same count
        return derived

    @property
    def closed(self) -> bool:
        return self._exchange.closed

    @property
    def owns_connections(self) -> bool:
        return self._shared.owner is self

    @property
    def observer(self) -> Observer:
        return self._observer

    @property
    def rate_limit(self) -> RateLimit | None:
        return self._pacer.rate_limit

    def stop_sending(self) -> None:
        """From now on no request leaves; one already out still gets its answer read. Only
        the owner of the connections closes the door: a ``with_options`` copy's close
        leaves it open."""
        if self.owns_connections:
            self._shared.gate.shut()

    async def aclose(self) -> None:
        """Send nothing more, wait for the requests out (cancellable), close the pool; a
        ``with_options`` copy closes nothing."""
        if not self.owns_connections:
            return
        self._shared.gate.shut()
        try:
            await self._shared.gate.drained()
        finally:
            with anyio.CancelScope(shield=True):
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
        ``OutcomeUnknownError`` when one may have. ``progress.recipients`` counts against the
        rate limit.

        ``redact`` (the request's ``Redactor``) cleans what a failure says before it goes
        into a note, an exception or a log line: a malformed answer is quoted by httpx's and
        aiohttp's protocol errors, and may echo the request.
        """
        if self._shared.backend == "aiohttp" and sniffio.current_async_library() != "asyncio":
            raise ValidationError(
                "http_backend='aiohttp' runs on asyncio only; use the default backend under trio",
                field="http_backend",
            )
        progress = progress if progress is not None else SendProgress()
        attempt = Attempt(path, content, content_type, redact, progress.recipients, current_call())
        notes: list[str] = []
        started = anyio.current_time()
        round_number = 0
        last_answer: Answer | None = None  # an ambiguous answer, if the last attempt gave one
        while True:
            result: Answer | NextHost | RoundOver = RoundOver(pause=None)
            order = self._in_preferred_order(base_urls)
            tried = order[0]
            for position, base_url in enumerate(order):
                if not self._may_attempt(notes, started, attempt.call):
                    return give_up(notes, progress, last_answer)
                tried = base_url
                result = await self._attempt(base_url, attempt, progress, notes)
                last_answer = None
                if isinstance(result, Answer):
                    if ambiguous_answer is None or not ambiguous_answer(result):
                        return result
                    progress.ambiguous = True
                    last_answer = result
                    notes.append(f"{host_of(base_url)}: an answer saying nothing certain")
                    result = RoundOver(pause=None, reason="ambiguous_answer")
                if isinstance(result, NextHost):
                    if position + 1 < len(order):
                        logger.warning("%s; trying the next base URL", notes[-1])
                        self._observer.retry(
                            base_url,
                            path,
                            kind="failover",
                            reason=result.reason,
                            attempt=len(notes),
                            delay=0.0,
                        )
                    else:
                        logger.warning("%s", notes[-1])
                    continue
                if progress.ambiguous and not retry_after_send:
                    return give_up(notes, progress, last_answer)
                break
            round_number += 1
            over = result if isinstance(result, RoundOver) else RoundOver(pause=None)
            retry_after, throttled = over.pause, over.throttled
            pause = self._retry.backoff(round_number, retry_after)
            remaining = min(
                self._retry.max_elapsed - (anyio.current_time() - started),
                attempt.call.remaining(),
            )
            if not self._may_attempt(notes, started, attempt.call) or pause >= remaining:
                return give_up(notes, progress, last_answer)
            if throttled is not None:
                self._throttled(tried, path, throttled, pause, notes[-1])
                continue  # the next attempt waits for the shared pause to end
            self._observer.retry(
                tried, path, kind="retry", reason=over.reason, attempt=len(notes), delay=pause
            )
            if pause > 0:
                logger.info("retrying in %.2fs after: %s", pause, notes[-1])
                await anyio.sleep(pause)

    def _throttled(self, base_url: str, path: str, status: int, pause: float, note: str) -> None:
        """The gateway said it did not process the request (429, or 503 with Retry-After):
        every send of this client waits out one shared pause, then this same request goes
        again. For iSMS, which has no idempotency key, this is the only resend after a
        request left that cannot deliver a message twice: a throttling answer is given
        instead of processing the request, while every other failure after sending (a
        timeout, a reset, a 5xx page) may come after the gateway acted on it."""
        if self._shared.pause.extend_until(anyio.current_time() + pause):
            logger.warning("%s; pausing every send of this client for %.2fs", note, pause)
            self._observer.throttle(base_url, path, status, pause)

    async def _attempt(
        self, base_url: str, attempt: Attempt, progress: SendProgress, notes: list[str]
    ) -> Answer | NextHost | RoundOver:
        """One HTTP attempt: a usable ``Answer``, or what to do next."""
        single = attempt.call.single
        if attempt.call.deadline == math.inf:  # nothing to bound: no cancel scope to enter
            await self._take_turn(attempt.messages, single)
        else:
            with anyio.move_on_after(attempt.call.remaining()) as waiting:
                await self._take_turn(attempt.messages, single)
            if waiting.cancelled_caught:
                notes.append("not sent: the call's timeout passed while waiting for its turn")
                return RoundOver(pause=math.inf, reason="deadline")
        number = len(notes) + 1
        began = anyio.current_time() if self._observer.hooks is not None else 0.0
        try:
            if not self._shared.gate.admit():  # aclose() began: this request is never made
                notes.append("the client was closed")
                return give_up(notes, progress, None)
            # Cleared only once we know how the attempt ended: a cancellation arriving while
            # the request is out leaves it set, and the request counts as maybe sent.
            progress.in_flight = True
            try:
                reply = await self._post_within(f"{base_url}/{attempt.path}", attempt)
            except SendFailed as failure:
                progress.in_flight = False
                left = not failure.never_sent
                kind = failure_kind(failure.__cause__)
                self._report(base_url, attempt, number, began, failure=kind, may_have_left=left)
                return self._failed(
                    base_url, attempt.redact(str(failure)), failure, progress, notes
                )
            finally:
                self._shared.gate.leave()
            progress.in_flight = False
        finally:
            self._shared.lanes.release(single)
        self._report(base_url, attempt, number, began, status=reply.status, may_have_left=True)
        if self._cooling_until:
            self._cooling_until.pop(base_url, None)
        return judge(base_url, reply, progress, notes)

    async def _take_turn(self, messages: int, single: bool) -> None:
        """Wait out the throttle pause and the rate limit, then take a connection slot."""
        await self._pacer.wait_turn(messages, priority=single)
        await self._shared.lanes.acquire(single)

    def _report(
        self, base_url: str, attempt: Attempt, number: int, began: float, **outcome: Any
    ) -> None:
        if self._observer.hooks is None:  # nobody listens: no clock to read
            return
        duration = anyio.current_time() - began
        messages = attempt.messages
        self._observer.attempt(
            base_url, attempt.path, number, duration, messages=messages, **outcome
        )

    async def _post_within(self, url: str, attempt: Attempt) -> Reply:
        """The exchange's POST, ended at the call's deadline. Each phase's timeout is cut to
        what the call has left, but phases add up, and a server trickling its answer resets
        the read timeout with every byte: so the whole exchange is bounded too. One cut
        short may have reached the gateway."""
        call = attempt.call
        if call.deadline == math.inf:
            return await self._exchange.post(
                url, attempt.content, attempt.content_type, self._phases_override
            )
        # A little later than the phases' own limits, so a connect timeout still says
        # "never sent" when it is the one that fires.
        with anyio.move_on_after(call.remaining() + _PHASE_GRACE):
            return await self._exchange.post(
                url, attempt.content, attempt.content_type, self._phases_for(call)
            )
        raise SendFailed("no answer within the call's timeout", never_sent=False) from (
            TimeoutError()
        )

    def _phases_for(self, call: CallOptions) -> Phases | None:
        """This attempt's timeouts: the transport's, none longer than the call has left."""
        if call.deadline == math.inf:
            return self._phases_override
        left = max(0.001, call.remaining())
        return {
            phase: left if seconds is None else min(seconds, left)
            for phase, seconds in self._phases.items()
        }

    def _failed(
        self,
        base_url: str,
        said: str,
        failure: SendFailed,
        progress: SendProgress,
        notes: list[str],
    ) -> NextHost | RoundOver:
        """``said``: what the failure says, redacted."""
        host = host_of(base_url)
        kind = failure_kind(failure.__cause__)
        if failure.never_sent:
            self._cool_down(base_url)
            notes.append(f"{host}: not sent ({said})")
            return NextHost(kind)
        progress.ambiguous = True
        notes.append(f"{host}: no answer after sending ({said})")
        return RoundOver(pause=None, reason=kind)

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

    def _may_attempt(self, notes: list[str], started: float, call: CallOptions) -> bool:
        if len(notes) >= self._retry.max_attempts or call.remaining() <= 0:
            return False
        return not notes or anyio.current_time() - started < self._retry.max_elapsed
