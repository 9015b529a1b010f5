"""``read_ahead``: a resumed job's settled rows read ahead of its input, for the runner to
take an item settled with this very input without preparing it (issue 14's resume at
200,000 recipients/s). It must say what ``plan`` says for every entry it decides, and
leave every other entry to ``plan``.

Contract tests: every store runs them (``make_ledger`` is parametrised per store).
"""

from __future__ import annotations

import pytest
from attrs import evolve

from messaging_async import Outcome, OutcomeStatus, Sms
from messaging_async.ledger import Entry, Ledger
from messaging_async.ledger._threaded import ThreadedLedger

from .conftest import LedgerFactory, accepted, sms_entries

pytestmark = pytest.mark.anyio

JOB = "resumed"


def _fields(outcomes: tuple[Outcome, ...] | list[Outcome]) -> list[tuple[object, ...]]:
    return [
        (o.index, o.to, o.ref, o.status, o.code, o.reason, o.message_id, o.seqno, o.from_ledger)
        for o in outcomes
    ]


async def settled(ledger: Ledger, entries: list[Entry], first: int = 0) -> list[Outcome | None]:
    """Each entry's answer from the stores' ``read_ahead`` (optional: not part of the
    ``Ledger`` protocol), read from ``first`` on."""
    assert isinstance(ledger, ThreadedLedger)
    ahead = await ledger.read_ahead(JOB, first, 512)
    return [
        None if ahead is None else ahead.take(entry.position, entry.to, entry.ref, entry.content)
        for entry in entries
    ]


async def test_settled_by_an_earlier_run_with_the_same_input_only(
    make_ledger: LedgerFactory,
) -> None:
    entries = sms_entries(12)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries[:10])
        outcomes = accepted(entries[:6])
        outcomes.append(evolve(entries[6].outcome(OutcomeStatus.REJECTED, "bad"), code=-1008))
        outcomes.append(entries[7].outcome(OutcomeStatus.NOT_SENT, "refused"))
        outcomes.append(entries[8].outcome(OutcomeStatus.UNKNOWN, "timed out"))
        await ledger.settle_unit(JOB, outcomes)  # 9: left in flight; 10, 11: never claimed
        await ledger.close_job(JOB)

        await ledger.open_job(JOB, gateway="isms")
        again = list(entries)
        # The same number written otherwise, a changed text, another number:
        again[1] = entries[1]._replace(to="+6012" + entries[1].to[4:])
        again[2] = entries[2]._replace(content=Sms(to=entries[2].to, text="changed"))
        again[3] = entries[3]._replace(to="60129999999")
        found = await settled(ledger, again)
        planned = await ledger.plan(JOB, [again[n] for n in (0, 4, 5, 6)])
    assert [n for n, outcome in enumerate(found) if outcome is not None] == [0, 4, 5, 6]
    marked = [evolve(o, from_ledger=True) for o in planned.outcomes]
    assert _fields([o for o in found if o is not None]) == _fields(marked)


async def test_a_fresh_job_and_this_runs_own_claims_are_left_to_plan(
    make_ledger: LedgerFactory,
) -> None:
    entries = sms_entries(5)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        assert isinstance(ledger, ThreadedLedger)
        assert await ledger.read_ahead(JOB, 0, 512) is None  # this run created the job
        await ledger.begin_unit(JOB, entries)
        await ledger.settle_unit(JOB, accepted(entries))
        await ledger.close_job(JOB)
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries[:2])  # claimed again by this run
        await ledger.settle_unit(JOB, accepted(entries[:2]))
        found = await settled(ledger, entries)
        later = await ledger.read_ahead(JOB, 5, 512)
    assert [outcome is not None for outcome in found] == [False, False, True, True, True]
    assert later is not None
    assert not later.found_in(5, 5 + 512)


async def test_refs_and_other_positions_are_left_to_plan(make_ledger: LedgerFactory) -> None:
    entries = sms_entries(4, refs=True)
    plain = sms_entries(4)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, [*entries[:2], *plain[2:]])
        await ledger.settle_unit(JOB, accepted([*entries[:2], *plain[2:]]))
        await ledger.close_job(JOB)
        await ledger.open_job(JOB, gateway="isms")
        found = await settled(ledger, [*entries[:3], plain[3]._replace(position=2)])
        from_two = await settled(ledger, [plain[3]], first=2)
        past = await settled(ledger, [plain[3]], first=4)
    # refs: never looked at; a position's row is no other position's
    assert found == [None, None, None, None]
    assert [o is not None for o in from_two] == [True]
    assert past == [None]


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
        found = await settled(ledger, [local])
    assert found == [None]


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
