"""Issue 14, semantics 1-5, through the clients against the sandbox (in process): the
ledger hooked into the one bulk road and the single sends."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from messaging_async import (
    OutcomeStatus,
    OutcomeUnknownError,
    RetryPolicy,
    Sms,
    SqliteLedger,
    ValidationError,
    WhatsAppTemplate,
)
from messaging_async.errors import JobRunningError, MessagingError
from messaging_async.ledger import Entry, Owner
from messaging_async.testing import FakeGateway, Fault

DEAD = Owner("another-host", 4242, 1.0)  # a run elsewhere whose lease has run out


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The journal's calls (worker threads, shielded settles) on both backends."""
    return str(request.param)


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"60123{n:06d}" for n in range(start, start + count)]


def smses(count: int, text: str = "Promo {n}") -> list[Sms]:
    return [Sms(to=to, text=text.format(n=n)) for n, to in enumerate(numbers(count))]


def times_sent(fake: FakeGateway) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in fake.sent:
        counts[message.to] = counts.get(message.to, 0) + 1
    return counts


async def test_job_and_key_need_a_ledger() -> None:
    fake = FakeGateway()
    async with fake.isms_client() as isms, fake.smscommy_client() as my:
        calls: list[Callable[[], Any]] = [
            lambda: isms.send_sms_bulk(smses(1), job="j"),
            lambda: isms.send_sms_classic(numbers(1), "hi", job="j"),
            lambda: isms.send_whatsapp_bulk([], job="j"),
            lambda: my.send_sms_bulk(smses(1), job="j"),
            lambda: my.send_sms_same_text(numbers(1), "hi", job="j"),
            lambda: isms.send_sms("60123000001", "hi", key="k"),
            lambda: isms.send_whatsapp_text("60123000001", "hi", key="k"),
            lambda: isms.send_whatsapp_template("60123000001", "otp", key="k"),
            lambda: isms.send_whatsapp_file("60123000001", "https://x.test/a.pdf", "a", key="k"),
            lambda: my.send_sms("60123000001", "hi", key="k"),
            lambda: my.send_sms_unicode("60123000001", "hi", key="k"),
            lambda: my.send_binary("60123000001", "00ff", key="k"),
            lambda: my.send_barcode("60123000001", "hi", key="k"),
        ]
        for call in calls:
            with pytest.raises(ValidationError):
                await call()
        streams: list[Callable[[], object]] = [
            lambda: isms.stream_sms_bulk(smses(1), job="j"),
            lambda: isms.stream_whatsapp_bulk([], job="j"),
            lambda: my.stream_sms_bulk(smses(1), job="j"),
        ]
        for stream in streams:
            with pytest.raises(ValidationError):
                stream()
    assert fake.sent == []


async def test_a_finished_job_run_again_sends_nothing(tmp_path: Path) -> None:
    fake = FakeGateway()
    async with SqliteLedger(tmp_path / "l.db") as ledger, fake.isms_client(ledger=ledger) as isms:
        first = await isms.send_sms_bulk(smses(120), job="promo")
        again = await isms.send_sms_bulk(smses(120), job="promo")
        summary = await ledger.summary("promo")
    assert first.all_accepted
    assert not any(o.from_ledger for o in first.outcomes)
    assert again.all_accepted
    assert all(o.from_ledger for o in again.outcomes)
    assert [o.message_id for o in again.outcomes] == [o.message_id for o in first.outcomes]
    assert set(times_sent(fake).values()) == {1}
    assert len(fake.sent) == 120
    assert summary.total == 120
    assert summary.outcomes["accepted"] == 120


async def test_resume_sends_not_sent_and_skips_settled(tmp_path: Path) -> None:
    fake = FakeGateway()
    fake.inject(Fault.REFUSE, endpoint="isms_send_json.php", times=1)  # one chunk: not sent
    one_try = {
        "retry": RetryPolicy.no_wait(max_attempts=1),
        "sms_base_urls": ["https://www.isms.com.my"],
        "transport": fake.transport(),
        "max_concurrency": 1,
    }
    async with (
        SqliteLedger(tmp_path / "l.db") as ledger,
        fake.isms_client(ledger=ledger, **one_try) as isms,
    ):
        first = await isms.send_sms_bulk(smses(150), job="promo")
        assert first.counts["not_sent"] == 50
        assert first.counts["accepted"] == 100
        again = await isms.send_sms_bulk(smses(150), job="promo")
    assert again.all_accepted
    resent = [o for o in again.outcomes if not o.from_ledger]
    assert {o.index for o in resent} == {o.index for o in first.not_sent}
    assert set(times_sent(fake).values()) == {1}
    assert len(fake.sent) == 150


