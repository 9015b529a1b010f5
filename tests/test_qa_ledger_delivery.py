"""Adversarial checks of delivery reports joined through ``WebhookReceiver(ledger=...)``
(issue 14, semantics 6): reports that reach the receiver before their send is committed
(the sandbox posts them while the client still waits for its answer), repeated, out of
order, classic shared ids, sms.com.my ids, WhatsApp receipts; ``summary()`` and
``records()`` tell the same story."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from messaging_async import (
    DeliveryStatus,
    Sms,
    SqliteLedger,
    WebhookReceiver,
    WhatsAppTemplate,
)
from messaging_async.testing import FakeGateway, WebhookTarget

pytestmark = pytest.mark.anyio

SECRET = "qa-ledger-webhook-secret-0123456789"


class ReportsFirst(httpx.AsyncBaseTransport):
    """The sandbox in process, posting every report it owes to the receiver *before* the
    client reads the answer of the request that sent the message: each report reaches the
    ledger while its send is still in flight there (a gateway can be that fast)."""

    def __init__(self, fake: FakeGateway):
        self._fake, self._inner = fake, fake.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = await self._inner.handle_async_request(request)
        await response.aread()
        await self._fake.deliver_reports()
        return response


def numbers(count: int, start: int) -> list[str]:
    return [f"60125{n:06d}" for n in range(start, start + count)]


async def _delivery_of_records(ledger: SqliteLedger, job: str) -> Counter[str]:
    """Each accepted record's delivery state as ``summary()`` names it."""
    counted: Counter[str] = Counter()
    async for record in ledger.records(job):
        if record.outcome is not None and record.outcome.value == "accepted":
            counted[record.delivery or "awaiting"] += 1
    return counted


def _nonzero(counts: Any) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


async def test_reports_before_the_send_repeated_and_out_of_order_for_each_gateway(
    tmp_path: Path,
) -> None:
    failed = {*numbers(3, 0), *numbers(2, 100), numbers(1, 200)[0], *numbers(4, 300)}
    async with SqliteLedger(tmp_path / "l.db") as ledger:
        receiver = WebhookReceiver(secret=SECRET, ledger=ledger)  # no handler
        target = WebhookTarget(receiver, token=SECRET)
        fake = FakeGateway(
            webhook=target,
            delivery_outcomes=dict.fromkeys(failed, DeliveryStatus.FAILED),
            queued_reports=1,
        )
        early = ReportsFirst(fake)
        async with (
            fake.isms_client(ledger=ledger, transport=early) as isms,
            fake.smscommy_client(ledger=ledger, transport=early) as my,
        ):
            await isms.send_sms_bulk([Sms(to=to, text="hi") for to in numbers(60, 0)], job="json")
            await isms.send_sms_classic(numbers(60, 100), "hi 'there' --", job="classic")
            templates = [WhatsAppTemplate(to=to, template_code="otp") for to in numbers(5, 200)]
            await isms.send_whatsapp_bulk(templates, job="wa")
            await my.send_sms_bulk([Sms(to=to, text="hi") for to in numbers(20, 300)], job="my")
        assert fake.pending_reports == 0  # every report went before its send was settled
        assert len(target.answers) > 145
        first = {job: await ledger.summary(job) for job in ("json", "classic", "wa", "my")}
        # the same reports again, then a late "queued" for each message, then "delivered"
        # for one that failed: none of it moves a state
        async with target.session():
            for message in fake.sent:
                final = fake.outcome_for(message)
                if message.gateway == "isms":
                    await target.get(
                        "isms_delivery",
                        {"sms_id": message.message_id, "dstno": message.to, "status": "ENROUTE"},
                    )
                    word = "DELIVRD" if final is DeliveryStatus.DELIVERED else "UNDELIV"
                    params = {"sms_id": message.message_id, "dstno": message.to, "status": word}
                    await target.get("isms_delivery", params)
                    if final is DeliveryStatus.FAILED:
                        params["status"] = "DELIVRD"
                        await target.get("isms_delivery", params)
                elif message.gateway == "smscommy":
                    for status in ("6" if final is DeliveryStatus.DELIVERED else "7", "11"):
                        await target.get(
                            "smscommy_delivery",
                            {"MsgId": message.message_id, "Sender": "x", "Status": status},
                        )
        assert set(target.answers) == {200}, Counter(target.answers)
        again = {job: await ledger.summary(job) for job in ("json", "classic", "wa", "my")}
        records = {job: await _delivery_of_records(ledger, job) for job in again}
    expected = {
        "json": {"delivered": 57, "failed": 3},
        "classic": {"delivered": 58, "failed": 2},
        "wa": {"read": 4, "failed": 1},
        "my": {"delivered": 16, "failed": 4},
    }
    for job, counts in expected.items():
        assert _nonzero(first[job].delivery) == counts, (job, first[job].delivery)
        assert _nonzero(again[job].delivery) == counts, (job, again[job].delivery)
        assert dict(records[job]) == counts, (job, records[job])
        assert first[job].in_flight == 0


