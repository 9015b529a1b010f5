"""iSMS WhatsApp callbacks (CONTRACT B1, E9): a ``response`` parameter holding base64 JSON.

The JSON's fields are documented nowhere public, and may be flat or nested Meta-style. One
callback may hold messages users sent (``WhatsAppInbound``: the common fields found, and
always the whole decoded object) and status receipts of messages you sent
(``DeliveryReport``, read by ``_receipts``). ``_whatsapp_response`` finds and decodes the
``response`` parameter; this module reads the events from the object it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import WebhookError
from ._parsers import DEFAULT_MAX_BYTES, MAX_DEPTH, Query, _guarded, _malformed, _timestamp
from ._receipts import flat_receipt, receipts_of
from ._whatsapp_response import decode_response, decoded_payload
from .events import DeliveryReport, WhatsAppCallback, WhatsAppInbound, new_inbound

__all__ = [
    "decode_response",
    "parse_isms_whatsapp",
    "parse_isms_whatsapp_callback",
    "whatsapp_events",
]


def parse_isms_whatsapp_callback(
    body: bytes | str | Mapping[str, Any],
    *,
    content_type: str | None = None,
    query: Query | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> WhatsAppCallback:
    """Everything an iSMS WhatsApp callback holds: its messages and its status receipts
    (contract E9: Meta-style ``statuses`` lists anywhere in the payload, or a flat object
    with a message id and a ``status``). The ``response`` parameter is read as
    ``parse_isms_whatsapp`` reads it."""
    return _guarded(_isms_whatsapp_callback, body, content_type, query, max_bytes)


def parse_isms_whatsapp(
    body: bytes | str | Mapping[str, Any],
    *,
    content_type: str | None = None,
    query: Query | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> WhatsAppInbound:
    """iSMS inbound WhatsApp (B1): a ``response`` parameter holding base64 JSON, in a form
    body, a JSON body or the query string. Missing padding, the URL-safe alphabet and ``+``
    turned into a space by a form decoder are all accepted.

    The callback's first message. A callback holding only status receipts (E9) is not a
    message: ``WebhookError`` — read those with ``parse_isms_whatsapp_callback``."""
    return _guarded(_isms_whatsapp, body, content_type, query, max_bytes)


# ---------------------------------------------------------------- WhatsApp
def _isms_whatsapp(
    body: bytes | str | Mapping[str, Any],
    content_type: str | None,
    query: Query | None,
    max_bytes: int,
) -> WhatsAppInbound:
    callback = _isms_whatsapp_callback(body, content_type, query, max_bytes)
    if not callback.messages:
        raise WebhookError(
            "the callback holds status receipts, not a message "
            "(read it with parse_isms_whatsapp_callback)"
        )
    return callback.messages[0]


def whatsapp_events(
    body: bytes, content_type: str, query: dict[str, str], max_bytes: int
) -> tuple[WhatsAppInbound | DeliveryReport, ...]:
    """``WebhookReceiver``'s reading of a callback: what ``parse_isms_whatsapp_callback``
    reads, as the events themselves (messages, then receipts), without the
    ``WhatsAppCallback`` around them, which the receiver never hands on (0.5 µs). Guarded
    here, as ``_guarded`` guards: a frame and its ``*args`` tuple less (callgrind)."""
    try:
        data = decoded_payload(body, content_type, query, max_bytes)
        messages, receipts = _whatsapp_parts(data)
    except WebhookError:
        raise
    except Exception as exc:  # any input-driven failure is a malformed callback
        raise _malformed(exc) from None
    return (*messages, *receipts) if receipts else messages


def _isms_whatsapp_callback(
    body: bytes | str | Mapping[str, Any],
    content_type: str | None,
    query: Query | None,
    max_bytes: int,
) -> WhatsAppCallback:
    return _whatsapp_callback(decoded_payload(body, content_type, query, max_bytes))


_FIELD_NAMES = {
    "sender": ("from", "sender", "wa_id", "mobile", "phone", "msisdn"),
    "recipient": ("to", "recipient", "display_phone_number", "waba_number", "shortcode"),
    "message_id": ("messageid", "message_id", "msgid", "wamid", "id"),
    "type": ("type", "messagetype", "message_type"),
    "media_url": ("url", "mediaurl", "media_url", "fileurl", "file_url", "link"),
    "timestamp": ("timestamp", "time", "datetime", "created_at", "date"),
}


def _whatsapp_callback(data: dict[str, Any]) -> WhatsAppCallback:
    """The payload's messages and receipts, and the payload itself."""
    messages, receipts = _whatsapp_parts(data)
    return WhatsAppCallback(messages=messages, receipts=receipts, raw=data)


