"""The status tables of the delivery reports: sms.com.my's C1 codes, and the words iSMS
SMS reports and WhatsApp receipts use, each to a ``DeliveryStatus``. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .events import DeliveryStatus

__all__ = ["SMSCOMMY_STATUSES", "STATUS_WORDS", "status_of_word"]

# sms.com.my C1 status codes.
SMSCOMMY_STATUSES: Mapping[str, DeliveryStatus] = {
    "6": DeliveryStatus.DELIVERED,
    "7": DeliveryStatus.FAILED,
    "8": DeliveryStatus.EXPIRED,
    "9": DeliveryStatus.UNKNOWN,
    "10": DeliveryStatus.REJECTED,
    **dict.fromkeys(("11", "15", "16"), DeliveryStatus.QUEUED),
    **dict.fromkeys(("12", "17"), DeliveryStatus.NOT_IN_SERVICE),
    **dict.fromkeys(("13", "14"), DeliveryStatus.OUT_OF_COVERAGE),
}
# iSMS documents no status values (CONTRACT A5, E9): the words telcos and gateways use (SMPP's
# receipt states, sms.com.my's C1 descriptions, WhatsApp's sent/delivered/read/failed, plain
# English), matched as whole words after normalising case, white space, "_" and "-". One table
# for iSMS SMS reports and WhatsApp receipts alike. A word not here is UNKNOWN, never guessed
# at by its parts: "UNDELIVERED" and "NOT DELIVERED" contain "DELIVERED", "UNSENT" "SENT".
STATUS_WORDS: Mapping[str, DeliveryStatus] = {
    **dict.fromkeys(
        (
            "DELIVRD",
            "DELIVERED",
            "DELIVERY SUCCESS",
            "DELIVERY SUCCESSFUL",
            "DELIVER SUCCESSFUL",
            "SUCCESS",
            "SUCCESSFUL",
        ),
        DeliveryStatus.DELIVERED,
    ),
    **dict.fromkeys(
        (
            "UNDELIV",
            "UNDELIVERED",
            "UNDELIVERABLE",
            "NOT DELIVERED",
            "DELIVER FAILED",
            "DELIVERY FAILED",
            "FAILED",
            "FAILURE",
            "FAIL",
            "DELETED",
        ),
        DeliveryStatus.FAILED,
    ),
    **dict.fromkeys(("EXPIRED", "EXPIRD"), DeliveryStatus.EXPIRED),
    **dict.fromkeys(("REJECTD", "REJECTED", "REJECT"), DeliveryStatus.REJECTED),
    **dict.fromkeys(
        (
            "ENROUTE",
            "EN ROUTE",
            "QUEUED",
            "ENQUEUED",
            "PENDING",
            "SUBMITTED",
            "ACCEPTD",
            "ACCEPTED",
            "QINTELCO",
            "Q IN TELCO",
        ),
        DeliveryStatus.QUEUED,
    ),
    "SENT": DeliveryStatus.SENT,
    **dict.fromkeys(("READ", "SEEN"), DeliveryStatus.READ),
    "NOT IN SERVICE": DeliveryStatus.NOT_IN_SERVICE,
    "OUT OF COVERAGE": DeliveryStatus.OUT_OF_COVERAGE,
    "UNKNOWN": DeliveryStatus.UNKNOWN,
}
_SEPARATORS = re.compile(r"[\s_-]+")


def status_of_word(word: str | None) -> DeliveryStatus:
    """``STATUS_WORDS``' status for a whole word (``"Not_Delivered"`` → failed), else
    UNKNOWN: the event keeps the word itself in ``status_code``."""
    if word is None:
        return DeliveryStatus.UNKNOWN
    # A word sent as the table spells it (``DELIVRD``: every key is its own normal form) is
    # found without the regular expression's pass over it (2,400 instructions).
    status = STATUS_WORDS.get(word)
    if status is not None:
        return status
    return STATUS_WORDS.get(_SEPARATORS.sub(" ", word).strip().upper(), DeliveryStatus.UNKNOWN)
