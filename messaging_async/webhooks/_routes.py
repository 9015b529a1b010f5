"""The receiver's routes: which paths exist, what each parses, where its events go.

Paths are relative to where the receiver is mounted. A route's parser answers every event
its callback holds, in order: one for the query-string callbacks, any number of messages and
status receipts (contract E9) for the WhatsApp one.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from attrs import frozen

from . import _parsers
from ._whatsapp import parse_isms_whatsapp_callback
from .events import DeliveryReport, IncomingSms, WhatsAppInbound

__all__ = ["ROUTES", "Event", "kind_of"]

Scope = MutableMapping[str, Any]
Event = WhatsAppInbound | DeliveryReport | IncomingSms


@frozen
class _Route:
    """A path: the handlers its events go to (it is served when one of them is given), its
    methods, and its parser, which answers every event the callback holds, in order."""

    kinds: frozenset[str]
    methods: frozenset[str]
    parse: Callable[[bytes, Scope, dict[str, str], int], Sequence[Event]]


def _parse_whatsapp(
    body: bytes, scope: Scope, query: dict[str, str], limit: int
) -> Sequence[Event]:
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    callback = parse_isms_whatsapp_callback(
        body, content_type=content_type, query=query, max_bytes=limit
    )
    return (*callback.messages, *callback.receipts)


ROUTES = {
    "/isms/whatsapp": _Route(
        frozenset({"whatsapp", "delivery"}), frozenset({"GET", "POST"}), _parse_whatsapp
    ),
    "/isms/delivery": _Route(
        frozenset({"delivery"}),
        frozenset({"GET"}),
        lambda b, s, q, n: (_parsers.from_params(_parsers.isms_delivery_of, q),),
    ),
    "/smscommy/delivery": _Route(
        frozenset({"delivery"}),
        frozenset({"GET"}),
        lambda b, s, q, n: (_parsers.from_params(_parsers.smscommy_delivery_of, q),),
    ),
    "/smscommy/incoming": _Route(
        frozenset({"incoming_sms"}),
        frozenset({"GET"}),
        lambda b, s, q, n: (_parsers.from_params(_parsers.smscommy_incoming_of, q),),
    ),
}


def kind_of(event: Event) -> str:
    """Which handler an event goes to."""
    if isinstance(event, DeliveryReport):
        return "delivery"
    return "whatsapp" if isinstance(event, WhatsAppInbound) else "incoming_sms"