def _whatsapp_parts(
    data: dict[str, Any],
) -> tuple[tuple[WhatsAppInbound, ...], tuple[DeliveryReport, ...]]:
    """The payload's messages and receipts. Receipts from every ``statuses`` list (or the
    flat object, when it is one); messages from every Meta-style ``messages`` list, else the
    whole object is the message, as long as it holds no receipts."""
    whole = _index(data)
    receipts: tuple[DeliveryReport, ...] = ()
    if whole.statuses:
        receipts = receipts_of(whole.statuses)
    elif not whole.messages and whole.status_key:
        # An envelope of messages with an id and a status is no receipt. Without a
        # ``status`` name (``status_key``: a superset of what ``flat_receipt`` needs) the
        # object is no flat receipt, and checking it would cost 1.7 µs of a 19 µs parse.
        receipt = flat_receipt(data)
        receipts = () if receipt is None else (receipt,)
    if whole.messages:
        messages = tuple(_whatsapp_event(data, whole, message) for message in whole.messages)
    elif whole.statuses or receipts:
        messages = ()
    else:
        messages = (_whatsapp_event(data, whole, None),)
    return messages, receipts


def _whatsapp_event(
    data: dict[str, Any], whole: _Index, message: dict[str, Any] | None
) -> WhatsAppInbound:
    """The common fields of the message object (Meta nesting: an entry of ``messages``)
    first, then of the rest of the payload (``messages`` and ``statuses`` lists left out),
    shallowest first."""
    found = whole.values
    text = whole.text
    if message is not None:
        own = _index(message)
        if own.values:
            found = {**found, **own.values}
        if own.text is not None:
            text = own.text
    get = found.get  # the values as found (scalars), each field's as a string
    when = get("timestamp")
    return new_inbound(
        None if (sender := get("sender")) is None else str(sender),
        None if (recipient := get("recipient")) is None else str(recipient),
        None if (message_id := get("message_id")) is None else str(message_id),
        None if (kind := get("type")) is None else str(kind),  # type
        text,
        None if (media_url := get("media_url")) is None else str(media_url),
        # Epoch seconds as a string, the usual form, read here as ``_timestamp`` reads
        # it: a call and its two checks less (a property test holds the two equal).
        datetime.fromtimestamp(int(when), UTC)
        if type(when) is str and when.isdecimal() and 9 <= len(when) <= 10
        else _timestamp(when),
        data,  # raw
    )


# Every name the walk looks for, lower-cased → (what it is, its rank among that field's
# names): a field of the event, ``_TEXT`` (a message text) or ``_STATUS`` (a receipt's
# status word). One look-up per scalar in the walk, whatever it turns out to be.
_TEXT, _STATUS = "", "status"
_NAME_RANKS: dict[str, tuple[str, int]] = {
    **{name: (_TEXT, 0) for name in ("text", "body", "content", "message", "msg", "caption")},
    "status": (_STATUS, 0),
    **{
        name: (field, rank)
        for field, names in _FIELD_NAMES.items()
        for rank, name in enumerate(names)
    },
}


