"""``WebhookReceiver``: a plain ASGI 3 app that receives every gateway callback.

No framework is imported: it runs under any ASGI server and mounts in FastAPI, Starlette or
Litestar as it is. Neither gateway signs its callbacks, so the caller is authenticated by a
shared secret in the callback URL you register (``?token=…``), compared in constant time
before anything else is looked at (path, method, body); the token is removed before
parsing, so it never reaches an event's ``raw``. Bodies are read within ``body_timeout``,
handlers run within ``handler_timeout``, and a de-duplication claim (``_dedupe``) is
always completed or released.

Routes, relative to where the app is mounted::

    POST|GET /isms/whatsapp       iSMS inbound WhatsApp        → on_whatsapp(WhatsAppInbound)
                                  and its status receipts (E9) → on_delivery(DeliveryReport)
    GET      /isms/delivery       iSMS delivery status         → on_delivery(DeliveryReport)
    GET      /smscommy/delivery   sms.com.my delivery report   → on_delivery(DeliveryReport)
    GET      /smscommy/incoming   sms.com.my incoming SMS      → on_incoming_sms(IncomingSms)
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import CoroutineType
from typing import TYPE_CHECKING, Any

import anyio

from .._journal import check_ledger
from ..errors import ValidationError, WebhookError
from ..hooks import Hooks, WebhookEvent, combine_hooks
from . import _parsers
from ._asgi import (
    Answer,
    Receive,
    Scope,
    Send,
    answer,
    body_headers,
    lifespan,
    read_body,
    relative_path,
)
from ._deadline import on_asyncio, step_within
from ._dedupe import Claim, Deduplicator, MemoryDeduplicator, checked_dedupe, dedupe_key
from ._routes import KIND_OF_TYPE, ROUTES, Event, Route, kind_of
from ._token import query_if_token_matches

if TYPE_CHECKING:
    from ..ledger import Ledger

__all__ = ["Claim", "Deduplicator", "MemoryDeduplicator", "WebhookReceiver"]

logger = logging.getLogger("messaging_async.webhooks")

Handler = Callable[[Any], Awaitable[object] | object]

# Every answer but a route's 405, built once (``_asgi.Answer``).
_RETRY_AFTER = (b"retry-after", b"10")
_OK = answer(200, "OK")
_OK_DUPLICATE = answer(200, "OK (duplicate)")
_BAD_REQUEST = answer(400, "Bad Request")
_UNAUTHORIZED = answer(401, "Unauthorized")
_FORBIDDEN = answer(403, "Forbidden")
_NOT_FOUND = answer(404, "Not Found")
_TIMED_OUT_BODY = answer(408, "Request Timeout", (b"connection", b"close"))
_TOO_LARGE = answer(413, "Payload Too Large")
_FAILED = answer(500, "Internal Server Error")
_STORE_FAILED = answer(503, "Service Unavailable (de-duplication store)", _RETRY_AFTER)
_BEING_HANDLED = answer(503, "Service Unavailable (being handled)", _RETRY_AFTER)
_TIMED_OUT = answer(503, "Service Unavailable (handler timed out)", _RETRY_AFTER)
_SETTLE_SECONDS = 5.0  # how long a cancelled request may take to release its claim
_PATHS_KEPT = 64  # distinct request paths whose relative path a receiver remembers


class WebhookReceiver:
    """The ASGI app; see the module docstring for its routes.

    The token is checked first: without it every request is 401, whatever its path or
    method, so only an authenticated caller learns 404 or 405. Then: 403 (address not in
    ``allow_ips``), 400 (malformed), 413 (over ``max_body`` bytes), 408 (the body took
    longer than ``body_timeout`` seconds), 500 (your handler raised: logged without the
    payload), 503 with ``Retry-After`` (your handler ran past ``handler_timeout`` seconds,
    the same callback is still being handled, or the de-duplication store failed) or 200.
    Every non-2xx answer makes the gateway try again, and a claim that was not completed
    is released first, so the retry is handled. ``handler_timeout`` can only interrupt an
    async handler at an ``await``: a plain function runs to its end.

    A WhatsApp callback may hold several events (messages and status receipts, E9): each
    is claimed and handled in turn, and the first that does not answer 200 is the answer
    (those after it are left for the gateway's retry). The route is served when
    ``on_whatsapp`` or ``on_delivery`` is given; an event whose handler was not given is
    acknowledged and dropped (200), since an error would make the gateway retry it forever.

    With a ``ledger`` (a ``messaging_async.ledger.Ledger``), every delivery report is
    recorded and joined to its send, and every inbound WhatsApp message opens its sender's
    24-hour window in the ledger, before the handler (if any) runs: the delivery and
    WhatsApp routes are served with no handler at all. A ledger that fails answers 500,
    so the gateway sends the callback again; recording one twice counts it once.
    """

    def __init__(
        self,
        *,
        secret: str,
        on_whatsapp: Handler | None = None,
        on_delivery: Handler | None = None,
        on_incoming_sms: Handler | None = None,
        dedupe: Deduplicator | None = None,
        allow_ips: Iterable[str] | None = None,
        max_body: int = _parsers.DEFAULT_MAX_BYTES,
        body_timeout: float | None = 10.0,
        handler_timeout: float | None = 30.0,
        token_parameter: str = "token",  # noqa: S107 - the parameter's name, not a secret
        ledger: Ledger | None = None,
        hooks: Hooks | Sequence[Hooks] | None = None,
    ):
        """``hooks`` (``messaging_async.hooks``) hear of every callback: its route, the
        status answered and the time taken; never its content or token."""
        if not isinstance(secret, str) or len(secret) < 16:
            raise ValidationError(
                "secret must be a string of at least 16 characters", field="secret"
            )
        self._secret = secret.encode()
        self._handlers: dict[str, Handler | None] = {
            "whatsapp": on_whatsapp,
            "delivery": on_delivery,
            "incoming_sms": on_incoming_sms,
        }
        checked = check_ledger(ledger)
        if checked is not None:
            self._handlers["delivery"] = _recording(checked.record_report, on_delivery)
            self._handlers["whatsapp"] = _recording(checked.record_inbound, on_whatsapp)
        # The routes served (one of their handlers given), looked up once per request.
        self._routes = {
            path: route
            for path, route in ROUTES.items()
            if any(self._handlers[kind] for kind in route.kinds)
        }
        self._dedupe = checked_dedupe(dedupe)
        self._networks = (
            None
            if allow_ips is None
            else [ipaddress.ip_network(ip, strict=False) for ip in allow_ips]
        )
        self._max_body = max_body
        self._body_timeout = _checked_seconds(body_timeout, "body_timeout")
        self._handler_timeout = _checked_seconds(handler_timeout, "handler_timeout")
        self._token_parameter = token_parameter
        self._hooks = combine_hooks(hooks)
        # Each (path, root_path) as sent → the path below the mount point: callbacks come
        # to the same few paths, and one look-up replaces relative_path's call, prefix test,
        # slice and strip (3,200 instructions, callgrind). Bounded: only paths that are
        # routes, at most _PATHS_KEPT of them; any other is worked out afresh each time.
        self._paths: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        handled = sorted(kind for kind, handler in self._handlers.items() if handler)
        return f"WebhookReceiver(handles={handled})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            where = (scope.get("path", ""), scope.get("root_path", ""))
            path = self._paths.get(where)
            if path is None:
                path = relative_path(scope)
                if path in self._routes and len(self._paths) < _PATHS_KEPT:
                    self._paths[where] = path
            hooks = self._hooks
            began = 0.0 if hooks is None else anyio.current_time()  # nobody listens: no clock
            answered = self._answer(scope, receive, path)
            if not isinstance(answered, Answer):  # it waits: for a body, a handler, a store
                answered = await answered
            status, body, headers = answered
            # The answer's two sends, here rather than in a helper: a coroutine less per
            # callback. Messages and header list are new each time, as a middleware may add
            # to them in place (Starlette's CORS middleware does); the headers are shared.
            await send({"type": "http.response.start", "status": status, "headers": [*headers]})
            await send({"type": "http.response.body", "body": body})
            if hooks is not None:
                duration = anyio.current_time() - began
                kind = _callback_kind(path)
                hooks.on_webhook(WebhookEvent(kind=kind, status=status, duration=duration))
        elif scope["type"] == "lifespan":
            await lifespan(receive, send)

    # The request's steps are plain functions that answer at once (an ``Answer``) when
    # nothing waits, the usual callback: its body already in the server's buffer, its
    # handler finishing on its first step, no de-duplication store. Only what waits is a
    # coroutine, awaited by ``__call__``. The two coroutines this saves (``_answer`` and
    # ``_dispatch`` were ``async``) cost 1,000 instructions a callback (callgrind).
    def _answer(self, scope: Scope, receive: Receive, path: str) -> Answer | Awaitable[Answer]:
        if self._networks is not None and not self._address_allowed(scope):
            return _FORBIDDEN
        raw_query: bytes = scope.get("query_string", b"")
        if len(raw_query) > self._max_body:
            return _TOO_LARGE
        query = query_if_token_matches(raw_query, self._token_parameter, self._secret)
        if query is None:
            return _UNAUTHORIZED
        route = self._routes.get(path)
        if route is None:
            return _NOT_FOUND
        method = scope["method"]
        if method not in route.methods:
            return route.not_allowed
        try:
            if isinstance(query, WebhookError):
                raise query
            if method == "POST":
                length, content_type = body_headers(scope)
                # Asked once for the body read and the handler (``step_within``).
                asyncio_here = None if self._body_timeout is None else on_asyncio()
                # The whole body, appended to ``got``, within ``body_timeout`` seconds in
                # all (a body trickling in byte by byte would never trip a per-read
                # timeout); here rather than in a helper: a frame less per POST.
                got: list[bytes] = []
                reading = read_body(receive, self._max_body, length, got)
                rest = step_within(reading, self._body_timeout, time.perf_counter(), asyncio_here)
                if rest is not None:  # the body is still arriving
                    return self._answer_after_body(
                        _finish_body(rest), got, route, content_type, query, path, asyncio_here
                    )
                body = got[0]
            else:
                body, content_type, asyncio_here = b"", "", None
            events = route.parse(body, content_type, query, self._max_body)
        except WebhookError as error:
            return self._refused(error, path)
        return self._handled(events, asyncio_here)

    async def _answer_after_body(
        self,
        rest: Awaitable[None],
        got: list[bytes],
        route: Route,
        content_type: str,
        query: dict[str, str],
        path: str,
        asyncio_here: bool | None,
    ) -> Answer:
        """``_answer``'s steps after a body read that waited: its end, the parse, the
        handler."""
        try:
            await rest
            events = route.parse(got[0], content_type, query, self._max_body)
        except _SlowBody:
            logger.info(
                "a %s callback's body took over %s s; answered 408", path, self._body_timeout
            )
            return _TIMED_OUT_BODY
        except WebhookError as error:
            return self._refused(error, path)
        answered = self._handled(events, asyncio_here)
        return answered if isinstance(answered, Answer) else await answered

    def _refused(self, error: WebhookError, path: str) -> Answer:
        logger.info("rejected a %s callback: %s", path, error)
        return _TOO_LARGE if error.too_large else _BAD_REQUEST

    def _handled(
        self, events: Sequence[Event], asyncio_here: bool | None = None
    ) -> Answer | Awaitable[Answer]:
        """The events' answer: the usual callback's one event handled at once when no
        de-duplication store is given, else each claimed, handled and settled."""
        if len(events) == 1:
            event = events[0]
            kind = KIND_OF_TYPE.get(type(event)) or kind_of(event)
            handler = self._handlers[kind]
            if handler is not None:
                if self._dedupe is None:
                    return self._handle(kind, handler, event, asyncio_here)
                return self._dispatch(kind, handler, event)
        return self._dispatch_all(events)

    async def _dispatch_all(self, events: Sequence[Event]) -> Answer:
        """Each event to its handler in order; the first answer that is not 200 stops."""
        answers = []
        for event in events:
            kind = kind_of(event)
            handler = self._handlers[kind]
            if handler is None:
                logger.info("a %s event with no handler given; acknowledged and dropped", kind)
                continue
            answered = await self._dispatch(kind, handler, event)
            if answered.status != 200 or len(events) == 1:
                return answered
            answers.append(answered)
        return answers[0] if len(answers) == 1 else _OK

    async def _dispatch(self, kind: str, handler: Handler, event: Event) -> Answer:
        """Claim, handle, settle: every claim won is completed (the handler answered 200)
        or released, whatever happens (a handler's exception, its time running out, the
        server cancelling it)."""
        key = dedupe_key(kind, event) if self._dedupe is not None else None
        if key is not None:
            claimed = await self._claim(key)
            if claimed is None:
                return _STORE_FAILED
            if claimed is Claim.DONE:
                return _OK_DUPLICATE
            if claimed is Claim.IN_PROGRESS:
                return _BEING_HANDLED
        try:
            answered = self._handle(kind, handler, event)
            if not isinstance(answered, Answer):
                answered = await answered
        except BaseException:  # cancelled (a server shutting down): let the retry be handled
            if key is not None:
                with anyio.move_on_after(_SETTLE_SECONDS, shield=True):
                    await self._settle(key, done=False)
            raise
        if key is not None:
            await self._settle(key, done=answered is _OK)
        return answered

    def _handle(
        self, kind: str, handler: Handler, event: Event, asyncio_here: bool | None = None
    ) -> Answer | Awaitable[Answer]:
        """The handler's answer: 200, 500 (it raised) or 503 (it ran past
        ``handler_timeout``); at once when it finishes on its first step (the usual
        handler), else what to await for the rest. A cancellation propagates."""
        started = time.perf_counter()
        try:
            result = handler(event)
            if type(result) is CoroutineType:  # an async handler: the usual one
                rest = step_within(result, self._handler_timeout, started, asyncio_here)
            elif inspect.isawaitable(result):
                rest = step_within(_awaited(result), self._handler_timeout, started, asyncio_here)
            else:
                return _OK  # a plain function's value: done
        except Exception as exc:
            logger.error("the %s handler raised %s%s", kind, type(exc).__name__, _where())
            return _FAILED
        return _OK if rest is None else self._handler_rest(kind, rest)

    async def _handler_rest(self, kind: str, rest: Awaitable[tuple[bool, object]]) -> Answer:
        """The rest of a handler that waited, within its deadline."""
        try:
            finished, _ = await rest
        except Exception as exc:
            logger.error("the %s handler raised %s%s", kind, type(exc).__name__, _where())
            return _FAILED
        if not finished:
            logger.error("the %s handler ran past %s s; cancelled", kind, self._handler_timeout)
            return _TIMED_OUT
        return _OK

    async def _claim(self, key: str) -> Claim | None:
        """The store's answer, or ``None`` when it failed or answered something else."""
        try:
            claimed = await _maybe_await(self._dedupe.claim(key))  # type: ignore[union-attr]
            return claimed if type(claimed) is Claim else Claim(claimed)
        except Exception as exc:
            logger.error("the de-duplication store's claim failed: %s", type(exc).__name__)
            return None

    async def _settle(self, key: str, *, done: bool) -> None:
        settle = self._dedupe.complete if done else self._dedupe.release  # type: ignore[union-attr]
        try:
            await _maybe_await(settle(key))
        except Exception as exc:
            what = "complete" if done else "release"
            logger.error("the de-duplication store's %s failed: %s", what, type(exc).__name__)

    def _address_allowed(self, scope: Scope) -> bool:
        if self._networks is None:
            return True
        client = scope.get("client")
        try:
            address = ipaddress.ip_address(client[0]) if client else None
        except ValueError:
            return False
        return address is not None and any(address in network for network in self._networks)


