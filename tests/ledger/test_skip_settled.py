"""``skip_settled``: a resumed job's settled recipients read off its raw input (issue 14's
resume at 200,000 recipients/s). It must say what ``plan`` says for every entry it
decides, and leave every other entry to ``plan``.

Contract tests: every store runs them (``make_ledger`` is parametrised per store).
"""

from __future__ import annotations

import pytest
from attrs import evolve

from messaging_async import OutcomeStatus, Sms
from messaging_async.ledger import Entry, Ledger, Plan
from messaging_async.ledger._threaded import ThreadedLedger

from .conftest import LedgerFactory, accepted, sms_entries

pytestmark = pytest.mark.anyio

JOB = "resumed"


def _fields(outcomes: tuple[object, ...]) -> list[tuple[object, ...]]:
    return [
        (o.index, o.to, o.ref, o.status, o.code, o.reason, o.message_id, o.seqno)  # type: ignore[attr-defined]
        for o in outcomes
    ]


async def test_settled_by_an_earlier_run_with_the_same_input_only(
    make_ledger: LedgerFactory,
) -> None:
    entries = sms_entries(12)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries[:10])
        settled = accepted(entries[:6])
        settled.append(evolve(entries[6].outcome(OutcomeStatus.REJECTED, "bad"), code=-1008))
        settled.append(entries[7].outcome(OutcomeStatus.NOT_SENT, "refused"))
        settled.append(entries[8].outcome(OutcomeStatus.UNKNOWN, "timed out"))
        await ledger.settle_unit(JOB, settled)  # 9: left in flight; 10, 11: never claimed
        await ledger.close_job(JOB)

        await ledger.open_job(JOB, gateway="isms")
        again = list(entries)
        # The same number written otherwise, a changed text, another number:
        again[1] = entries[1]._replace(to="+6012" + entries[1].to[4:])
        again[2] = entries[2]._replace(content=Sms(to=entries[2].to, text="changed"))
        again[3] = entries[3]._replace(to="60129999999")
        skipped = await skip_settled(ledger, JOB, again)
        planned = await ledger.plan(JOB, [e for e in again if e.position in {0, 4, 5, 6}])
    assert [o.index for o in skipped.outcomes] == [0, 4, 5, 6]
    assert _fields(skipped.outcomes) == _fields(planned.outcomes)
    assert skipped.send == tuple(e for e in again if e.position not in {0, 4, 5, 6})


async def skip_settled(ledger: Ledger, job: str, entries: list[Entry]) -> Plan:
    """The stores' ``skip_settled`` (optional: not part of the ``Ledger`` protocol)."""
    assert isinstance(ledger, ThreadedLedger)
    return await ledger.skip_settled(job, entries)


async def test_a_fresh_job_and_this_runs_own_claims_are_left_to_plan(
    make_ledger: LedgerFactory,
) -> None:
    entries = sms_entries(5)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        assert (await skip_settled(ledger, JOB, entries)).send == tuple(entries)
        await ledger.begin_unit(JOB, entries)
        await ledger.settle_unit(JOB, accepted(entries))
        mine = await skip_settled(ledger, JOB, entries)  # settled by this very run
    assert mine.outcomes == ()
    assert mine.send == tuple(entries)


async def test_refs_moved_repeated_or_unkeyable_are_left_to_plan(
    make_ledger: LedgerFactory,
) -> None:
    entries = sms_entries(4, refs=True)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries)
        await ledger.settle_unit(JOB, accepted(entries))
        await ledger.close_job(JOB)
        await ledger.open_job(JOB, gateway="isms")
        moved = [entries[1]._replace(position=0), entries[0]._replace(position=1)]
        odd = [entries[2], entries[3]._replace(ref=3.5)]
        skipped = await skip_settled(ledger, JOB, [*moved, *odd])
        planned = await ledger.plan(JOB, [entries[2]])
    assert _fields(skipped.outcomes) == _fields(planned.outcomes)
    assert [o.ref for o in skipped.outcomes] == ["r2"]
    assert skipped.send == (*moved, odd[1])


async def test_a_local_number_is_prepared_again_whatever_it_was_recorded_as(
    make_ledger: LedgerFactory,
) -> None:
    """A number that needs the client's default country could mean another number now: it
    is never taken as it stands, even where it equals the recorded one."""
    local = Entry(0, "0123456789", None, Sms(to="0123456789", text="hi"))
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, [local])
        await ledger.settle_unit(JOB, accepted([local]))
        await ledger.close_job(JOB)
        await ledger.open_job(JOB, gateway="isms")
        skipped = await skip_settled(ledger, JOB, [local])
    assert skipped.outcomes == ()
    assert skipped.send == (local,)


async def test_a_fresh_jobs_units_are_sent_unread_until_a_position_comes_back(
    make_ledger: LedgerFactory,
) -> None:
    """A job this run created has no row for a position it has not planned yet: its units
    are planned without a read; a position planned again is read as before."""
    entries = sms_entries(6)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        first = await ledger.plan(JOB, entries[:3])
        await ledger.begin_unit(JOB, first.send)
        await ledger.settle_unit(JOB, accepted(entries[:3]))
        again = await ledger.plan(JOB, entries[2:])  # position 2 is back: read
        later = await ledger.plan(JOB, entries[5:])
    assert first.send == tuple(entries[:3])
    assert again.send == tuple(entries[3:])
    assert [(o.index, o.message_id) for o in again.outcomes] == [(2, "m2")]
    assert later.send == (entries[5],)