class _Index:
    """What one walk of a JSON object finds: for each field, the value under the first of its
    names (shallowest where a name repeats) and that name's rank; the message text; the
    objects of Meta-style ``messages`` lists; every ``statuses`` list with the object
    holding it (whose ``metadata`` names the WABA number); and whether any scalar is named
    ``status`` (else the object cannot be a flat receipt). The walk does not enter those
    lists: their fields are their own entries', not the payload's. A plain class: built
    once per object walked, and attrs' generated ``__init__`` with factories cost more."""

    __slots__ = ("messages", "ranks", "status_key", "statuses", "text", "values")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.ranks: dict[str, int] = {}
        self.text: str | None = None
        self.messages: list[dict[str, Any]] = []
        self.statuses: list[tuple[dict[str, Any], list[Any]]] = []
        self.status_key = False


# What the walk enters, by exact type: it reads only what the JSON decoder built, whose
# objects and arrays are exactly dict and list. A set look-up of the type instead of
# ``isinstance`` with a tuple: 450 instructions a key, 3,000 a callback (callgrind).
_CONTAINERS = frozenset((dict, list))
_NOTED = frozenset(("messages", "statuses", "text"))


def _index(scope: dict[str, Any]) -> _Index:
    """Walk ``scope`` breadth first (at most ``MAX_DEPTH`` levels, 50 items per list), keys
    lower-cased. One pass with no generator, one dict look-up per scalar: this walk is
    most of a callback's cost."""
    index = _Index()
    values, ranks = index.values, index.ranks
    level: list[Any] = [scope]
    for _ in range(MAX_DEPTH + 1):
        deeper: list[Any] = []
        for node in level:
            kind = type(node)
            if kind is dict:
                for key, value in node.items():
                    known = _KNOWN.get(key)
                    if known is None:
                        known = _know(key)
                    name, named = known
                    if type(value) in _CONTAINERS:
                        if name in _NOTED:
                            if type(value) is dict:  # a ``text`` object (Meta's), here:
                                # _note_container's frame, 1,000 instructions, less
                                if name == "text" and index.text is None:
                                    body = value.get("body")
                                    if isinstance(body, str):
                                        index.text = body
                            elif _note_container(index, node, name, value):
                                continue
                        deeper.append(value)
                        continue
                    if named is None:
                        continue
                    field, rank = named
                    if field == _STATUS:
                        index.status_key = True
                    elif value is None or value == "":
                        continue
                    elif field == _TEXT:
                        if index.text is None and isinstance(value, str):
                            index.text = value
                    elif field not in ranks or rank < ranks[field]:  # no .get call: 300 each
                        ranks[field] = rank
                        values[field] = value
            elif kind is list:
                deeper.extend(node[:50])
        if not deeper:
            break
        level = deeper
    return index


_Known = tuple[str, tuple[str, int] | None]
# Each key as the walk reads it (lower-cased, and what ``_NAME_RANKS`` makes of it), by the
# key as sent: payloads repeat the same few names, and one look-up of the name as it came
# replaces ``lower()`` and a second look-up (0.3 µs a callback). Bounded: names longer than
# 64 characters or past ``_KNOWN_MAX`` are read afresh each time, so a sender cannot grow
# it past about 2048 x 64 characters.
_KNOWN: dict[Any, _Known] = {}
_KNOWN_MAX = 2048


def _know(key: Any) -> _Known:
    name = key.lower() if type(key) is str else str(key).lower()
    known = (name, _NAME_RANKS.get(name))
    if type(key) is str and len(key) <= 64 and len(_KNOWN) < _KNOWN_MAX:
        _KNOWN[key] = known
    return known


def _note_container(index: _Index, node: dict[str, Any], name: str, value: list[Any]) -> bool:
    """Note a Meta-style ``messages`` list (of objects) or a ``statuses`` list; whether the
    walk must stay out of ``value``. (A ``text`` object holding the message's ``body`` is
    noted by ``_index`` itself.)"""
    if name == "statuses":
        index.statuses.append((node, value))
        return True
    if name == "messages" and value and isinstance(value[0], dict):
        index.messages.extend(item for item in value[:50] if isinstance(item, dict))
        return True
    return False
