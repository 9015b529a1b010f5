"""A journalled unit gives its concurrency slot to the next unit once its request is
over, while its outcomes wait for their commit: the ledger's trip does not hold a request
back. Its outcomes are still committed before the bulk call returns."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from messaging_async import Outcome, Sms, SqliteLedger
from messaging_async.ledger import Entry, Plan
from messaging_async.testing import FakeGateway


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class SlowSettleLedger(SqliteLedger):
    """A ledger whose first settle waits until the next unit has been claimed: with the
    slot still held (max_concurrency=1), that next claim could never come."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claims = 0
        self.second_claimed = anyio.Event()
        self.gave_up = False

    async def plan_and_begin_unit(
        self,
        job: str,
        entries: Sequence[Entry],
        *,
        resend_unknown: bool = False,
        expect_reports: bool = True,
    ) -> Plan:
        plan = await super().plan_and_begin_unit(
            job, entries, resend_unknown=resend_unknown, expect_reports=expect_reports
        )
        self.claims += 1
        if self.claims == 2:
            self.second_claimed.set()
        return plan

    async def settle_unit(self, job: str, outcomes: Sequence[Outcome]) -> None:
        # generous: with the slot held, the next claim never comes (the settle is shielded,
        # so the wait must end here, not in the test)
        with anyio.move_on_after(20) as waited:
            await self.second_claimed.wait()
        self.gave_up = self.gave_up or waited.cancelled_caught
        await super().settle_unit(job, outcomes)


def _states(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [state for (state,) in conn.execute("SELECT state FROM sends ORDER BY position")]
    finally:
        conn.close()


async def test_the_next_unit_is_sent_while_a_units_outcomes_are_committed(
    tmp_path: Path,
) -> None:
    fake = FakeGateway()
    ledger = SlowSettleLedger(tmp_path / "l.db")
    smses = [Sms(to=f"60123{n:06d}", text=f"Promo {n}") for n in range(100)]  # two units
    async with ledger, fake.isms_client(ledger=ledger, max_concurrency=1) as isms:
        report = await isms.send_sms_bulk(smses, job="promo")
    assert not ledger.gave_up
    assert report.all_accepted
    assert len(fake.sent) == 100
    assert _states(tmp_path / "l.db") == ["accepted"] * 100
