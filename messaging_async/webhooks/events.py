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

__all__ = ["DeliveryReport", "DeliveryStatus", "IncomingSms", "WhatsAppInbound"]


class DeliveryStatus(enum.StrEnum):
    """Where a sent message got to, as the telco reported it."""

    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    QUEUED = "queued"
    """Still on its way: queued at the telco."""
    NOT_IN_SERVICE = "not_in_service"
    OUT_OF_COVERAGE = "out_of_coverage"
    UNKNOWN = "unknown"
    """The gateway said "unknown", or sent a status nobody documented (see ``status_code``)."""


@frozen(kw_only=True)
class DeliveryReport:
    """A delivery report. ``gateway`` is ``"isms"`` or ``"smscommy"``; ``status_code`` the
    gateway's own status value as sent (what to look at when ``status`` is UNKNOWN: a word
    or code not in the table is never guessed at); ``recipient`` the handset number where
    the gateway names it; ``sender`` the gateway number that sent it (sms.com.my)."""

    gateway: str
    message_id: str
    status: DeliveryStatus
    status_code: str | None = None
    recipient: str | None = None
    sender: str | None = None
    timestamp: datetime | None = None
    raw: Mapping[str, str] = field(factory=dict, repr=False)


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
