"""QA (qa2): units an iSMS JSON blast got accepted whole are settled from their compact
form (``settle_accepted``); delivery reports for them, by ``sms_id``, join whether they
arrive before the unit's commit or after it, and the summary and records say the same
as for a store without it (units settled by outcomes: ``settle_unit``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from messaging_async import Outcome, Sms, SqliteLedger
from messaging_async.ledger import PostgresLedger
from messaging_async.ledger._threaded import ThreadedLedger
from messaging_async.testing import FakeGateway
from messaging_async.webhooks import DeliveryReport, DeliveryStatus

pytestmark = pytest.mark.anyio

COUNT = 230  # units of 50: four whole, one of 30


class EarlyReports(ThreadedLedger):
    """Records a delivery report for every other message of a unit just before that unit
    is settled: the gateway can report before the send is committed."""

    settled_by_columns = 0
    settled_by_outcomes = 0
    rows_by_columns = 0

    async def _early(self, message_ids: Sequence[str | None]) -> None:
        for message_id in message_ids[::2]:
            assert message_id is not None
            early = DeliveryReport(
                gateway="isms", message_id=message_id, status=DeliveryStatus.DELIVERED
            )
            assert not await self.record_report(early)  # not joined yet: kept for later

    async def settle_unit(self, job: str, outcomes: Sequence[Outcome]) -> None:
        EarlyReports.settled_by_outcomes += 1
        await self._early([o.message_id for o in outcomes])
        await super().settle_unit(job, outcomes)

    async def settle_accepted(
        self,
        job: str,
        indices: Sequence[int],
        numbers: Sequence[str],
        refs: Sequence[Any],
        message_ids: Sequence[str | None],
        code: int | None,
    ) -> None:
        EarlyReports.settled_by_columns += 1
        EarlyReports.rows_by_columns += len(indices)
        await self._early(message_ids)
        await super().settle_accepted(job, indices, numbers, refs, message_ids, code)


class SqliteEarly(EarlyReports, SqliteLedger):
    pass


class PostgresEarly(EarlyReports, PostgresLedger):
    pass


class SqliteOutcomesOnly(SqliteEarly):
    """The same store without the optional ``settle_accepted``: units settle by outcomes."""

    settle_accepted = None  # type: ignore[assignment]


class PostgresOutcomesOnly(PostgresEarly):
    settle_accepted = None  # type: ignore[assignment]


def open_store(where: Path | str, *, compact: bool) -> Any:
    """``where``: a SQLite file, or a PostgreSQL DSN (a schema of its own)."""
    if isinstance(where, Path):
        return (SqliteEarly if compact else SqliteOutcomesOnly)(where)
    schema = "qa2_" + uuid.uuid4().hex[:12]
    return (PostgresEarly if compact else PostgresOutcomesOnly)(where, schema=schema)


async def blast(where: Path | str, *, compact: bool) -> tuple[dict[str, int], list[Any]]:
    fake = FakeGateway()
    batch = [Sms(to=f"6012{i:07d}", text=f"Promo {i}") for i in range(COUNT)]
    async with (
        open_store(where, compact=compact) as ledger,
        fake.isms_client(ledger=ledger) as isms,
    ):
        report = await isms.send_sms_bulk(batch, job="j")
        assert report.all_accepted
        ids = [o.message_id for o in report.outcomes]
        assert len(set(ids)) == COUNT  # one sms_id a recipient
        for message_id in ids[1::2]:  # the rest, after the commit
            assert message_id is not None
            late = DeliveryReport(
                gateway="isms", message_id=message_id, status=DeliveryStatus.DELIVERED
            )
            assert await ledger.record_report(late)
        for message_id in ids[:10]:  # a late "queued" and a repeat change nothing
            assert message_id is not None
            for status in (DeliveryStatus.QUEUED, DeliveryStatus.DELIVERED):
                await ledger.record_report(
                    DeliveryReport(gateway="isms", message_id=message_id, status=status)
                )
        summary = await ledger.summary("j")
        records = [
            (r.recipient, r.outcome, r.message_id, r.delivery) async for r in ledger.records("j")
        ]
        delivered = [r async for r in ledger.records("j", delivery="delivered")]
    assert len(delivered) == COUNT
    return dict(summary.delivery), sorted(records)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_reports_before_and_after_the_commit_join_units_settled_by_columns(
    tmp_path: Path, request: pytest.FixtureRequest, store: str
) -> None:
    def where(name: str) -> Path | str:
        if store == "sqlite":
            return tmp_path / name
        dsn: str = request.getfixturevalue("pg_dsn")
        return dsn

    EarlyReports.settled_by_columns = EarlyReports.settled_by_outcomes = 0
    EarlyReports.rows_by_columns = 0
    quiet_counts, quiet_records = await blast(where("quiet.db"), compact=True)
    # the 5 units by columns (units whose answers came together, in one call)
    assert 1 <= EarlyReports.settled_by_columns <= 5
    assert (EarlyReports.rows_by_columns, EarlyReports.settled_by_outcomes) == (COUNT, 0)
    EarlyReports.settled_by_columns = 0
    hooked_counts, hooked_records = await blast(where("hooked.db"), compact=False)
    assert (EarlyReports.settled_by_columns, EarlyReports.settled_by_outcomes) == (0, 5)
    assert quiet_counts["delivered"] == COUNT
    assert quiet_counts["awaiting"] == 0
    assert quiet_counts == hooked_counts
    assert len(quiet_records) == COUNT
    assert [(to, o, d) for to, o, _, d in quiet_records] == [
        (to, o, d) for to, o, _, d in hooked_records
    ]