async def test_ref_is_the_identity_and_a_repeat_is_rejected(tmp_path: Path) -> None:
    fake = FakeGateway()
    rows = [Sms(to=to, text="hi", ref=f"cust-{n}") for n, to in enumerate(numbers(5))]
    rows.append(Sms(to="60129999999", text="hi", ref="cust-1"))
    async with SqliteLedger(tmp_path / "l.db") as ledger, fake.isms_client(ledger=ledger) as isms:
        report = await isms.send_sms_bulk(rows, job="refs")
        # Reordered input: the refs, not the positions, say who was sent already.
        again = await isms.send_sms_bulk(list(reversed(rows[:5])), job="refs")
    assert report.counts["accepted"] == 5
    assert report.outcomes[5].status is OutcomeStatus.REJECTED
    assert "more than once" in (report.outcomes[5].reason or "")
    assert again.all_accepted
    assert all(o.from_ledger for o in again.outcomes)
    assert len(fake.sent) == 5
    assert not fake.sent_to("60129999999")


async def test_changed_input_is_rejected_and_not_sent(tmp_path: Path) -> None:
    fake = FakeGateway()
    async with SqliteLedger(tmp_path / "l.db") as ledger, fake.isms_client(ledger=ledger) as isms:
        await isms.send_sms_bulk(smses(3), job="j")
        changed = smses(3)
        changed[1] = Sms(to=changed[1].to, text="another text")
        again = await isms.send_sms_bulk(changed, job="j")
    assert again.outcomes[1].status is OutcomeStatus.REJECTED
    assert "input changed" in (again.outcomes[1].reason or "")
    assert len(fake.sent) == 3


async def test_the_claim_is_committed_before_the_request_leaves(tmp_path: Path) -> None:
    """The sandbox, answering, looks into the ledger file: the recipients of the request it
    is answering are already on disk as in flight."""
    fake = FakeGateway()
    path = tmp_path / "l.db"
    seen: list[set[str]] = []
    handle = fake.handle

    def peeking(method: str, path_: str, query: str, body: bytes, content_type: str = "") -> Any:
        with contextlib.closing(sqlite3.connect(path)) as peek:
            rows = peek.execute("SELECT recipient FROM sends WHERE state = 'in_flight'")
            seen.append({row[0] for row in rows})
        return handle(method, path_, query, body, content_type)

    fake.handle = peeking  # type: ignore[method-assign,assignment]
    async with SqliteLedger(path) as ledger, fake.smscommy_client(ledger=ledger) as my:
        await my.send_sms_bulk(smses(4), job="wal", on_outcome=None)
    sent_order = [m.to for m in fake.sent]
    assert len(seen) == 4
    for in_flight, to in zip(seen, sent_order, strict=True):
        assert to in in_flight


