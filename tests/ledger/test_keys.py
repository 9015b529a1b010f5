"""Idempotent single sends (``key=``): a key sends once; what it became is remembered."""

from __future__ import annotations

import pytest
from attrs import evolve

from messaging_async import OutcomeStatus, Sms, ValidationError
from messaging_async.ledger import SEQNO_MEMORY, Entry, Owner

from .conftest import Clock, LedgerFactory

pytestmark = pytest.mark.anyio

ELSEWHERE = Owner("another-machine", 1, 1.0)


def otp(code: str = "123456", seqno: str | None = None) -> Entry:
    return Entry(0, "60123456789", None, Sms(to="60123456789", text=f"OTP {code}"), seqno)


async def test_an_accepted_key_returns_its_outcome_without_sending(
    make_ledger: LedgerFactory,
) -> None:
    async with make_ledger() as ledger:
        first = await ledger.claim_key("otp:7:1", otp(), gateway="isms")
        assert first.send == (otp(),)
        sent = evolve(otp().outcome(OutcomeStatus.ACCEPTED, "ok"), message_id="id-1", code=2000)
        await ledger.settle_key("otp:7:1", sent)
        again = await ledger.claim_key("otp:7:1", otp(), gateway="isms")
        found = await ledger.find(message_id="id-1", gateway="isms")
    assert again.send == ()
    assert [(o.status, o.message_id) for o in again.outcomes] == [(OutcomeStatus.ACCEPTED, "id-1")]
    assert [(r.job, r.key, r.ref, r.index) for r in found] == [(None, "otp:7:1", None, None)]


async def test_a_key_reused_for_other_content_is_rejected(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        await ledger.claim_key("otp:7:1", otp("111111"), gateway="isms")
        await ledger.settle_key("otp:7:1", otp().outcome(OutcomeStatus.NOT_SENT, "refused"))
        other = await ledger.claim_key("otp:7:1", otp("222222"), gateway="isms")
    assert other.send == ()
    assert other.outcomes[0].status is OutcomeStatus.REJECTED
    assert "input changed" in (other.outcomes[0].reason or "")


async def test_a_key_not_sent_is_sent_again(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        await ledger.claim_key("k", otp(), gateway="isms")
        await ledger.settle_key("k", otp().outcome(OutcomeStatus.NOT_SENT, "refused"))
        again = await ledger.claim_key("k", otp(), gateway="isms")
    assert again.send == (otp(),)


async def test_a_key_in_flight_in_a_live_process_is_unknown_to_a_concurrent_call(
    make_ledger: LedgerFactory,
) -> None:
    """A web framework retrying a request while the first attempt is still sending."""
    async with make_ledger() as ledger, make_ledger() as other_worker:
        await ledger.claim_key("k", otp(), gateway="isms")
        same_process = await ledger.claim_key("k", otp(), gateway="isms")
        other = await other_worker.claim_key("k", otp(), gateway="isms")
        summary_outcome = await ledger.find(message_id="none", gateway="isms")
    for plan in (same_process, other):
        assert plan.send == ()
        assert plan.outcomes[0].status is OutcomeStatus.UNKNOWN
        assert "another live process" in (plan.outcomes[0].reason or "")
    assert summary_outcome == ()


async def test_a_key_left_in_flight_by_a_dead_process_is_unknown_and_stays_so(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    async with make_ledger(lease_seconds=60) as crashed:
        await crashed.claim_key("k", otp(), gateway="isms")
    # a process elsewhere claimed it; it went silent past the lease
    async with make_ledger(lease_seconds=60) as ledger:
        await ledger.claim_key("far", otp(), gateway="isms", owner=ELSEWHERE)
        clock.advance(59)
        held = await ledger.claim_key("far", otp(), gateway="isms")
        clock.advance(2)
        local = await ledger.claim_key("k", otp(), gateway="isms")
        remote = await ledger.claim_key("far", otp(), gateway="isms")
        later = await ledger.claim_key("k", otp(), gateway="isms")
        retried = await ledger.claim_key("k", otp(), gateway="isms", resend_unknown=True)
    assert "another live process" in (held.outcomes[0].reason or "")
    for plan in (local, remote, later):
        assert plan.send == ()
        assert plan.outcomes[0].status is OutcomeStatus.UNKNOWN
    assert retried.send == (otp(),)


async def test_a_dead_keyed_smscommy_send_is_resent_with_its_seqno(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    async with make_ledger() as ledger:
        await ledger.claim_key("k", otp(seqno="seq-1"), gateway="smscommy", owner=ELSEWHERE)
        clock.advance(3600)
        plan = await ledger.claim_key("k", otp(seqno="seq-2"), gateway="smscommy")
        clock.advance(SEQNO_MEMORY - 1800)  # 23.5 hours after the seqno's first use
        too_late = await ledger.claim_key("k", otp(seqno="seq-3"), gateway="smscommy")
    assert [e.seqno for e in plan.send] == ["seq-1"]
    assert [o.status for o in too_late.outcomes] == [OutcomeStatus.UNKNOWN]


async def test_keys_and_jobs_do_not_share_a_namespace(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        await ledger.open_job("p:0", gateway="isms")
        plan = await ledger.plan("p:0", [otp()])
        await ledger.begin_unit("p:0", plan.send)
        keyed = await ledger.claim_key("p:0", otp(), gateway="isms")
    assert keyed.send == (otp(),)


async def test_an_empty_key_is_refused(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        with pytest.raises(ValidationError):
            await ledger.claim_key("", otp(), gateway="isms")
