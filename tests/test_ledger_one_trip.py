"""The runner plans and claims a unit in one ledger call where the store offers it
(``plan_and_begin_unit``, one worker-thread trip), and in two where it does not."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from messaging_async import Outcome, Sms, SqliteLedger
from messaging_async.ledger import Entry, Plan
from messaging_async.testing import FakeGateway


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class CountingLedger(SqliteLedger):
    """A ``SqliteLedger`` that notes which of the runner's calls it gets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    async def plan(
        self, job: str, entries: Sequence[Entry], *, resend_unknown: bool = False
    ) -> Plan:
        self.calls.append("plan")
        return await super().plan(job, entries, resend_unknown=resend_unknown)

    async def begin_unit(
        self, job: str, entries: Sequence[Entry], *, expect_reports: bool = True
    ) -> None:
        self.calls.append("begin_unit")
        await super().begin_unit(job, entries, expect_reports=expect_reports)

    async def plan_and_begin_unit(
        self,
        job: str,
        entries: Sequence[Entry],
        *,
        resend_unknown: bool = False,
        expect_reports: bool = True,
    ) -> Plan:
        self.calls.append("plan_and_begin_unit")
        return await super().plan_and_begin_unit(
            job, entries, resend_unknown=resend_unknown, expect_reports=expect_reports
        )

    async def settle_unit(self, job: str, outcomes: Sequence[Outcome]) -> None:
        self.calls.append("settle_unit")
        await super().settle_unit(job, outcomes)

    async def settle_accepted(self, job: str, *columns: Any) -> None:
        self.calls.append("settle_accepted")  # a unit accepted whole: no outcome made
        await super().settle_accepted(job, *columns)


class TwoCallLedger(CountingLedger):
    """A store without the one-call form (any ``Ledger`` need not have it)."""

    plan_and_begin_unit = None  # type: ignore[assignment]


def smses(count: int) -> list[Sms]:
    return [Sms(to=f"60123{n:06d}", text=f"Promo {n}") for n in range(count)]


async def run_twice(ledger: CountingLedger) -> tuple[list[Outcome], list[Outcome], int]:
    fake = FakeGateway()
    async with ledger, fake.isms_client(ledger=ledger, max_concurrency=1) as isms:
        first = await isms.send_sms_bulk(smses(90), job="promo")
        again = await isms.send_sms_bulk(smses(120), job="promo")
    return list(first.outcomes), list(again.outcomes), len(fake.sent)


async def test_a_unit_is_planned_and_claimed_in_one_call(tmp_path: Path) -> None:
    ledger = CountingLedger(tmp_path / "l.db")
    first, again, sent = await run_twice(ledger)
    # the second run's first 90 are settled already: read off its input (``skip_settled``,
    # tests/test_ledger_skip_settled.py), never planned; the other 30 make one unit
    assert ledger.calls == [*["plan_and_begin_unit", "settle_accepted"] * 3]
    assert sent == 120
    assert [o.from_ledger for o in again] == [True] * 90 + [False] * 30
    assert [o.message_id for o in again[:90]] == [o.message_id for o in first]


async def test_a_store_without_it_is_planned_then_claimed(tmp_path: Path) -> None:
    ledger = TwoCallLedger(tmp_path / "l.db")
    first, again, sent = await run_twice(ledger)
    assert ledger.calls == [*["plan", "begin_unit", "settle_accepted"] * 3]
    assert sent == 120
    assert [o.from_ledger for o in again] == [True] * 90 + [False] * 30
    assert [o.message_id for o in again[:90]] == [o.message_id for o in first]