class _SlowBody(Exception):
    """The body did not arrive within ``body_timeout``."""


async def _finish_body(rest: Awaitable[tuple[bool, object]]) -> None:
    """The rest of a body read that waited; ``_SlowBody`` when its time ran out."""
    finished, _ = await rest
    if not finished:
        raise _SlowBody


def _recording(record: Callable[[Any], Awaitable[object]], handler: Handler | None) -> Handler:
    """A handler that records the event in the ledger, then calls the caller's (if any)."""

    async def record_then_handle(event: Any) -> None:
        await record(event)
        if handler is not None:
            await _maybe_await(handler(event))

    return record_then_handle


def _checked_seconds(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValidationError(f"{name} must be a positive number of seconds or None", field=name)
    return float(value)


def _where() -> str:
    """Where the handler raised (file and line), for a log line that quotes no payload."""
    frames = inspect.trace()
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _callback_kind(path: str) -> str:
    """The route's name for hooks (``isms_delivery``…); ``other`` for any path that is not a
    route, so a caller cannot fill metrics with names of its choosing."""
    return path.strip("/").replace("/", "_") if path in ROUTES else "other"


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _awaited(awaitable: Awaitable[object]) -> object:
    """Any awaitable as a coroutine (``step_within`` steps coroutines)."""
    return await awaitable
