"""What the gateways call back with, as frozen typed events.

Every event keeps the callback's own fields in ``raw`` (minus the receiver's token), so
fields no public document names are never lost. Message texts stay out of reprs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attrs import field, frozen

from ..models import slot_setters

__all__ = [
    "DeliveryReport",
    "DeliveryStatus",
    "IncomingSms",
    "WhatsAppCallback",
    "WhatsAppInbound",
]


class DeliveryStatus(enum.StrEnum):
    """Where a sent message got to, as the telco reported it."""

    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    QUEUED = "queued"
    """Still on its way: queued at the telco."""
    SENT = "sent"
    """Handed on, not yet confirmed delivered: to the telco (SMS), to WhatsApp's servers
    (one grey tick)."""
    READ = "read"
    """WhatsApp: delivered, and opened on the handset (blue ticks). Read implies delivered:
    count it as both (``reached_handset``)."""
    NOT_IN_SERVICE = "not_in_service"
    OUT_OF_COVERAGE = "out_of_coverage"
    UNKNOWN = "unknown"
    """The gateway said "unknown", or sent a status nobody documented (see ``status_code``)."""

    @property
    def reached_handset(self) -> bool:
        """Delivered to the handset: ``DELIVERED`` or ``READ``. A WhatsApp message may be
        reported read without a delivered receipt ever arriving (receipts can be lost or
        reordered), so "how many were delivered?" must count both."""
        return self in _REACHED_HANDSET


_REACHED_HANDSET = frozenset((DeliveryStatus.DELIVERED, DeliveryStatus.READ))


@frozen(kw_only=True)
class DeliveryReport:
    """A delivery report. ``gateway`` is ``"isms"`` (SMS), ``"isms_whatsapp"`` (a WhatsApp
    status receipt, contract E9) or ``"smscommy"``; ``status_code`` the gateway's own status
    value as sent (what to look at when ``status`` is UNKNOWN: a word or code not in the
    table is never guessed at); ``recipient`` the handset number where the gateway names it;
    ``sender`` the gateway number that sent it (sms.com.my; the WABA number of a WhatsApp
    receipt where the payload names it). ``raw`` is the callback's parameters, or for a
    WhatsApp receipt the status object itself (its ``errors``, ``conversation``, …)."""

    gateway: str
    message_id: str
    status: DeliveryStatus
    status_code: str | None = None
    recipient: str | None = None
    sender: str | None = None
    timestamp: datetime | None = None
    raw: Mapping[str, Any] = field(factory=dict, repr=False)


@frozen(kw_only=True)
class IncomingSms:
    """An SMS a phone sent to your sms.com.my number (``shortcode``).

    ``decoded_from_hex`` says whether ``text`` was decoded from UCS-2 hex; ``note`` says why
    a Unicode message was kept as it came.
    """

    sender: str
    text: str = field(repr=False)
    shortcode: str | None = None
    content_type: str | None = None
    decoded_from_hex: bool = False
    note: str | None = None
    timestamp: datetime | None = None
    raw: Mapping[str, str] = field(factory=dict, repr=False)


@frozen(kw_only=True)
class WhatsAppInbound:
    """A WhatsApp message a user sent to your WABA number (iSMS).

    The payload's fields are undocumented: the common ones are looked for under the names
    in use (flat or Meta-style nesting); ``raw`` is always the whole decoded object.
    """

    sender: str | None = None
    recipient: str | None = None
    message_id: str | None = None
    type: str | None = None
    text: str | None = field(default=None, repr=False)
    media_url: str | None = None
    timestamp: datetime | None = None
    raw: Mapping[str, Any] = field(factory=dict, repr=False)


@frozen(kw_only=True)
class WhatsAppCallback:
    """Everything one iSMS WhatsApp callback holds (contract E9): the messages users sent
    (``WhatsAppInbound``) and the status receipts of messages you sent (``DeliveryReport``,
    gateway ``"isms_whatsapp"``), in payload order. One payload may hold several of each,
    or both; ``raw`` is the whole decoded object."""

    messages: tuple[WhatsAppInbound, ...] = ()
    receipts: tuple[DeliveryReport, ...] = ()
    raw: Mapping[str, Any] = field(factory=dict, repr=False)


# ---------------------------------------------------------------- the parsers' constructors
# attrs' frozen ``__init__`` takes keywords and sets each slot through
# ``object.__setattr__``. A callback builds one event, and on a delivery report that was a
# quarter of the parse: 13,400 instructions for ``DeliveryReport(...)`` against 7,300 for
# the slots' own descriptors (callgrind, Python 3.11, attrs 26.1), as ``models.new_outcome``
# does for outcomes. The events have no validators or converters, so nothing is skipped; the
# field lists are checked against attrs when this module loads (`models.slot_setters`).
_REPORT_FIELDS = (
    "gateway",
    "message_id",
    "status",
    "status_code",
    "recipient",
    "sender",
    "timestamp",
    "raw",
)
_INBOUND_FIELDS = (
    "sender",
    "recipient",
    "message_id",
    "type",
    "text",
    "media_url",
    "timestamp",
    "raw",
)
(
    _set_report_gateway,
    _set_report_message_id,
    _set_report_status,
    _set_report_status_code,
    _set_report_recipient,
    _set_report_sender,
    _set_report_timestamp,
    _set_report_raw,
) = slot_setters(DeliveryReport, _REPORT_FIELDS)
(
    _set_inbound_sender,
    _set_inbound_recipient,
    _set_inbound_message_id,
    _set_inbound_type,
    _set_inbound_text,
    _set_inbound_media_url,
    _set_inbound_timestamp,
    _set_inbound_raw,
) = slot_setters(WhatsAppInbound, _INBOUND_FIELDS)
_new = object.__new__


def new_report(
    gateway: str,
    message_id: str,
    status: DeliveryStatus,
    status_code: str | None,
    recipient: str | None,
    sender: str | None,
    timestamp: datetime | None,
    raw: Mapping[str, Any],
) -> DeliveryReport:
    """``DeliveryReport(...)`` for the parsers: every field given, positionally, set through
    the slots' own descriptors (see above)."""
    report: DeliveryReport = _new(DeliveryReport)
    _set_report_gateway(report, gateway)
    _set_report_message_id(report, message_id)
    _set_report_status(report, status)
    _set_report_status_code(report, status_code)
    _set_report_recipient(report, recipient)
    _set_report_sender(report, sender)
    _set_report_timestamp(report, timestamp)
    _set_report_raw(report, raw)
    return report


def new_inbound(
    sender: str | None,
    recipient: str | None,
    message_id: str | None,
    type: str | None,
    text: str | None,
    media_url: str | None,
    timestamp: datetime | None,
    raw: Mapping[str, Any],
) -> WhatsAppInbound:
    """``WhatsAppInbound(...)`` for the WhatsApp parse: every field given, positionally, set
    through the slots' own descriptors (see above)."""
    inbound: WhatsAppInbound = _new(WhatsAppInbound)
    _set_inbound_sender(inbound, sender)
    _set_inbound_recipient(inbound, recipient)
    _set_inbound_message_id(inbound, message_id)
    _set_inbound_type(inbound, type)
    _set_inbound_text(inbound, text)
    _set_inbound_media_url(inbound, media_url)
    _set_inbound_timestamp(inbound, timestamp)
    _set_inbound_raw(inbound, raw)
    return inbound
