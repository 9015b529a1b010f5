"""Issue 14, point 6 through the receiver: ``WebhookReceiver(ledger=...)`` records every
delivery report and inbound WhatsApp message the sandbox posts, joined to the sends the
clients journalled; the ledger's counts equal the reports posted."""

from __future__ import annotations

from pathlib import Path

from messaging_async import (
    DeliveryStatus,
    Sms,
    SqliteLedger,
    WebhookReceiver,
    WhatsAppTemplate,
)
from messaging_async.testing import FakeGateway, WebhookTarget

SECRET = "ledger-webhook-secret-0123456789"


def numbers(count: int, start: int) -> list[str]:
    return [f"60124{n:06d}" for n in range(start, start + count)]


async def test_reports_posted_are_the_ledgers_delivery_counts(tmp_path: Path) -> None:
    failed = {*numbers(3, 0), *numbers(2, 100), *numbers(1, 200), *numbers(4, 300)}
    async with SqliteLedger(tmp_path / "l.db") as ledger:
        receiver = WebhookReceiver(secret=SECRET, ledger=ledger)  # no handler at all
        fake = FakeGateway(
            webhook=WebhookTarget(receiver, token=SECRET),
            delivery_outcomes=dict.fromkeys(failed, DeliveryStatus.FAILED),
            queued_reports=1,  # a "queued" report before each final one
        )
        async with (
            fake.isms_client(ledger=ledger) as isms,
            fake.smscommy_client(ledger=ledger) as my,
        ):
            sms = [Sms(to=to, text="hi") for to in numbers(60, 0)]
            await isms.send_sms_bulk(sms, job="json")
            await isms.send_sms_classic(numbers(60, 100), "hi", job="classic")
            templates = [WhatsAppTemplate(to=to, template_code="otp") for to in numbers(5, 200)]
            await isms.send_whatsapp_bulk(templates, job="wa")
            await my.send_sms_bulk([Sms(to=to, text="hi") for to in numbers(20, 300)], job="my")
        posted = await fake.deliver_reports()
        assert posted > 145  # every message's reports, queued ones included
        assert await fake.deliver_reports() == 0
        summaries = {job: await ledger.summary(job) for job in ("json", "classic", "wa", "my")}
        await fake.receive_whatsapp("60124999999", "hello")
        window = await ledger.whatsapp_window_open("60124999999")
        closed = await ledger.whatsapp_window_open("60124888888")
        failed_records = [r async for r in ledger.records("json", delivery="failed")]
    expected = {
        "json": (57, 3, "delivered"),
        "classic": (58, 2, "delivered"),
        "wa": (4, 1, "read"),
        "my": (16, 4, "delivered"),
    }
    for job, (good, bad, final) in expected.items():
        delivery = summaries[job].delivery
        assert delivery[final] == good, (job, delivery)
        assert delivery["failed"] == bad, (job, delivery)
        assert delivery["awaiting"] == 0, (job, delivery)
    assert {r.recipient for r in failed_records} == set(numbers(3, 0))
    assert window
    assert not closed
