"""WhatsApp status receipts (contract E9): parsed as reports, routed to ``on_delivery``, and
owed by the sandbox after a WhatsApp send, with the id the send answered."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import pytest

from messaging_async import DeliveryReport, DeliveryStatus, WebhookError, WebhookReceiver, webhooks
from messaging_async.testing import FakeGateway, WebhookTarget, serve
from messaging_async.webhooks import MemoryDeduplicator, WhatsAppCallback, WhatsAppInbound

SECRET = "receipts-secret-0123456789"
WABA = "60111111111"
HANDSET = "60123456789"


def form(payload: object) -> str:
    return urlencode({"response": base64.b64encode(json.dumps(payload).encode()).decode()})


def status(message_id: str, word: str, **more: Any) -> dict[str, Any]:
    return {
        "id": message_id,
        "status": word,
        "timestamp": "1732230000",
        "recipient_id": HANDSET,
        **more,
    }


def meta(*changes: dict[str, Any]) -> dict[str, Any]:
    """Meta's webhook nesting: one entry, a change per ``value`` given."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "WABA-ID", "changes": [{"field": "messages", "value": v} for v in changes]}
        ],
    }


def statuses_value(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": WABA, "phone_number_id": "PNID"},
        "statuses": list(entries),
    }


FLAT = {"messageId": "1143000007", "status": "delivered", "to": HANDSET, "timestamp": "1732230000"}


# ---------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "payload",
    [
        FLAT,
        {"statuses": [status("1143000007", "delivered")]},
        meta(statuses_value(status("1143000007", "delivered"))),
    ],
    ids=["flat", "top-level-statuses", "meta"],
)
def test_a_status_payload_is_a_report_not_a_whatsapp_inbound(payload: dict[str, Any]) -> None:
    callback = webhooks.parse_isms_whatsapp_callback(form(payload))
    assert callback.messages == ()
    (report,) = callback.receipts
    assert isinstance(report, DeliveryReport)
    assert (report.gateway, report.message_id) == ("isms_whatsapp", "1143000007")
    assert (report.status, report.status_code) == (DeliveryStatus.DELIVERED, "delivered")
    assert report.recipient == HANDSET
    assert report.timestamp == datetime.fromtimestamp(1732230000, UTC)
    assert callback.raw == payload
    with pytest.raises(WebhookError, match="status receipts, not a message"):
        webhooks.parse_isms_whatsapp(form(payload))


def test_a_meta_payload_with_several_statuses_is_several_reports_in_order() -> None:
    failed = status("wamid.B", "failed", errors=[{"code": 131026, "title": "Undeliverable"}])
    payload = meta(
        statuses_value(status("wamid.A", "sent"), status("wamid.A", "delivered")),
        statuses_value(status("wamid.A", "read"), failed),
    )
    receipts = webhooks.parse_isms_whatsapp_callback(form(payload)).receipts
    assert [(r.message_id, r.status) for r in receipts] == [
        ("wamid.A", DeliveryStatus.SENT),
        ("wamid.A", DeliveryStatus.DELIVERED),
        ("wamid.A", DeliveryStatus.READ),
        ("wamid.B", DeliveryStatus.FAILED),
    ]
    assert {r.sender for r in receipts} == {WABA}  # metadata.display_phone_number
    assert receipts[3].raw == failed  # the status object itself, errors and all
    assert [r.status.reached_handset for r in receipts] == [False, True, True, False]


