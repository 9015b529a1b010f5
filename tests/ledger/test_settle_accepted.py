"""``settle_accepted``: a unit the gateway accepted whole, settled from its columns (no
``Outcome`` made by the runner), records what ``settle_unit`` of its outcomes records, on
every store; and a delivery report that came before the send joins it either way.

Contract tests: every store runs them (``make_ledger`` is parametrised per store).
"""

from __future__ import annotations

from typing import Any

import pytest
from attrs import evolve

from messaging_async import DeliveryStatus, OutcomeStatus
from messaging_async._accepted_settles import Joined
from messaging_async.ledger import Entry, LedgerRecord
from messaging_async.ledger._threaded import ThreadedLedger
from messaging_async.models import Outcome
from messaging_async.webhooks.events import DeliveryReport

from .conftest import Clock, LedgerFactory, sms_entries

pytestmark = pytest.mark.anyio


def _units() -> list[list[Entry]]:
    """Refs of each kind the ledger keys; a unit keyed by positions only."""
    keyed = sms_entries(4, refs=True)
    keyed[1] = keyed[1]._replace(ref=7)
    keyed[2] = keyed[2]._replace(ref=None)
    return [keyed, sms_entries(3, start=10)]


def _columns(unit: list[Entry], code: int | None) -> tuple[Any, ...]:
    ids = tuple(f"columns-{e.position}" for e in unit)
    return (
        tuple(e.position for e in unit),
        tuple(e.to for e in unit),
        tuple(e.ref for e in unit),
        ids,
        code,
    )


def _outcomes(unit: list[Entry], code: int | None) -> list[Outcome]:
    accepted = [e.outcome(OutcomeStatus.ACCEPTED, "") for e in unit]
    return [evolve(o, reason=None, message_id=f"outcomes-{o.index}", code=code) for o in accepted]


def _row(r: LedgerRecord, job: str) -> tuple[Any, ...]:
    """A record's every field but its job, its message id without the job's prefix."""
    message_id = (r.message_id or "").removeprefix(job)
    return (
        *(r.key, r.recipient, r.outcome, r.ref, r.index, r.code, r.reason, message_id),
        *(r.request_id, r.seqno, r.delivery, r.attempts, r.began_at, r.settled_at),
    )


async def test_it_records_what_settle_unit_of_the_outcomes_records(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with make_ledger() as ledger:
        assert isinstance(ledger, ThreadedLedger)
        for job in ("columns", "outcomes"):
            early = DeliveryReport(
                gateway="isms", message_id=f"{job}-10", status=DeliveryStatus.DELIVERED
            )
            assert not await ledger.record_report(early)  # before its send: joined later
            await ledger.open_job(job, gateway="isms")
            for unit, code in zip(_units(), (2000, None), strict=True):
                await ledger.begin_unit(job, unit)
                clock.advance(1)
                if job == "columns":
                    await ledger.settle_accepted(job, *_columns(unit, code))
                else:
                    await ledger.settle_unit(job, _outcomes(unit, code))
            await ledger.close_job(job)
            found[job] = [_row(record, job) async for record in ledger.records(job)]
            clock.advance(-2)  # both jobs settled at the same times
    assert found["columns"] == found["outcomes"]
    assert len(found["columns"]) == 7
    assert {row[2] for row in found["columns"]} == {OutcomeStatus.ACCEPTED}
    delivered = [row for row in found["columns"] if row[10] == DeliveryStatus.DELIVERED.value]
    assert [row[0] for row in delivered] == ["p:0000000010"]


async def test_units_joined_in_one_call_record_what_each_alone_records(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    """Units coalesced in one call (``_accepted_settles.Joined`` columns: refs of each
    kind, ``None`` among them; a unit keyed by positions only) write on every store the
    rows each unit's own call writes (qa11)."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with make_ledger() as ledger:
        assert isinstance(ledger, ThreadedLedger)
        for job in ("joined", "alone"):
            await ledger.open_job(job, gateway="isms")
            units = _units()
            for unit in units:
                await ledger.begin_unit(job, unit)
            clock.advance(1)
            columns = [_columns(unit, 2000)[:4] for unit in units]
            if job == "joined":
                indices, numbers, refs, ids = (Joined(p) for p in zip(*columns, strict=True))
                await ledger.settle_accepted(job, indices, numbers, refs, ids, 2000)
            else:
                for indices, numbers, refs, ids in columns:
                    await ledger.settle_accepted(job, indices, numbers, refs, ids, 2000)
            await ledger.close_job(job)
            found[job] = [_row(record, job) async for record in ledger.records(job)]
            clock.advance(-1)
    assert found["joined"] == found["alone"]
    assert len(found["joined"]) == 7
