"""The resume rules: identity, fingerprints, write-ahead, what a second run sends.

Contract tests: every store runs them (``make_ledger`` is parametrised per store).
"""

from __future__ import annotations

import pytest
from attrs import evolve

from messaging_async import LedgerError, OutcomeStatus, Sms, WhatsAppTemplate
from messaging_async.ledger import SEQNO_MEMORY, Entry

from .conftest import Clock, LedgerFactory, accepted, sms_entries

pytestmark = pytest.mark.anyio

JOB = "promo-2026-11"


async def test_a_new_job_sends_everything_and_a_finished_one_sends_nothing(
    make_ledger: LedgerFactory,
) -> None:
    entries = sms_entries(50)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        plan = await ledger.plan(JOB, entries)
        assert plan.send == tuple(entries)
        assert plan.outcomes == ()
        await ledger.begin_unit(JOB, plan.send)
        await ledger.settle_unit(JOB, accepted(entries))
        await ledger.close_job(JOB)

        await ledger.open_job(JOB, gateway="isms")
        again = await ledger.plan(JOB, entries)
    assert again.send == ()
    assert [o.status for o in again.outcomes] == [OutcomeStatus.ACCEPTED] * 50
    assert [o.message_id for o in again.outcomes] == [f"m{n}" for n in range(50)]
    assert [o.index for o in again.outcomes] == list(range(50))
    assert {o.code for o in again.outcomes} == {2000}


async def test_rejected_is_kept_and_not_sent_is_sent_again(make_ledger: LedgerFactory) -> None:
    entries = sms_entries(3)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries)
        await ledger.settle_unit(
            JOB,
            [
                accepted(entries[:1])[0],
                evolve(entries[1].outcome(OutcomeStatus.REJECTED, "bad number"), code=-1008),
                entries[2].outcome(OutcomeStatus.NOT_SENT, "connection refused"),
            ],
        )
        await ledger.close_job(JOB)
        await ledger.open_job(JOB, gateway="isms")
        plan = await ledger.plan(JOB, entries)
    assert plan.send == (entries[2],)
    assert [(o.index, o.status, o.code, o.reason) for o in plan.outcomes] == [
        (0, OutcomeStatus.ACCEPTED, 2000, "accepted"),
        (1, OutcomeStatus.REJECTED, -1008, "bad number"),
    ]


async def test_in_flight_left_by_a_dead_run_is_unknown_and_never_resent(
    make_ledger: LedgerFactory,
) -> None:
    entries = sms_entries(4)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries)  # the run dies before any answer
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        first = await ledger.plan(JOB, entries)
        await ledger.close_job(JOB)
        await ledger.open_job(JOB, gateway="isms")
        second = await ledger.plan(JOB, entries)
        summary = await ledger.summary(JOB)
    for plan in (first, second):
        assert plan.send == ()
        assert [o.status for o in plan.outcomes] == [OutcomeStatus.UNKNOWN] * 4
    assert "may have reached the gateway" in (first.outcomes[0].reason or "")
    assert summary.outcomes["unknown"] == 4
    assert summary.in_flight == 0


async def test_resend_unknown_sends_them_again_when_asked(make_ledger: LedgerFactory) -> None:
    entries = sms_entries(2)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries)
        await ledger.settle_unit(
            JOB, [e.outcome(OutcomeStatus.UNKNOWN, "timeout") for e in entries]
        )
        await ledger.close_job(JOB)
        await ledger.open_job(JOB, gateway="isms")
        kept = await ledger.plan(JOB, entries)
        resent = await ledger.plan(JOB, entries, resend_unknown=True)
    assert kept.send == ()
    assert [o.reason for o in kept.outcomes] == ["timeout", "timeout"]
    assert resent.send == tuple(entries)


async def test_smscommy_in_flight_is_resent_with_its_recorded_seqno_within_24_hours(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    entries = sms_entries(2, seqnos=True)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="smscommy")
        await ledger.begin_unit(JOB, entries)
    fresh_seqnos = [e._replace(seqno=f"new{e.position}") for e in entries]
    clock.advance(SEQNO_MEMORY - 60)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="smscommy")
        plan = await ledger.plan(JOB, fresh_seqnos)
    assert [e.seqno for e in plan.send] == ["s0", "s1"]  # the gateway de-duplicates them
    assert plan.outcomes == ()


