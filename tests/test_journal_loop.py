"""The journalled blast's event-loop side, second pass (issues 14/17): each quicker road
of the journal is held equal to the general one it stands in for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from messaging_async import IsmsClient, Sms
from messaging_async._journal import Journal
from messaging_async._plan import BulkPlan, Pending
from messaging_async.ledger import Entry

MESSAGES = [
    Sms(to="+60 12-345 6789", text="Hi", ref="x"),
    Sms(to="60123456790", text="Helló ünï", ref=7),
    Sms(to="60123456791", text="Hi", ref=None),
]


def _client() -> IsmsClient:
    return IsmsClient(username="u", password="p", sms_base_urls=["http://127.0.0.1:9"])


def _journal(plan: BulkPlan[Any]) -> Journal:
    return Journal(object(), "job", plan, resend_unknown=False)  # type: ignore[arg-type]


def _entries_by_the_general_road(isms: IsmsClient) -> Sequence[Entry]:
    """What the journal built before pendings carried their item: a plan whose prepare
    keeps nothing, each item kept aside by ``wrap``."""
    plan = isms._sms_plan(None)
    general = BulkPlan(
        prepare=plan.prepare,
        send_unit=plan.send_unit,
        unit_size=plan.unit_size,
        concurrency=plan.concurrency,
        gateway=plan.gateway,
        keeps_content=False,
    )
    journal = _journal(general)
    prepare = journal.wrap(general.prepare)
    assert prepare is not general.prepare  # the general road keeps each item aside
    unit = [prepare(index, sms)._replace(content=None) for index, sms in enumerate(MESSAGES)]
    entries = journal._entries(unit)
    assert journal._contents == {}  # let go of once claimed
    return entries


def test_an_sms_plan_s_pendings_carry_their_item_and_the_journal_keeps_nothing_aside() -> None:
    isms = _client()
    plan = isms._sms_plan(None)
    assert plan.keeps_content
    journal = _journal(plan)
    prepare = journal.wrap(plan.prepare)
    assert prepare is plan.prepare  # no wrapper a recipient
    unit: list[Pending[Any]] = [prepare(i, sms) for i, sms in enumerate(MESSAGES)]
    assert [p.content for p in unit] == MESSAGES
    assert journal._contents == {}
    entries = journal._entries(unit)
    assert all(type(entry) is Entry for entry in entries)
    assert list(entries) == list(_entries_by_the_general_road(isms))
    for entry, sms, pending in zip(entries, MESSAGES, unit, strict=True):
        assert entry._asdict() == {
            "position": pending.position,
            "to": pending.to,
            "ref": sms.ref,
            "content": sms,
            "seqno": None,
        }
        assert entry.content is sms


def test_a_unit_goes_to_the_writer_process_as_columns_and_no_entry_is_made() -> None:
    """The writer process's encoder reads the runner's ``UnitEntries`` as the columns they
    are (no ``Entry`` a recipient, issue 17: what the young collections found alive), the
    same columns as a list of the same entries gives; the usual answer (all of them, as
    given) hands the runner's object back, still unmade, and the unit goes as it is."""
    from messaging_async.ledger import _writer_calls
    from messaging_async.ledger._models import UnitEntries

    isms = _client()
    plan = isms._sms_plan(None)
    journal = _journal(plan)
    unit: list[Pending[Any]] = [plan.prepare(i, sms) for i, sms in enumerate(MESSAGES)]
    entries = journal._entries(unit)
    assert isinstance(entries, UnitEntries)
    op, args, read = _writer_calls.plan_and_begin("job", entries, False, True)
    assert entries._entries is None  # read as columns: none made
    assert read is not None
    answered = read(None)
    assert answered.send is entries
    assert entries._entries is None
    assert journal._pendings(unit, answered.send) is unit
    assert entries._entries is None
    # the same frame as the general road's, from entries made one by one
    general_op, general_args, _ = _writer_calls.plan_and_begin("job", list(entries), False, True)
    assert (op, _as_lists(args)) == (general_op, _as_lists(general_args))
    assert [type(e) for e in entries] == [Entry] * len(MESSAGES)
    assert entries[1] == Entry(1, unit[1].to, 7, MESSAGES[1], None)
    assert entries[-2:] == list(entries)[-2:]
    assert len(entries) == 3


def _as_lists(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A claim's arguments with its columns as lists (either road may send tuples)."""
    job, columns, *rest = args
    return (job, [list(c) if isinstance(c, tuple | list) else c for c in columns], *rest)