async def test_isms_left_in_flight_is_unknown_and_never_resent(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "l.db"
    fake = FakeGateway()
    async with SqliteLedger(path, clock=clock) as dead:  # a run that died mid-unit
        await dead.open_job("j", gateway="isms", owner=DEAD)
        rows = smses(3)
        await dead.begin_unit("j", [Entry(0, rows[0].to, None, rows[0])])
    clock.now += 3600
    async with SqliteLedger(path, clock=clock) as ledger, fake.isms_client(ledger=ledger) as isms:
        report = await isms.send_sms_bulk(rows, job="j")
        again = await isms.send_sms_bulk(rows, job="j")
        forced = await isms.send_sms_bulk(rows, job="j", resend_unknown=True)
    assert report.outcomes[0].status is OutcomeStatus.UNKNOWN
    assert report.outcomes[0].from_ledger
    assert again.outcomes[0].status is OutcomeStatus.UNKNOWN
    assert forced.all_accepted
    assert not forced.outcomes[0].from_ledger
    assert [m.to for m in fake.sent] == [rows[1].to, rows[2].to, rows[0].to]


async def test_smscommy_left_in_flight_is_resent_with_its_seqno(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "l.db"
    fake = FakeGateway()
    rows = smses(2)
    async with SqliteLedger(path, clock=clock) as dead:
        await dead.open_job("j", gateway="smscommy", owner=DEAD)
        await dead.begin_unit(
            "j",
            [
                Entry(0, rows[0].to, None, rows[0], "seqA"),
                Entry(1, rows[1].to, None, rows[1], "seqB"),
            ],
        )
    fake.remember_seqno("seqA")  # the dead run's first request reached the gateway
    clock.now += 3600
    async with SqliteLedger(path, clock=clock) as ledger, fake.smscommy_client(ledger=ledger) as my:
        report = await my.send_sms_bulk(rows, job="j")
    assert report.all_accepted
    assert [o.seqno for o in report.outcomes] == ["seqA", "seqB"]
    assert report.outcomes[0].code == 1718  # the duplicate answer: accepted earlier
    assert [(m.to, m.seqno) for m in fake.sent] == [(rows[1].to, "seqB")]


async def test_a_second_live_run_of_a_job_is_refused(tmp_path: Path) -> None:
    fake = FakeGateway()
    path = tmp_path / "l.db"
    async with SqliteLedger(path) as holder, SqliteLedger(path) as ledger:
        await holder.open_job("j", gateway="isms")  # this process, alive: holds the job
        async with fake.isms_client(ledger=ledger) as isms:
            with pytest.raises(JobRunningError):
                await isms.send_sms_bulk(smses(2), job="j")
            with pytest.raises(JobRunningError):
                async for _ in isms.stream_sms_bulk(smses(2), job="j"):
                    pass
        await holder.close_job("j")
        async with fake.isms_client(ledger=ledger) as isms:
            assert (await isms.send_sms_bulk(smses(2), job="j")).all_accepted
    assert len(fake.sent) == 2


async def test_streams_and_whatsapp_and_no_dr_are_journalled(tmp_path: Path) -> None:
    fake = FakeGateway()
    templates = [WhatsAppTemplate(to=to, template_code="otp", params=["1"]) for to in numbers(3)]
    async with (
        SqliteLedger(tmp_path / "l.db") as ledger,
        fake.isms_client(ledger=ledger) as isms,
        fake.smscommy_client(ledger=ledger) as my,
    ):
        streamed = [o async for o in isms.stream_whatsapp_bulk(templates, job="wa")]
        again = [o async for o in isms.stream_whatsapp_bulk(templates, job="wa")]
        no_dr = await my.send_sms_same_text(numbers(4), "hello", job="nodr")
        classic = await isms.send_sms_classic(numbers(4), "hello", job="classic")
        classic_again = await isms.send_sms_classic(numbers(4), "hello", job="classic")
        summary = await ledger.summary("nodr")
        no_dr_seqnos = [record.seqno async for record in ledger.records("nodr")]
    assert all(o.ok and not o.from_ledger for o in streamed)
    # a NoDR batch's seqno covers the whole batch: one number resent with it would read as
    # accepted, so none is kept (Journal._journalled)
    assert no_dr_seqnos == [None] * 4
    assert all(o.seqno is not None for o in no_dr.outcomes)
    assert all(o.ok and o.from_ledger for o in again)
    assert no_dr.all_accepted
    assert summary.delivery["no_report_expected"] == 4
    assert classic.all_accepted
    assert all(o.from_ledger for o in classic_again.outcomes)
    assert len(fake.sent) == 3 + 4 + 4


async def test_keyed_single_sends_are_idempotent(tmp_path: Path) -> None:
    fake = FakeGateway()
    async with (
        SqliteLedger(tmp_path / "l.db") as ledger,
        fake.isms_client(ledger=ledger) as isms,
        fake.smscommy_client(ledger=ledger) as my,
    ):
        first = await isms.send_sms("60123000001", "OTP 1234", key="otp:1:1")
        second = await isms.send_sms("60123000001", "OTP 1234", key="otp:1:1")
        with pytest.raises(MessagingError):
            await isms.send_sms("60123000001", "OTP 9999", key="otp:1:1")  # content changed
        wa = await isms.send_whatsapp_template("60123000002", "otp", params=["1"], key="wa:1")
        wa_again = await isms.send_whatsapp_template("60123000002", "otp", params=["1"], key="wa:1")
        my_first = await my.send_sms("60123000003", "OTP 5678", key="my:1")
        my_again = await my.send_sms("60123000003", "OTP 5678", key="my:1")
    assert first.ok
    assert not first.from_ledger
    assert second.from_ledger
    assert second.message_id == first.message_id
    assert wa_again.from_ledger
    assert wa_again.message_id == wa.message_id
    assert my_again.from_ledger
    assert my_again.message_id == my_first.message_id
    assert len(fake.sent) == 3


async def test_a_keyed_send_left_in_flight_by_a_dead_process(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "l.db"
    fake = FakeGateway()
    async with SqliteLedger(path, clock=clock) as dead:
        entry = Entry(0, "60123000001", None, Sms(to="60123000001", text="OTP 1"))
        await dead.claim_key("otp", entry, gateway="isms", owner=DEAD)
        my_entry = Entry(0, "60123000002", None, Sms(to="60123000002", text="OTP 2"), "seqK")
        await dead.claim_key("my-otp", my_entry, gateway="smscommy", owner=DEAD)
    clock.now += 3600
    async with (
        SqliteLedger(path, clock=clock) as ledger,
        fake.isms_client(ledger=ledger) as isms,
        fake.smscommy_client(ledger=ledger) as my,
    ):
        with pytest.raises(OutcomeUnknownError) as caught:
            await isms.send_sms("60123000001", "OTP 1", key="otp")
        resent = await my.send_sms("60123000002", "OTP 2", key="my-otp")
    assert caught.value.outcome is not None
    assert caught.value.outcome.from_ledger
    assert resent.ok
    assert resent.seqno == "seqK"
    assert [(m.to, m.seqno) for m in fake.sent] == [("60123000002", "seqK")]


async def test_a_run_stopped_by_a_fatal_answer_resumes_where_it_stopped(tmp_path: Path) -> None:
    """Credits run out mid-job: the accepted chunks and the refused one keep their recorded
    outcomes; what the stop left not sent goes with the next run (the stop is decided per
    unit after the ledger's look-up, never over a recorded outcome)."""
    fake = FakeGateway(isms_credits=100)
    async with SqliteLedger(tmp_path / "l.db") as ledger:
        async with fake.isms_client(ledger=ledger, max_concurrency=1) as isms:
            first = await isms.send_sms_bulk(smses(250), job="j")
        fake.isms_credits += 1000
        async with fake.isms_client(ledger=ledger, max_concurrency=1) as isms:
            again = await isms.send_sms_bulk(smses(250), job="j")
    assert first.stopped_by is not None
    assert first.counts == {"accepted": 100, "rejected": 50, "not_sent": 100, "unknown": 0}
    assert again.counts == {"accepted": 200, "rejected": 50, "not_sent": 0, "unknown": 0}
    decided = {o.index for o in again.outcomes if o.from_ledger}
    assert decided == {o.index for o in first.outcomes if o.status != "not_sent"}
    assert set(times_sent(fake).values()) == {1}
    assert len(fake.sent) == 200


async def test_a_fatal_answer_never_hides_an_outcome_the_ledger_holds(tmp_path: Path) -> None:
    """Run 1: the first chunk is not sent, the next two accepted. Run 2: the first chunk
    meets a fatal answer; the two accepted chunks after it still report their recorded
    outcomes, not ``not_sent``."""
    fake = FakeGateway(isms_credits=100)
    one_try = {
        "retry": RetryPolicy.no_wait(max_attempts=1),
        "sms_base_urls": ["https://www.isms.com.my"],
        "transport": fake.transport(),
        "max_concurrency": 1,
    }
    fake.inject(Fault.REFUSE, endpoint="isms_send_json.php", times=1)
    async with (
        SqliteLedger(tmp_path / "l.db") as ledger,
        fake.isms_client(ledger=ledger, **one_try) as isms,
    ):
        first = await isms.send_sms_bulk(smses(150), job="j")
        again = await isms.send_sms_bulk(smses(150), job="j")  # no credits left
    assert first.counts == {"accepted": 100, "not_sent": 50, "rejected": 0, "unknown": 0}
    assert again.stopped_by is not None
    assert [o.status for o in again.outcomes[:50]] == [OutcomeStatus.REJECTED] * 50
    assert all(o.ok and o.from_ledger for o in again.outcomes[50:])
