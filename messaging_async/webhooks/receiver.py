"""``WebhookReceiver``: a plain ASGI 3 app that receives every gateway callback.

No framework is imported: it runs under any ASGI server and mounts in FastAPI, Starlette or
Litestar as it is. Neither gateway signs its callbacks, so the caller is authenticated by a
shared secret in the callback URL you register (``?token=…``), compared in constant time
before the body is read; the token is removed before parsing, so it never reaches an
event's ``raw``.

Routes, relative to where the app is mounted::

    POST|GET /isms/whatsapp       iSMS inbound WhatsApp        → on_whatsapp(WhatsAppInbound)
    GET      /isms/delivery       iSMS delivery status         → on_delivery(DeliveryReport)
    GET      /smscommy/delivery   sms.com.my delivery report   → on_delivery(DeliveryReport)
    GET      /smscommy/incoming   sms.com.my incoming SMS      → on_incoming_sms(IncomingSms)
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import ipaddress
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from attrs import frozen

from ..errors import ValidationError, WebhookError
from . import _parsers
from ._whatsapp import parse_isms_whatsapp
from .events import DeliveryReport, IncomingSms, WhatsAppInbound

__all__ = ["Deduplicator", "MemoryDeduplicator", "WebhookReceiver"]

logger = logging.getLogger("messaging_async.webhooks")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Event = WhatsAppInbound | DeliveryReport | IncomingSms
Handler = Callable[[Any], Awaitable[object] | object]


class Deduplicator(Protocol):
    """Remembers which callbacks were handled, so a repeated one is acknowledged only.

    ``claim`` returns true the first time it sees a key; ``release`` forgets a key whose
    handling failed, so the gateway's retry is handled. Either may be async.
    """

    def claim(self, key: str) -> bool | Awaitable[bool]: ...

    def release(self, key: str) -> Awaitable[None] | None: ...


class MemoryDeduplicator:
    """The last ``max_keys`` callbacks of this process (one worker; use a shared store, such
    as Redis ``SET NX``, behind the same two methods when you run several)."""

    def __init__(self, max_keys: int = 100_000):
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._max_keys = max_keys

    def claim(self, key: str) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self._max_keys:
            self._keys.popitem(last=False)
        return True

    def release(self, key: str) -> None:
        self._keys.pop(key, None)


@frozen
class _Route:
    kind: str
    methods: frozenset[str]
    parse: Callable[[bytes, Scope, dict[str, str], int], Event]


def _parse_whatsapp(body: bytes, scope: Scope, query: dict[str, str], limit: int) -> Event:
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    return parse_isms_whatsapp(body, content_type=content_type, query=query, max_bytes=limit)


_ROUTES = {
    "/isms/whatsapp": _Route("whatsapp", frozenset({"GET", "POST"}), _parse_whatsapp),
    "/isms/delivery": _Route(
        "delivery",
        frozenset({"GET"}),
        lambda b, s, q, n: _parsers.parse_isms_delivery(q, max_bytes=n),
    ),
    "/smscommy/delivery": _Route(
        "delivery",
        frozenset({"GET"}),
        lambda b, s, q, n: _parsers.parse_smscommy_delivery(q, max_bytes=n),
    ),
    "/smscommy/incoming": _Route(
        "incoming_sms",
        frozenset({"GET"}),
        lambda b, s, q, n: _parsers.parse_smscommy_incoming(q, max_bytes=n),
    ),
}


class WebhookReceiver:
    """The ASGI app; see the module docstring for its routes.

    Answers 401 (wrong or missing token, before the body is read), 403 (address not in
    ``allow_ips``), 404, 405, 400 (malformed), 413 (over ``max_body`` bytes), 500 (your
    handler raised: logged without the payload, and the gateway will retry) or 200.
    """

    def __init__(
        self,
        *,
        secret: str,
        on_whatsapp: Handler | None = None,
        on_delivery: Handler | None = None,
        on_incoming_sms: Handler | None = None,
        dedupe: Deduplicator | Callable[[str], bool | Awaitable[bool]] | None = None,
        allow_ips: Iterable[str] | None = None,
        max_body: int = _parsers.DEFAULT_MAX_BYTES,
        token_parameter: str = "token",  # noqa: S107 - the parameter's name, not a secret
    ):
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
        self._dedupe = dedupe
        self._networks = (
            None
            if allow_ips is None
            else [ipaddress.ip_network(ip, strict=False) for ip in allow_ips]
        )
        self._max_body = max_body
        self._token_parameter = token_parameter

    def __repr__(self) -> str:
        handled = sorted(kind for kind, handler in self._handlers.items() if handler)
        return f"WebhookReceiver(handles={handled})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            status, text, headers = await self._answer(scope, receive)
            await _respond(send, status, text, headers)

    async def _answer(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, str, list[tuple[bytes, bytes]]]:
        route = _ROUTES.get(_relative_path(scope))
        handler = self._handlers.get(route.kind) if route else None
        if route is None or handler is None:
            return 404, "Not Found", []
        if scope["method"] not in route.methods:
            return (
                405,
                "Method Not Allowed",
                [(b"allow", ", ".join(sorted(route.methods)).encode())],
            )
        if not self._address_allowed(scope):
            return 403, "Forbidden", []
        raw_query: bytes = scope.get("query_string", b"")
        if len(raw_query) > self._max_body:
            return 413, "Payload Too Large", []
        try:
            query = self._authenticated_query(raw_query)
        except PermissionError:
            return 401, "Unauthorized", []
        except (ValueError, UnicodeDecodeError):
            return 400, "Bad Request", []
        return await self._handle(route, handler, scope, receive, query)

    async def _handle(
        self, route: _Route, handler: Handler, scope: Scope, receive: Receive, query: dict[str, str]
    ) -> tuple[int, str, list[tuple[bytes, bytes]]]:
        try:
            body = (
                await _read_body(scope, receive, self._max_body)
                if scope["method"] == "POST"
                else b""
            )
            event = route.parse(body, scope, query, self._max_body)
        except WebhookError as error:
            logger.info("rejected a %s callback: %s", route.kind, error)
            return (413, "Payload Too Large", []) if error.too_large else (400, "Bad Request", [])
        key = _dedupe_key(route.kind, event)
        if self._dedupe is not None and not await _maybe_await(_claim(self._dedupe, key)):
            return 200, "OK (duplicate)", []
        try:
            await _maybe_await(handler(event))
        except Exception as exc:
            await self._release(key)
            frame = inspect.trace()[-1] if inspect.trace() else None
            where = f" at {frame.filename}:{frame.lineno}" if frame else ""
            logger.error("the %s handler raised %s%s", route.kind, type(exc).__name__, where)
            return 500, "Internal Server Error", []
        return 200, "OK", []

    def _authenticated_query(self, raw_query: bytes) -> dict[str, str]:
        """The query's parameters without the token; ``PermissionError`` if the token is wrong."""
        pairs = parse_qsl(
            raw_query.decode("latin-1"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=_parsers.MAX_FIELDS,
        )
        tokens = [value for key, value in pairs if key == self._token_parameter]
        given = tokens[0].encode() if len(tokens) == 1 else b""
        if not hmac.compare_digest(given, self._secret):
            raise PermissionError
        query: dict[str, str] = {}
        for key, value in pairs:
            if key != self._token_parameter:
                query.setdefault(key, value)
        return query

    def _address_allowed(self, scope: Scope) -> bool:
        if self._networks is None:
            return True
        client = scope.get("client")
        try:
            address = ipaddress.ip_address(client[0]) if client else None
        except ValueError:
            return False
        return address is not None and any(address in network for network in self._networks)

    async def _release(self, key: str) -> None:
        release = getattr(self._dedupe, "release", None)
        if release is not None:
            await _maybe_await(release(key))


def _relative_path(scope: Scope) -> str:
    """The path below the mount point, whichever way the framework reports it."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.rstrip("/") or "/"


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for name, value in scope.get("headers") or []:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise WebhookError(f"callback larger than {limit} bytes", too_large=True)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise WebhookError("the caller disconnected before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise WebhookError(f"callback larger than {limit} bytes", too_large=True)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _dedupe_key(kind: str, event: Event) -> str:
    if isinstance(event, DeliveryReport):
        return f"{event.gateway}-delivery:{event.message_id}:{event.status_code}"
    if isinstance(event, WhatsAppInbound) and event.message_id:
        return f"whatsapp:{event.message_id}"
    digest = hashlib.sha256(json.dumps(event.raw, sort_keys=True, default=str).encode()).hexdigest()
    return f"{kind}:{digest}"


def _claim(dedupe: Any, key: str) -> bool | Awaitable[bool]:
    claim = getattr(dedupe, "claim", None)
    return claim(key) if claim is not None else dedupe(key)  # type: ignore[no-any-return]


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _respond(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Served on its own (uvicorn), the app has nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