def test_messages_and_statuses_in_one_payload_are_both_read() -> None:
    message = {"from": HANDSET, "id": "wamid.IN", "type": "text", "text": {"body": "hi"}}
    value = {**statuses_value(status("wamid.OUT", "read")), "messages": [message, message]}
    callback = webhooks.parse_isms_whatsapp_callback(form(meta(value)))
    assert [(m.sender, m.message_id, m.text) for m in callback.messages] == [
        (HANDSET, "wamid.IN", "hi")
    ] * 2
    assert callback.messages[0].timestamp is None  # not the status entry's timestamp
    assert callback.messages[0].recipient == WABA
    assert [(r.message_id, r.status) for r in callback.receipts] == [
        ("wamid.OUT", DeliveryStatus.READ)
    ]
    assert webhooks.parse_isms_whatsapp(form(meta(value))).message_id == "wamid.IN"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("sent", DeliveryStatus.SENT),
        ("DELIVERED", DeliveryStatus.DELIVERED),
        ("read", DeliveryStatus.READ),
        ("failed", DeliveryStatus.FAILED),
        ("played", DeliveryStatus.UNKNOWN),
        ("unread", DeliveryStatus.UNKNOWN),
    ],
)
def test_status_words_come_from_the_one_table(word: str, expected: DeliveryStatus) -> None:
    (report,) = webhooks.parse_isms_whatsapp_callback(form({**FLAT, "status": word})).receipts
    assert (report.status, report.status_code) == (expected, word)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"statuses": [{"status": "read"}]}, "no message id"),
        ({"statuses": [{"id": "1"}]}, "no status"),
        ({"statuses": [{"id": "1", "status": " "}]}, "no status"),
        ({"statuses": ["read"]}, "not an object"),
    ],
)
def test_a_status_entry_without_id_or_status_is_malformed(
    payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(WebhookError, match=message):
        webhooks.parse_isms_whatsapp_callback(form(payload))


@pytest.mark.parametrize(
    "payload",
    [
        {"from": HANDSET, "messageId": "m1", "status": "received", "text": "hello"},
        {"from": HANDSET, "messageId": "m1", "status": "received", "fileUrl": "https://x/a.pdf"},
        {"from": HANDSET, "id": "m1", "status": "new", "type": "image", "image": {"id": "x"}},
        {"from": HANDSET, "messageId": "m1", "status": {"name": "delivered"}},
        {"from": HANDSET, "status": "delivered"},  # no message id: not a receipt
        {"id": "evt-1", "status": "success", "messages": [{"from": HANDSET, "id": "m1"}]},
    ],
)
def test_a_flat_object_with_message_content_is_still_a_message(payload: dict[str, Any]) -> None:
    callback = webhooks.parse_isms_whatsapp_callback(form(payload))
    assert callback.receipts == ()
    (message,) = callback.messages
    assert isinstance(message, WhatsAppInbound)
    assert message.sender == HANDSET
    assert message.raw == payload


# ---------------------------------------------------------------- the receiver
class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.events: list[Any] = []
        self.fail_on = fail_on
        self._arrived = anyio.Event()

    async def __call__(self, event: Any) -> None:
        if self.fail_on is not None and getattr(event, "status_code", None) == self.fail_on:
            self.fail_on = None  # once
            raise RuntimeError("handler broke")
        self.events.append(event)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def until(self, count: int) -> None:
        """Wait (generously bounded) until ``count`` events have arrived."""
        with anyio.fail_after(30):
            while len(self.events) < count:
                await self._arrived.wait()


async def post(app: Any, payload: object) -> int:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as client:
        answer = await client.post(
            f"/isms/whatsapp?token={SECRET}",
            content=form(payload),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    return answer.status_code


async def test_receipts_go_to_on_delivery_and_messages_to_on_whatsapp() -> None:
    reports, messages = Recorder(), Recorder()
    app = WebhookReceiver(secret=SECRET, on_delivery=reports, on_whatsapp=messages)
    message = {"from": HANDSET, "id": "wamid.IN", "type": "text", "text": {"body": "hi"}}
    value = {
        **statuses_value(status("wamid.OUT", "sent"), status("wamid.OUT", "delivered")),
        "messages": [message],
    }
    assert await post(app, meta(value)) == 200
    assert [(r.message_id, r.status) for r in reports.events] == [
        ("wamid.OUT", DeliveryStatus.SENT),
        ("wamid.OUT", DeliveryStatus.DELIVERED),
    ]
    assert [m.message_id for m in messages.events] == ["wamid.IN"]


async def test_receipts_with_no_on_delivery_are_acknowledged_and_dropped() -> None:
    messages = Recorder()
    app = WebhookReceiver(secret=SECRET, on_whatsapp=messages)
    assert await post(app, meta(statuses_value(status("wamid.OUT", "read")))) == 200
    assert messages.events == []


async def test_a_later_status_of_the_same_message_is_not_a_duplicate() -> None:
    reports = Recorder()
    app = WebhookReceiver(secret=SECRET, on_delivery=reports, dedupe=MemoryDeduplicator())
    for word in ("sent", "delivered", "delivered", "read", "sent"):
        assert await post(app, {"statuses": [status("wamid.OUT", word)]}) == 200
    assert [r.status_code for r in reports.events] == ["sent", "delivered", "read"]


async def test_a_failing_receipt_stops_the_payload_and_its_retry_handles_only_the_rest() -> None:
    reports = Recorder(fail_on="delivered")
    app = WebhookReceiver(secret=SECRET, on_delivery=reports, dedupe=MemoryDeduplicator())
    payload = {"statuses": [status("w", "sent"), status("w", "delivered"), status("w", "read")]}
    assert await post(app, payload) == 500
    assert [r.status_code for r in reports.events] == ["sent"]
    assert await post(app, payload) == 200  # the gateway's retry
    assert [r.status_code for r in reports.events] == ["sent", "delivered", "read"]


# ---------------------------------------------------------------- the sandbox
async def send_both(fake: FakeGateway) -> list[str]:
    """A template and (inside the window the inbound message opens) a text; their ids."""
    async with fake.isms_client() as isms:
        template = await isms.send_whatsapp_template(HANDSET, "otp", params={"param1": "1"})
        await fake.receive_whatsapp(HANDSET, "hello")
        text = await isms.send_whatsapp_text(HANDSET, "thanks")
    assert template.message_id is not None
    assert text.message_id is not None
    return [template.message_id, text.message_id]


def sandbox_receiver() -> tuple[WebhookReceiver, Recorder]:
    reports = Recorder()
    return WebhookReceiver(secret=SECRET, on_delivery=reports, on_whatsapp=Recorder()), reports


async def test_the_sandbox_sends_sent_delivered_read_with_the_sends_message_ids() -> None:
    receiver, reports = sandbox_receiver()
    fake = FakeGateway(webhook=WebhookTarget(receiver, token=SECRET))
    ids = await send_both(fake)
    assert fake.pending_reports == 6
    assert reports.events == []  # owed, not sent until asked (or due)
    assert await fake.deliver_reports() == 6
    by_id: dict[str, list[DeliveryStatus]] = {}
    for report in reports.events:
        assert (report.gateway, report.recipient, report.sender) == ("isms_whatsapp", HANDSET, WABA)
        by_id.setdefault(report.message_id, []).append(report.status)
    chain = [DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ]
    assert by_id == {ids[0]: chain, ids[1]: chain}


@pytest.mark.parametrize(
    ("outcome", "chain"),
    [
        (DeliveryStatus.FAILED, ["sent", "failed"]),
        (DeliveryStatus.EXPIRED, ["sent", "failed"]),
        (DeliveryStatus.DELIVERED, ["sent", "delivered"]),
        (DeliveryStatus.SENT, ["sent"]),
    ],
)
async def test_the_sandbox_receipts_follow_delivery_outcomes(
    outcome: DeliveryStatus, chain: list[str]
) -> None:
    receiver, reports = sandbox_receiver()
    fake = FakeGateway(
        webhook=WebhookTarget(receiver, token=SECRET), delivery_outcomes={HANDSET: outcome}
    )
    async with fake.isms_client() as isms:
        sent = await isms.send_whatsapp_template(HANDSET, "otp", params={"param1": "1"})
    await fake.deliver_reports()
    assert [r.status_code for r in reports.events] == chain
    assert {r.message_id for r in reports.events} == {sent.message_id}
    if outcome is not DeliveryStatus.SENT and chain[-1] == "failed":
        assert reports.events[-1].raw["errors"][0]["code"] == 131026


async def test_the_sandbox_receipts_fall_due_over_report_delay() -> None:
    receiver, reports = sandbox_receiver()
    now = [1_750_000_000.0]
    fake = FakeGateway(
        webhook=WebhookTarget(receiver, token=SECRET), report_delay=9.0, clock=lambda: now[0]
    )
    async with fake.isms_client() as isms:
        sent = await isms.send_whatsapp_template(HANDSET, "otp", params={"param1": "1"})

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(fake.report_when_due)
        now[0] += 3.5  # the first of three receipts is due at 3 s
        await reports.until(1)
        await anyio.sleep(0.3)
        assert [r.status_code for r in reports.events] == ["sent"]
        now[0] += 6.0
        await reports.until(3)
        tasks.cancel_scope.cancel()
    assert [r.status_code for r in reports.events] == ["sent", "delivered", "read"]
    assert reports.events[0].timestamp == datetime.fromtimestamp(1_750_000_003, UTC)
    assert {r.message_id for r in reports.events} == {sent.message_id}


async def test_the_sandbox_receipts_reach_a_receiver_over_a_real_socket() -> None:
    receiver, reports = sandbox_receiver()
    async with serve(receiver) as url:
        fake = FakeGateway(webhook=WebhookTarget(url, token=SECRET))
        ids = await send_both(fake)
        assert await fake.deliver_reports() == 6
    assert fake.webhook is not None
    assert fake.webhook.answers == [200] * 7  # the inbound message, then six receipts
    assert sorted((r.message_id, r.status_code) for r in reports.events) == sorted(
        (message_id, word) for message_id in ids for word in ("sent", "delivered", "read")
    )


def test_whatsapp_callback_is_exported() -> None:
    assert webhooks.WhatsAppCallback is WhatsAppCallback


def test_the_sandbox_receipts_reach_a_receiver_on_trio_too() -> None:
    async def main() -> list[tuple[str, str | None]]:
        receiver, reports = sandbox_receiver()
        fake = FakeGateway(webhook=WebhookTarget(receiver, token=SECRET))
        async with fake.isms_client() as isms:
            sent = await isms.send_whatsapp_template(HANDSET, "otp", params={"param1": "1"})
        await fake.deliver_reports()
        assert {r.message_id for r in reports.events} == {sent.message_id}
        return [(r.gateway, r.status_code) for r in reports.events]

    chain = [("isms_whatsapp", word) for word in ("sent", "delivered", "read")]
    assert anyio.run(main, backend="trio") == chain


async def test_an_outcome_of_read_is_delivered_for_sms_and_read_for_whatsapp() -> None:
    """One ``delivery_outcomes`` for every gateway: an SMS cannot be read, so "read" is
    reported to it as delivered (before, sms.com.my's report could not be built at all)."""
    receiver, reports = sandbox_receiver()
    fake = FakeGateway(
        webhook=WebhookTarget(receiver, token=SECRET),
        delivery_outcomes=lambda _message: DeliveryStatus.READ,
    )
    async with fake.isms_client() as isms, fake.smscommy_client() as smscommy:
        await isms.send_sms(HANDSET, "hello")
        await smscommy.send_sms(HANDSET, "hello")
        await isms.send_whatsapp_template(HANDSET, "otp", params={"param1": "1"})
    assert await fake.deliver_reports() == 5
    assert sorted((r.gateway, r.status) for r in reports.events) == sorted(
        [
            ("isms", DeliveryStatus.DELIVERED),
            ("smscommy", DeliveryStatus.DELIVERED),
            ("isms_whatsapp", DeliveryStatus.SENT),
            ("isms_whatsapp", DeliveryStatus.DELIVERED),
            ("isms_whatsapp", DeliveryStatus.READ),
        ]
    )