async def test_smscommy_in_flight_past_the_seqno_memory_is_unknown(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    entries = sms_entries(1, seqnos=True)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="smscommy")
        await ledger.begin_unit(JOB, entries)
    clock.advance(SEQNO_MEMORY + 1)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="smscommy")
        plan = await ledger.plan(JOB, entries)
    assert plan.send == ()
    assert [(o.status, o.seqno) for o in plan.outcomes] == [(OutcomeStatus.UNKNOWN, "s0")]


async def test_changed_input_is_rejected_and_not_sent(make_ledger: LedgerFactory) -> None:
    entries = sms_entries(3, refs=True)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries)
        await ledger.settle_unit(
            JOB, [e.outcome(OutcomeStatus.NOT_SENT, "refused") for e in entries]
        )
        await ledger.close_job(JOB)
        changed = [
            entries[0]._replace(content=Sms(to=entries[0].to, text="Hi 0, new price")),
            entries[1]._replace(to="60199999999"),
            entries[2],
        ]
        await ledger.open_job(JOB, gateway="isms")
        plan = await ledger.plan(JOB, changed)
    assert plan.send == (entries[2],)
    assert [(o.ref, o.status) for o in plan.outcomes] == [
        ("r0", OutcomeStatus.REJECTED),
        ("r1", OutcomeStatus.REJECTED),
    ]
    assert all("input changed" in (o.reason or "") for o in plan.outcomes)


async def test_a_ref_keeps_its_identity_when_the_input_is_reordered(
    make_ledger: LedgerFactory,
) -> None:
    entries = sms_entries(3, refs=True)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries[:2])
        await ledger.settle_unit(JOB, accepted(entries[:2]))
        await ledger.close_job(JOB)
        reordered = [e._replace(position=2 - e.position) for e in reversed(entries)]
        await ledger.open_job(JOB, gateway="isms")
        plan = await ledger.plan(JOB, reordered)
    assert [e.ref for e in plan.send] == ["r2"]
    assert [(o.ref, o.index, o.message_id) for o in plan.outcomes] == [
        ("r1", 1, "m1"),
        ("r0", 2, "m0"),
    ]


async def test_a_repeated_ref_rejects_the_second_in_a_unit_and_across_units(
    make_ledger: LedgerFactory,
) -> None:
    first = Entry(0, "60123450000", "same", Sms(to="60123450000", text="Hi"))
    twin = first._replace(position=1)
    later = first._replace(position=7)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        plan = await ledger.plan(JOB, [first, twin])
        await ledger.begin_unit(JOB, plan.send)
        across = await ledger.plan(JOB, [later])
        # the runner settles every outcome of its units, the rejections included:
        await ledger.settle_unit(JOB, [*plan.outcomes, *across.outcomes])
        records = [record async for record in ledger.records(JOB)]
    assert plan.send == (first,)
    assert [(o.index, o.status) for o in plan.outcomes] == [(1, OutcomeStatus.REJECTED)]
    assert [(o.index, o.status) for o in across.outcomes] == [(7, OutcomeStatus.REJECTED)]
    assert "more than once" in (across.outcomes[0].reason or "")
    # the first stays in flight (a repeat's rejection never settles it); the repeats'
    # rejections are recorded on their own
    assert sorted((r.index or 0, r.ref, r.outcome) for r in records) == [
        (0, "same", None),
        (1, "same", OutcomeStatus.REJECTED),
        (7, "same", OutcomeStatus.REJECTED),
    ]


async def test_keys_of_refs_and_positions_never_meet(make_ledger: LedgerFactory) -> None:
    by_position = Entry(5, "60123450000", None, "text")
    by_int = Entry(0, "60123450000", 5, "text")
    by_str = Entry(1, "60123450000", "5", "text")
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        plan = await ledger.plan(JOB, [by_position, by_int, by_str])
        await ledger.begin_unit(JOB, plan.send)
        records = [(r.key, r.ref, r.index) async for r in ledger.records(JOB)]
    assert len(plan.send) == 3
    assert sorted(records) == [("i:5", 5, 0), ("p:0000000005", None, 5), ("s:5", "5", 1)]


