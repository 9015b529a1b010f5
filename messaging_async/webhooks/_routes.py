"""The receiver's routes: which paths exist, what each parses, where its events go.

Paths are relative to where the receiver is mounted. A route's parser answers every event
its callback holds, in order: one for the query-string callbacks, any number of messages and
status receipts (contract E9) for the WhatsApp one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from attrs import frozen

from ..errors import WebhookError
from . import _parsers
from ._asgi import Answer, answer
from ._whatsapp import whatsapp_events
from .events import DeliveryReport, IncomingSms, WhatsAppInbound

__all__ = ["KIND_OF_TYPE", "ROUTES", "Event", "Route", "kind_of"]

Event = WhatsAppInbound | DeliveryReport | IncomingSms
# (body, its Content-Type, the query's parameters, the size limit) → the events, in order.
Parser = Callable[[bytes, str, dict[str, str], int], Sequence[Event]]


@frozen
class Route:
    """A path: the handlers its events go to (it is served when one of them is given), its
    methods, its parser, which answers every event the callback holds, in order, and its
    405 answer, built once."""

    kinds: frozenset[str]
    methods: frozenset[str]
    parse: Parser
    not_allowed: Answer


def _route(kinds: set[str], methods: set[str], parse: Parser) -> Route:
    allow = (b"allow", ", ".join(sorted(methods)).encode())
    return Route(
        frozenset(kinds), frozenset(methods), parse, answer(405, "Method Not Allowed", allow)
    )


def _of_query(parse: Callable[[dict[str, str]], Event]) -> Parser:
    """A query-string callback's parser: its one event, from the parameters as the
    receiver read them (string names and values, first wins, size and count within
    bounds), so they are not copied and checked again; ``WebhookError`` only. Guarded
    here, not through ``_guarded`` or a helper: each frame less is 1,000 instructions on
    every delivery report (callgrind)."""

    def parse_query(
        body: bytes, content_type: str, query: dict[str, str], limit: int
    ) -> tuple[Event]:
        try:
            return (parse(query),)
        except WebhookError:
            raise
        except Exception as exc:  # any input-driven failure is a malformed callback
            raise _parsers._malformed(exc) from None

    return parse_query


ROUTES = {
    "/isms/whatsapp": _route({"whatsapp", "delivery"}, {"GET", "POST"}, whatsapp_events),
    "/isms/delivery": _route({"delivery"}, {"GET"}, _of_query(_parsers.isms_delivery_of)),
    "/smscommy/delivery": _route({"delivery"}, {"GET"}, _of_query(_parsers.smscommy_delivery_of)),
    "/smscommy/incoming": _route(
        {"incoming_sms"}, {"GET"}, _of_query(_parsers.smscommy_incoming_of)
    ),
}


# Which handler each event type goes to: one look-up where ``kind_of`` is a call and up to
# two ``isinstance`` (600 instructions, callgrind); ``kind_of`` for anything else.
KIND_OF_TYPE: dict[type, str] = {
    DeliveryReport: "delivery",
    WhatsAppInbound: "whatsapp",
    IncomingSms: "incoming_sms",
}


def kind_of(event: Event) -> str:
    """Which handler an event goes to."""
    if isinstance(event, DeliveryReport):
        return "delivery"
    return "whatsapp" if isinstance(event, WhatsAppInbound) else "incoming_sms"
