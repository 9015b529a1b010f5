"""Delivery reports the sandbox owes: queued when a message is accepted, due later, sent in
each gateway's callback format (docs/sandbox.md, "Delivery reports" and "WhatsApp receipts").

Telcos report late, and often more than once (queued in the telco, then delivered), so a
report here has a due time and a message may owe several; the last one carries the outcome.
A WhatsApp message owes a chain of status receipts (sent, delivered, read; or sent, failed),
posted to the inbound WhatsApp route as contract E9 decides.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
from attrs import frozen

from ..webhooks.events import DeliveryStatus
from ._records import SentMessage

if TYPE_CHECKING:
    from ._http import WebhookTarget

__all__ = [
    "OUTCOME_CHOICES",
    "PendingReport",
    "ReportQueue",
    "mixed_outcome",
    "receipt_chain",
    "response_form",
]

_ISMS_STATUS = {
    DeliveryStatus.DELIVERED: "DELIVRD",
    DeliveryStatus.FAILED: "UNDELIV",
    DeliveryStatus.EXPIRED: "EXPIRED",
    DeliveryStatus.REJECTED: "REJECTD",
    DeliveryStatus.QUEUED: "ENROUTE",
    DeliveryStatus.SENT: "SENT",
    DeliveryStatus.READ: "DELIVRD",  # an SMS is never read: delivered is as far as it gets
}
_SMSCOMMY_STATUS = {
    DeliveryStatus.DELIVERED: "6",
    DeliveryStatus.FAILED: "7",
    DeliveryStatus.EXPIRED: "8",
    DeliveryStatus.UNKNOWN: "9",
    DeliveryStatus.REJECTED: "10",
    DeliveryStatus.QUEUED: "11",
    DeliveryStatus.NOT_IN_SERVICE: "12",
    DeliveryStatus.OUT_OF_COVERAGE: "13",
    DeliveryStatus.SENT: "11",  # C1 has no "sent": on its way, queued
    DeliveryStatus.READ: "6",
}
# WhatsApp knows four receipt words (E9); every way of not arriving is "failed".
_WHATSAPP_WORD = {
    DeliveryStatus.SENT: "sent",
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.READ: "read",
    DeliveryStatus.FAILED: "failed",
}
_WHATSAPP_CHAINS = {
    DeliveryStatus.READ: (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ),
    DeliveryStatus.DELIVERED: (DeliveryStatus.SENT, DeliveryStatus.DELIVERED),
    DeliveryStatus.SENT: (DeliveryStatus.SENT,),
    DeliveryStatus.QUEUED: (DeliveryStatus.SENT,),
    DeliveryStatus.UNKNOWN: (DeliveryStatus.SENT,),
}
_UNDELIVERABLE = {"code": 131026, "title": "Message undeliverable"}
# sms.com.my reports only what ISendSMS and ISendSMSUnicode accepted (not NoDR, not 2D).
_SMSCOMMY_REPORTED = ("ISendSMS.aspx", "ISendSMSUnicode.aspx")
_MIX = (
    DeliveryStatus.DELIVERED,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.EXPIRED,
)

Outcomes = Mapping[str, DeliveryStatus] | Callable[[SentMessage], DeliveryStatus] | None


def mixed_outcome(message: SentMessage) -> DeliveryStatus:
    """Half delivered, a quarter failed, a quarter expired, by message id: reproducible, so a
    test can tell in advance which report a message gets."""
    digits = "".join(character for character in message.message_id if character.isdigit())
    return _MIX[int(digits or 0) % len(_MIX)]


OUTCOME_CHOICES: dict[str, Outcomes] = {
    "delivered": None,
    "failed": lambda _message: DeliveryStatus.FAILED,
    "expired": lambda _message: DeliveryStatus.EXPIRED,
    "mixed": mixed_outcome,
}


def receipt_chain(outcome: DeliveryStatus) -> tuple[DeliveryStatus, ...]:
    """The receipts a WhatsApp message with this outcome gets, in order: read ones are sent,
    delivered, read; delivered ones sent, delivered; queued, sent or unknown ones only sent;
    every failure (failed, expired, rejected, …) sent, then failed."""
    return _WHATSAPP_CHAINS.get(outcome, (DeliveryStatus.SENT, DeliveryStatus.FAILED))


@frozen
class PendingReport:
    """One report owed: the message, when it is due, and whether it is the final one (the
    outcome) or an earlier "queued in the telco". A WhatsApp receipt's ``status`` is fixed
    when the message is accepted (its chain depends on it); an SMS report's is ``None``:
    the outcome is looked up when it is sent."""

    message: SentMessage
    due: float
    final: bool
    status: DeliveryStatus | None = None


class ReportQueue:
    """Reports owed, in the order they were queued; ``delay`` seconds after the send the
    final report is due, and ``queued_reports`` "queued" reports come evenly before it
    (SMS). A WhatsApp message's receipt chain is spread the same way over ``delay``."""

    def __init__(self, *, delay: float = 0.0, queued_reports: int = 0):
        if delay < 0 or queued_reports < 0:
            raise ValueError("report_delay and queued_reports must be 0 or more")
        self.delay, self.queued_reports = delay, queued_reports
        self.pending: list[PendingReport] = []

    def add(self, message: SentMessage, outcome: Callable[[SentMessage], DeliveryStatus]) -> None:
        """Owe ``message``'s reports; ``outcome`` decides a WhatsApp message's chain now."""
        if message.gateway == "smscommy" and message.endpoint not in _SMSCOMMY_REPORTED:
            return
        chain: tuple[DeliveryStatus | None, ...]
        if message.gateway == "whatsapp":
            chain = receipt_chain(outcome(message))
        else:
            chain = (None,) * (self.queued_reports + 1)
        steps = len(chain)
        for step, status in enumerate(chain, 1):
            due = message.at + self.delay * step / steps
            self.pending.append(PendingReport(message, due, final=step == steps, status=status))

    def take(self, now: float | None = None) -> list[PendingReport]:
        """Remove and return what is due at ``now`` (``None``: everything)."""
        taken = [r for r in self.pending if now is None or r.due <= now]
        self.pending = [r for r in self.pending if not (now is None or r.due <= now)]
        return taken

    def put_back(self, reports: list[PendingReport]) -> None:
        """Reports whose callback failed: owed again, before anything queued since."""
        self.pending[:0] = reports