async def test_a_ref_that_is_neither_str_nor_int_is_rejected(make_ledger: LedgerFactory) -> None:
    odd = Entry(0, "60123450000", ("a", 1), "text")
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        plan = await ledger.plan(JOB, [odd])
    assert plan.send == ()
    assert plan.outcomes[0].status is OutcomeStatus.REJECTED


async def test_outcomes_of_recipients_never_claimed_are_counted_but_claim_nothing(
    make_ledger: LedgerFactory,
) -> None:
    """Recipients still forming when a run ended are ``not_sent`` without a claim: counted
    in the summary, and sent by the next run whatever their content then."""
    entries = sms_entries(2)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.settle_unit(JOB, [e.outcome(OutcomeStatus.NOT_SENT, "ended") for e in entries])
        counted = await ledger.summary(JOB)
        await ledger.close_job(JOB)
        await ledger.open_job(JOB, gateway="isms")
        edited = [entries[0]._replace(content="another text"), entries[1]]
        plan = await ledger.plan(JOB, edited)
    assert counted.outcomes["not_sent"] == 2
    assert counted.total == 2
    assert plan.send == tuple(edited)


async def test_whatsapp_templates_are_fingerprinted_by_code_language_and_params(
    make_ledger: LedgerFactory,
) -> None:
    def template(params: object) -> Entry:
        content = WhatsAppTemplate(to="60123450000", template_code="ship", params=params)  # type: ignore[arg-type]
        return Entry(0, "60123450000", "order-1", content)

    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="whatsapp")
        await ledger.begin_unit(JOB, [template({"param1": "MY-1", "param2": 2})])
        await ledger.settle_unit(JOB, accepted([template(None)]))
        await ledger.close_job(JOB)
        await ledger.open_job(JOB, gateway="whatsapp")
        same = await ledger.plan(JOB, [template({"param2": "2", "param1": "MY-1"})])
        other = await ledger.plan(JOB, [template({"param1": "MY-2", "param2": 2})])
    assert same.outcomes[0].status is OutcomeStatus.ACCEPTED
    assert other.outcomes[0].status is OutcomeStatus.REJECTED


