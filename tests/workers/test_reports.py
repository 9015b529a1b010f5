"""Delivery reports on several web workers: each ``WebhookReceiver`` has its own
``PostgresLedger`` on the same database, and every report joins its send whichever web
worker it reaches (the sends journalled by yet another process's ledger)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from messaging_async import DeliveryStatus, PostgresLedger, Sms, WebhookReceiver
from messaging_async.testing import FakeGateway, WebhookTarget

pytestmark = pytest.mark.anyio

SECRET = "web-workers-secret-0123456789"


def numbers(count: int) -> list[str]:
    return [f"60125{n:06d}" for n in range(count)]


async def test_reports_on_two_web_workers_join_sends_in_one_database(pg_dsn: str) -> None:
    failed = set(numbers(40)[::10])
    async with (
        PostgresLedger(pg_dsn) as sender_ledger,
        PostgresLedger(pg_dsn) as web_one,
        PostgresLedger(pg_dsn) as web_two,
    ):
        receivers = [
            WebhookReceiver(secret=SECRET, ledger=web_one),
            WebhookReceiver(secret=SECRET, ledger=web_two),
        ]
        turns = itertools.cycle(receivers)
        reached: list[int] = []

        async def load_balancer(scope: Any, receive: Any, send: Any) -> None:
            receiver = next(turns)
            reached.append(receivers.index(receiver))
            await receiver(scope, receive, send)

        fake = FakeGateway(
            webhook=WebhookTarget(load_balancer, token=SECRET),
            delivery_outcomes=dict.fromkeys(failed, DeliveryStatus.FAILED),
            queued_reports=1,
        )
        async with fake.isms_client(ledger=sender_ledger) as isms:
            await isms.send_sms_bulk([Sms(to=to, text="hi") for to in numbers(40)], job="p")
        posted = await fake.deliver_reports()
        summary = await sender_ledger.summary("p")
    assert posted == 80  # a queued and a final report per message
    assert set(reached) == {0, 1}
    assert summary.delivery["delivered"] == 36
    assert summary.delivery["failed"] == 4
    assert summary.delivery["awaiting"] == 0