async def test_reports_before_keyed_single_sends_are_joined(tmp_path: Path) -> None:
    """Keyed single sends settle by another road (``settle_key``): a report that came
    first is joined there too, and ``find`` gives the send with its state."""
    async with SqliteLedger(tmp_path / "l.db") as ledger:
        receiver = WebhookReceiver(secret=SECRET, ledger=ledger)
        fake = FakeGateway(webhook=WebhookTarget(receiver, token=SECRET))
        early = ReportsFirst(fake)
        async with (
            fake.isms_client(ledger=ledger, transport=early) as isms,
            fake.smscommy_client(ledger=ledger, transport=early) as my,
        ):
            sms = await isms.send_sms(numbers(1, 0)[0], "OTP 1234", key="otp:1")
            wa = await isms.send_whatsapp_template(numbers(1, 1)[0], "otp", key="otp:2")
            mine = await my.send_sms(numbers(1, 2)[0], "OTP 5678", key="otp:3")
        assert fake.pending_reports == 0
        found = {
            "isms": await ledger.find(message_id=sms.message_id or "", gateway="isms"),
            "whatsapp": await ledger.find(message_id=wa.message_id or "", gateway="isms"),
            "smscommy": await ledger.find(message_id=mine.message_id or "", gateway="smscommy"),
        }
    states = {name: [r.delivery for r in records] for name, records in found.items()}
    assert states == {"isms": ["delivered"], "whatsapp": ["read"], "smscommy": ["delivered"]}


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_summary_and_every_records_filter_count_the_same(tmp_path: Path) -> None:
    """For every outcome and every delivery state ``summary()`` names (``awaiting`` and
    ``no_report`` past the horizon, ``no_report_expected`` for NoDR, failed, read…),
    ``records(job, outcome=…)`` / ``records(job, delivery=…)`` yield exactly that many."""
    clock = Clock()
    failed = set(numbers(4, 400))
    async with SqliteLedger(tmp_path / "l.db", clock=clock) as ledger:
        receiver = WebhookReceiver(secret=SECRET, ledger=ledger)
        fake = FakeGateway(
            webhook=WebhookTarget(receiver, token=SECRET),
            delivery_outcomes=dict.fromkeys(failed, DeliveryStatus.FAILED),
        )
        async with (
            fake.isms_client(ledger=ledger) as isms,
            fake.smscommy_client(ledger=ledger) as my,
        ):
            rows = [Sms(to=to, text="hi") for to in numbers(20, 400)] + [Sms(to="12", text="x")]
            await isms.send_sms_bulk(rows, job="mixed")
            await fake.deliver_reports()  # 16 delivered, 4 failed
            silent = FakeGateway()  # no webhook: its messages never get a report
            async with silent.isms_client(ledger=ledger) as quiet:
                old = [Sms(to=n, text="hi", ref=f"old{n}") for n in numbers(2, 900)]
                await quiet.send_sms_bulk(old, job="mixed")
            clock.now += 4 * 24 * 3600.0  # past the 72-hour horizon
            await isms.send_sms_bulk(
                rows + [Sms(to=n, text="hi") for n in numbers(5, 500)], job="mixed"
            )
            await my.send_sms_same_text(numbers(6, 600), "hi", job="mixed-nodr")
            templates = [WhatsAppTemplate(to=to, template_code="otp") for to in numbers(3, 700)]
            await isms.send_whatsapp_bulk(templates, job="mixed-wa")
            await fake.deliver_reports()  # the 5 new ones delivered, WhatsApp read
            late = [Sms(to=n, text="hi", ref=f"late{n}") for n in numbers(7, 800)]
            await isms.send_sms_bulk(late, job="mixed")  # keyed: not rows 0-6 again
        for job in ("mixed", "mixed-nodr", "mixed-wa"):
            summary = await ledger.summary(job)
            for state, count in summary.delivery.items():
                found = [r async for r in ledger.records(job, delivery=state)]
                assert len(found) == count, (job, state, count, len(found))
            for status, count in summary.outcomes.items():
                found = [r async for r in ledger.records(job, outcome=status)]
                assert len(found) == count, (job, status, count, len(found))
            assert sum(summary.outcomes.values()) == summary.total
        mixed = await ledger.summary("mixed")
        nodr = await ledger.summary("mixed-nodr")
        wa = await ledger.summary("mixed-wa")
    assert _nonzero(mixed.delivery) == {
        "delivered": 21,
        "failed": 4,
        "awaiting": 7,
        "no_report": 2,
    }
    assert mixed.outcomes["rejected"] == 1
    assert _nonzero(nodr.delivery) == {"no_report_expected": 6}
    assert _nonzero(wa.delivery) == {"read": 3}