async def test_the_runner_must_open_the_job_first(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        with pytest.raises(LedgerError, match="open_job"):
            await ledger.plan(JOB, sms_entries(1))
        with pytest.raises(LedgerError, match="open_job"):
            await ledger.begin_unit(JOB, sms_entries(1))


async def test_an_outcome_settles_only_the_claim_of_this_run(make_ledger: LedgerFactory) -> None:
    """A stale outcome (say, from a run that lost the job) never overwrites a settled row."""
    entries = sms_entries(1)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.begin_unit(JOB, entries)
        await ledger.settle_unit(JOB, accepted(entries))
        await ledger.settle_unit(JOB, [entries[0].outcome(OutcomeStatus.UNKNOWN, "late")])
        records = [r async for r in ledger.records(JOB)]
    assert [(r.outcome, r.message_id, r.attempts) for r in records] == [
        (OutcomeStatus.ACCEPTED, "m0", 1)
    ]


async def test_a_repeated_ref_stays_rejected_when_the_job_is_run_again(
    make_ledger: LedgerFactory,
) -> None:
    """The same input run twice: the repeat is rejected both times, and counted once."""
    first = Entry(0, "60123450000", "same", Sms(to="60123450000", text="Hi"))
    rows = [first, first._replace(position=1)]
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        plan = await ledger.plan(JOB, rows[:1])
        await ledger.begin_unit(JOB, plan.send)
        await ledger.settle_unit(JOB, accepted(list(plan.send)))
        repeat = await ledger.plan(JOB, rows[1:])
        await ledger.close_job(JOB)
        await ledger.open_job(JOB, gateway="isms")
        again = await ledger.plan(JOB, rows[:1])
        again_repeat = await ledger.plan(JOB, rows[1:])  # another unit: no help from it
        summary = await ledger.summary(JOB)
        records = [(r.ref, r.index, r.outcome) async for r in ledger.records(JOB)]
    assert [o.status for o in repeat.outcomes] == [OutcomeStatus.REJECTED]
    assert again.send == again_repeat.send == ()
    assert [(o.index, o.status) for o in again.outcomes + again_repeat.outcomes] == [
        (0, OutcomeStatus.ACCEPTED),
        (1, OutcomeStatus.REJECTED),
    ]
    assert (summary.total, summary.outcomes["accepted"], summary.outcomes["rejected"]) == (2, 1, 1)
    assert sorted(records, key=lambda r: r[1] or 0) == [
        ("same", 0, OutcomeStatus.ACCEPTED),
        ("same", 1, OutcomeStatus.REJECTED),
    ]


async def test_records_page_through_a_job_larger_than_a_page_in_key_order(
    make_ledger: LedgerFactory,
) -> None:
    """Pages follow each other by key (byte order in every store): nothing is read twice
    or skipped, whatever the keys' kinds and case."""
    refs: list[str | int | None] = [None, 7, "Zed", "alpha", "Ä", "zz"]
    entries = [
        Entry(n, f"6012{n:07d}", refs[n % len(refs)] and f"{refs[n % len(refs)]}{n}", "hi")
        for n in range(2_400)
    ]
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        for start in range(0, len(entries), 500):
            await ledger.begin_unit(JOB, entries[start : start + 500])
        keys = [record.key async for record in ledger.records(JOB)]
    assert len(keys) == len(entries)
    assert keys == sorted(keys, key=lambda key: key.encode())


async def test_a_unit_larger_than_one_statement_is_claimed_and_settled_whole(
    make_ledger: LedgerFactory,
) -> None:
    """Units are written a few hundred parameters at a time: a 250-recipient unit spans
    several statements, and each recipient still lands once, in order, with its outcome;
    a recipient settled but never claimed is counted, and a claim met twice counts twice
    (PostgreSQL refuses one statement that upserts a key twice: such rows go one by one)."""
    entries = sms_entries(250)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        claims = [*entries[:10], entries[7], *entries[10:240]]  # 7 twice, in one statement's rows
        await ledger.begin_unit(JOB, claims)
        outcomes = accepted(entries)  # the last 10 were never claimed
        await ledger.settle_unit(JOB, outcomes)
        records = [r async for r in ledger.records(JOB)]
        summary = await ledger.summary(JOB)
    assert [r.index for r in records] == list(range(250))
    assert [r.message_id for r in records] == [f"m{n}" for n in range(250)]
    assert [r.recipient for r in records] == [e.to for e in entries]
    assert {r.outcome for r in records} == {OutcomeStatus.ACCEPTED}
    assert [r.attempts for r in records[:10]] == [1] * 7 + [2] + [1] * 2
    assert {r.attempts for r in records[240:]} == {0}
    assert all(r.fingerprint is not None for r in records[:240])
    assert all(r.fingerprint is None for r in records[240:])
    assert summary.total == 250


async def test_plan_and_begin_unit_plans_and_claims_what_it_sends_in_one_call(
    make_ledger: LedgerFactory,
) -> None:
    """The runner's one-trip form: what ``plan`` says to send is claimed (in flight, with
    its recorded seqno), what it decides is returned and not claimed again."""
    entries = sms_entries(6)
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="smscommy")
        await ledger.begin_unit(JOB, [e._replace(seqno=f"S{e.position}") for e in entries[:2]])
        await ledger.settle_unit(JOB, accepted(entries[2:4]))  # counted, never claimed
        await ledger.close_job(JOB)  # the run dies with 0 and 1 in flight
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="smscommy")
        one_trip = getattr(ledger, "plan_and_begin_unit")  # noqa: B009 (optional method)
        plan = await one_trip(JOB, entries, resend_unknown=False, expect_reports=True)
        records = {r.index: r async for r in ledger.records(JOB)}
        summary = await ledger.summary(JOB)
    assert [(e.position, e.seqno) for e in plan.send] == [
        (0, "S0"),
        (1, "S1"),
        (2, None),
        (3, None),
        (4, None),
        (5, None),
    ]
    assert plan.outcomes == ()
    assert summary.in_flight == 6
    assert [records[i].attempts for i in range(6)] == [2, 2, 1, 1, 1, 1]