def report_request(
    report: PendingReport, outcome: DeliveryStatus, waba_number: str
) -> tuple[str, dict[str, str]]:
    """The receiver route and parameters of one report, in its gateway's format (GET, but
    a WhatsApp receipt is POSTed as a form, like an inbound message)."""
    message = report.message
    if report.status is not None:
        return "isms_whatsapp", response_form(_receipt_payload(report, report.status, waba_number))
    status = outcome if report.final else DeliveryStatus.QUEUED
    if message.gateway == "isms":
        code = _ISMS_STATUS.get(status, "UNKNOWN")
        return "isms_delivery", {"sms_id": message.message_id, "dstno": message.to, "status": code}
    sender = message.sender or waba_number
    return "smscommy_delivery", {
        "MsgId": message.message_id,
        "Sender": sender,
        "Status": _SMSCOMMY_STATUS[status],
    }


def _receipt_payload(
    report: PendingReport, status: DeliveryStatus, waba_number: str
) -> dict[str, Any]:
    """E9's Meta-style receipt: one ``statuses`` entry under ``entry[].changes[].value``."""
    message = report.message
    entry: dict[str, Any] = {
        "id": message.message_id,
        "status": _WHATSAPP_WORD[status],
        "timestamp": str(int(report.due)),
        "recipient_id": message.to,
    }
    if status is DeliveryStatus.FAILED:
        entry["errors"] = [_UNDELIVERABLE]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": message.sender or waba_number},
        "statuses": [entry],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "sandbox-waba", "changes": [{"field": "messages", "value": value}]}],
    }


def response_form(payload: Mapping[str, Any]) -> dict[str, str]:
    """B1's form: the JSON object, base64-encoded, as the one ``response`` parameter."""
    encoded = base64.b64encode(json.dumps(payload, ensure_ascii=False).encode())
    return {"response": encoded.decode()}


async def send_reports(
    webhook: WebhookTarget,
    reports: list[PendingReport],
    describe: Callable[[PendingReport], tuple[str, dict[str, str]]],
    *,
    concurrency: int,
) -> list[PendingReport]:
    """Send ``reports``; returns those that could not be sent (the receiver unreachable).

    One message's reports go one after another, so "queued" never overtakes "delivered";
    different messages go ``concurrency`` at a time.
    """
    from ._http import CallbackFailed

    failed: list[PendingReport] = []
    limiter = anyio.CapacityLimiter(concurrency)

    async def deliver(chain: list[PendingReport]) -> None:
        async with limiter:
            for position, report in enumerate(chain):
                route, params = describe(report)
                send = webhook.post_form if route == "isms_whatsapp" else webhook.get
                try:
                    await send(route, params)
                except CallbackFailed:
                    failed.extend(chain[position:])
                    return

    ordered: dict[int, list[PendingReport]] = {}
    for report in reports:
        ordered.setdefault(id(report.message), []).append(report)
    async with webhook.session(), anyio.create_task_group() as tasks:
        for chain in ordered.values():
            tasks.start_soon(deliver, chain)
    return failed
