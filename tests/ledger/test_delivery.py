"""Delivery reports joined to sends; inbound WhatsApp messages and the 24-hour window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from attrs import evolve

from messaging_async import (
    DeliveryReport,
    DeliveryStatus,
    OutcomeStatus,
    WhatsAppInbound,
)
from messaging_async.ledger import Entry

from .conftest import Clock, LedgerFactory, accepted, sms_entries

pytestmark = pytest.mark.anyio

JOB = "promo"


def report(
    message_id: str,
    status: DeliveryStatus,
    *,
    gateway: str = "isms",
    recipient: str | None = None,
    code: str | None = None,
) -> DeliveryReport:
    return DeliveryReport(
        gateway=gateway, message_id=message_id, status=status, recipient=recipient, status_code=code
    )


async def _sent(ledger: object, entries: list[Entry], gateway: str = "isms") -> None:
    from messaging_async.ledger import Ledger

    assert isinstance(ledger, Ledger)
    await ledger.open_job(JOB, gateway=gateway)
    await ledger.begin_unit(JOB, entries)
    await ledger.settle_unit(JOB, accepted(entries))


async def test_reports_move_state_forward_only_and_count_once(make_ledger: LedgerFactory) -> None:
    entries = sms_entries(3)
    async with make_ledger() as ledger:
        await _sent(ledger, entries)
        posted = [
            report("m0", DeliveryStatus.DELIVERED, code="1"),
            report("m0", DeliveryStatus.QUEUED, code="3"),  # late: changes nothing
            report("m0", DeliveryStatus.DELIVERED, code="1"),  # a repeat
            report("m1", DeliveryStatus.QUEUED),
            report("m1", DeliveryStatus.FAILED),
            report("m1", DeliveryStatus.FAILED),
        ]
        joined = [await ledger.record_report(r) for r in posted]
        summary = await ledger.summary(JOB)
        m0 = await ledger.find(message_id="m0", gateway="isms")
    assert joined == [True] * 6
    assert summary.delivery["delivered"] == 1
    assert summary.delivery["failed"] == 1
    assert summary.delivery["queued"] == 0
    assert summary.delivery["awaiting"] == 1
    assert sum(summary.delivery.values()) == summary.outcomes["accepted"] == 3
    assert [(r.delivery, r.delivery_code) for r in m0] == [("delivered", "1")]


async def test_every_status_is_a_key_of_the_summary(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        await _sent(ledger, sms_entries(1))
        summary = await ledger.summary(JOB)
        missing = await ledger.summary("never-run")
    expected = {s.value for s in DeliveryStatus} | {"awaiting", "no_report", "no_report_expected"}
    assert set(summary.delivery) == expected
    assert set(summary.outcomes) == {s.value for s in OutcomeStatus}
    assert (missing.total, set(missing.delivery)) == (0, expected)


async def test_a_report_before_its_send_is_kept_and_joined_when_the_send_lands(
    make_ledger: LedgerFactory,
) -> None:
    entries = sms_entries(2)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="smscommy")
        await ledger.begin_unit(JOB, entries)
        early = await ledger.record_report(
            report("m0", DeliveryStatus.DELIVERED, gateway="smscommy")
        )
        await ledger.settle_unit(JOB, accepted(entries))
        summary = await ledger.summary(JOB)
    assert early is False
    assert summary.delivery["delivered"] == 1
    assert summary.delivery["awaiting"] == 1


async def test_classic_shared_ids_join_by_id_and_number(make_ledger: LedgerFactory) -> None:
    entries = sms_entries(3)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries)
        shared = [evolve(o, message_id="batch-1") for o in accepted(entries)]
        await ledger.settle_unit(JOB, shared)
        await ledger.record_report(
            report("batch-1", DeliveryStatus.DELIVERED, recipient="+60 12-000 0001")
        )
        await ledger.record_report(
            report("batch-1", DeliveryStatus.FAILED, recipient=entries[2].to)
        )
        nobody = await ledger.record_report(report("batch-1", DeliveryStatus.EXPIRED))
        records = {r.recipient: r.delivery async for r in ledger.records(JOB)}
    assert records == {entries[0].to: None, entries[1].to: "delivered", entries[2].to: "failed"}
    assert nobody is False  # no number: which of the three cannot be told


async def test_reports_of_one_gateway_never_join_another(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        await _sent(ledger, sms_entries(1), gateway="smscommy")
        stray = await ledger.record_report(report("m0", DeliveryStatus.DELIVERED))
        own = await ledger.record_report(report("m0", DeliveryStatus.DELIVERED, gateway="smscommy"))
    assert (stray, own) == (False, True)


async def test_whatsapp_receipts_join_by_message_id(make_ledger: LedgerFactory) -> None:
    read = DeliveryStatus("read") if "read" in DeliveryStatus._value2member_map_ else None
    async with make_ledger() as ledger:
        await _sent(ledger, sms_entries(1), gateway="whatsapp")
        joined = await ledger.record_report(report("m0", DeliveryStatus.DELIVERED))
        if read is not None:
            await ledger.record_report(report("m0", read))
        records = [r async for r in ledger.records(JOB, delivery="read" if read else "delivered")]
    assert joined is True
    assert len(records) == 1


async def test_no_dr_sends_expect_no_report(make_ledger: LedgerFactory) -> None:
    entries = sms_entries(2)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="smscommy")
        await ledger.begin_unit(JOB, entries, expect_reports=False)
        await ledger.settle_unit(JOB, accepted(entries))
        summary = await ledger.summary(JOB)
    assert summary.delivery["no_report_expected"] == 2
    assert summary.delivery["awaiting"] == 0


async def test_no_report_past_the_horizon(make_ledger: LedgerFactory, clock: Clock) -> None:
    entries = sms_entries(2)
    async with make_ledger(report_horizon=timedelta(hours=1)) as ledger:
        await _sent(ledger, entries[:1])
        clock.advance(3601)
        await ledger.begin_unit(JOB, entries[1:])
        await ledger.settle_unit(JOB, accepted(entries[1:]))
        summary = await ledger.summary(JOB)
        silent = [r.index or 0 async for r in ledger.records(JOB, delivery="no_report")]
        waiting = [r.index or 0 async for r in ledger.records(JOB, delivery="awaiting")]
    assert (summary.delivery["no_report"], summary.delivery["awaiting"]) == (1, 1)
    assert (silent, waiting) == ([0], [1])


async def test_whatsapp_window_opens_for_24_hours_after_an_inbound_message(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    now = datetime.fromtimestamp(clock.now, UTC)
    async with make_ledger() as ledger:
        await ledger.record_inbound(WhatsAppInbound(sender="+60 12-345 6789"))
        await ledger.record_inbound(
            WhatsAppInbound(sender="60198765432", timestamp=now - timedelta(hours=25))
        )
        await ledger.record_inbound(WhatsAppInbound(sender=None))
        assert await ledger.whatsapp_window_open("60123456789")
        assert not await ledger.whatsapp_window_open("60198765432")
        assert not await ledger.whatsapp_window_open("60111111111")
        clock.advance(24 * 3600)
        assert not await ledger.whatsapp_window_open("60123456789")
        await ledger.record_inbound(WhatsAppInbound(sender="60123456789"))
        assert await ledger.whatsapp_window_open("60123456789")


async def test_summary_counts_equal_the_reports_posted(make_ledger: LedgerFactory) -> None:
    entries = sms_entries(120)
    statuses = [DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED]
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        for start in range(0, 120, 50):
            unit = entries[start : start + 50]
            await ledger.begin_unit(JOB, unit)
            await ledger.settle_unit(JOB, accepted(unit))
        for n in range(100):
            await ledger.record_report(report(f"m{n}", statuses[n % 3]))
        summary = await ledger.summary(JOB)
        failed = [r.index or 0 async for r in ledger.records(JOB, delivery="failed")]
    assert summary.total == 120
    assert summary.delivery["delivered"] == 34
    assert summary.delivery["failed"] == 33
    assert summary.delivery["expired"] == 33
    assert summary.delivery["awaiting"] == 20
    assert sorted(failed) == [n for n in range(100) if n % 3 == 1]
