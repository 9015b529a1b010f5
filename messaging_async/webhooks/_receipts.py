"""WhatsApp status receipts (CONTRACT E9): sent / delivered / read / failed, as reports.

iSMS promises handset-level receipts but documents one callback only, the inbound webhook,
so receipts arrive there, in the shapes E9 decides: entries of Meta-style ``statuses``
lists (``entry[].changes[].value.statuses[]``, or a top-level ``statuses``), or one flat
object with a message id and a ``status`` and no message content. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import WebhookError
from ._parsers import _timestamp
from ._statuses import status_of_word
from .events import DeliveryReport, new_report

__all__ = ["GATEWAY", "flat_receipt", "receipts_of"]

GATEWAY = "isms_whatsapp"
"""``DeliveryReport.gateway`` of a WhatsApp receipt: its ids are WABA message ids, which
are no SMS ``sms_id``s, so they must never be joined or de-duplicated with those."""

_ID_NAMES = ("messageid", "message_id", "msgid", "wamid", "id")
_RECIPIENT_NAMES = ("recipient_id", "to", "recipient", "wa_id", "mobile", "msisdn", "phone")
_SENDER_NAMES = ("from", "waba_number", "display_phone_number")
_TIME_NAMES = ("timestamp", "time", "datetime", "created_at", "date")
# What makes a flat object a message rather than a receipt: a text, a media URL.
_CONTENT_NAMES = frozenset(
    (
        *("text", "body", "content", "message", "msg", "caption"),
        *("url", "mediaurl", "media_url", "fileurl", "file_url", "link"),
    )
)


def receipts_of(statuses: list[tuple[dict[str, Any], list[Any]]]) -> tuple[DeliveryReport, ...]:
    """One report per entry of each ``statuses`` list, in order. ``holder`` is the object
    the list sits in: Meta's ``value``, whose ``metadata.display_phone_number`` is the WABA
    number that sent the message. An entry without a message id or a status is malformed."""
    reports = []
    for holder, entries in statuses:
        waba_number = _waba_number(holder)
        for entry in entries:
            if not isinstance(entry, dict):
                raise WebhookError("a 'statuses' entry is not an object")
            reports.append(_receipt(_scalars(entry), entry, waba_number))
    return tuple(reports)


def flat_receipt(data: dict[str, Any]) -> DeliveryReport | None:
    """The payload as one receipt, when it is one: a ``status`` and a message id at its top
    level and no message content (a text, a media URL, or the object its ``type`` names,
    as Meta's ``"type": "image", "image": {…}``); else ``None``: it is a message."""
    fields = _scalars(data)
    if "status" not in fields or _first(fields, _ID_NAMES) is None:
        return None
    lowered = {_lower(key) for key in data}
    kind = fields.get("type")
    if lowered & _CONTENT_NAMES or (kind is not None and _lower(kind) in lowered):
        return None
    return _receipt(fields, data, None)


def _receipt(
    fields: Mapping[str, Any], raw: dict[str, Any], waba_number: str | None
) -> DeliveryReport:
    message_id = _first(fields, _ID_NAMES)
    if message_id is None:
        raise WebhookError("a WhatsApp status receipt carries no message id")
    word = _first(fields, ("status",))
    if word is None:
        raise WebhookError("a WhatsApp status receipt carries no status")
    return new_report(
        GATEWAY,
        message_id,
        status_of_word(word),
        word,  # status_code
        _first(fields, _RECIPIENT_NAMES),  # recipient
        _first(fields, _SENDER_NAMES) or waba_number,  # sender
        _timestamp(_first(fields, _TIME_NAMES)),
        raw,
    )


def _scalars(data: Mapping[Any, Any]) -> dict[str, Any]:
    """The object's scalar values (strings and numbers) by lower-cased name, first wins."""
    found: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            found.setdefault(_lower(key), value)
    return found


def _first(fields: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` with a value that is not blank, as a stripped string."""
    for name in names:
        value = fields.get(name)
        if value is not None:
            text = str(value).strip()
            if text:
                return text
    return None


def _waba_number(holder: Mapping[Any, Any]) -> str | None:
    metadata = next((v for k, v in holder.items() if _lower(k) == "metadata"), None)
    if not isinstance(metadata, dict):
        return None
    return _first(_scalars(metadata), ("display_phone_number", "phone_number"))


def _lower(key: Any) -> str:
    return key.lower() if type(key) is str else str(key).lower()
