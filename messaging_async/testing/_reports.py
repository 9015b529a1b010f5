"""Delivery reports the sandbox owes: queued when a message is accepted, due later, sent in
each gateway's callback format (docs/sandbox.md, "Delivery reports").

Telcos report late, and often more than once (queued in the telco, then delivered), so a
report here has a due time and a message may owe several; the last one carries the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import anyio
from attrs import frozen

from ..webhooks.events import DeliveryStatus
from ._records import SentMessage

if TYPE_CHECKING:
    from ._http import WebhookTarget

__all__ = ["OUTCOME_CHOICES", "PendingReport", "ReportQueue", "mixed_outcome"]

_ISMS_STATUS = {
    DeliveryStatus.DELIVERED: "DELIVRD",
    DeliveryStatus.FAILED: "UNDELIV",
    DeliveryStatus.EXPIRED: "EXPIRED",
    DeliveryStatus.REJECTED: "REJECTD",
    DeliveryStatus.QUEUED: "ENROUTE",
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
}
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


@frozen
class PendingReport:
    """One report owed: the message, when it is due, and whether it is the final one (the
    outcome) or an earlier "queued in the telco"."""

    message: SentMessage
    due: float
    final: bool


class ReportQueue:
    """Reports owed, in the order they were queued; ``delay`` seconds after the send the
    final report is due, and ``queued_reports`` "queued" reports come evenly before it."""

    def __init__(self, *, delay: float = 0.0, queued_reports: int = 0):
        if delay < 0 or queued_reports < 0:
            raise ValueError("report_delay and queued_reports must be 0 or more")
        self.delay, self.queued_reports = delay, queued_reports
        self.pending: list[PendingReport] = []

    def add(self, message: SentMessage) -> None:
        if message.gateway == "whatsapp":
            return
        if message.gateway == "smscommy" and message.endpoint not in _SMSCOMMY_REPORTED:
            return
        steps = self.queued_reports + 1
        for step in range(1, steps + 1):
            due = message.at + self.delay * step / steps
            self.pending.append(PendingReport(message, due, final=step == steps))

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
    """The receiver route and GET parameters of one report, in its gateway's format."""
    message = report.message
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
                try:
                    await webhook.get(*describe(report))
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
