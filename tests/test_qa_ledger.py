"""Adversarial checks of the ledger's identity and resume rules (issue 14, semantics 1-3)
on odd input, through the public API (``SqliteLedger`` and the clients against the
in-process sandbox), after the performance passes rewrote the hot path (lean rows bound
with literals and SQLite's ``printf``, batched fingerprints, the resume read-ahead)."""

from __future__ import annotations

import random
import string
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from messaging_async import (
    OutcomeStatus,
    PostgresLedger,
    Sms,
    SqliteLedger,
    ValidationError,
    WhatsAppTemplate,
)
from messaging_async.errors import (
    GatewayError,
    InsufficientCreditsError,
    InvalidNumberError,
    LedgerError,
)
from messaging_async.models import Outcome
from messaging_async.testing import FakeGateway, Fault

from .pgcluster import Cluster

pytestmark = pytest.mark.anyio

LedgerMaker = Callable[..., Any]


@pytest.fixture(scope="module")
def qa_pg_dsn(pg_cluster: Cluster) -> str:
    """A database whose text sorts in English order, not byte order (as a production one
    may): the ledger's key ranges must not depend on it."""
    return pg_cluster.create_database(icu_locale="en-US")


@pytest.fixture(params=["sqlite", "postgres"])
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerMaker:
    """Opens a ``SqliteLedger`` or a ``PostgresLedger`` (a schema of its own per test)."""
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("qa_pg_dsn")
        schema = "qa_" + uuid.uuid4().hex[:16]
        return lambda **options: PostgresLedger(dsn, schema=schema, **options)
    return lambda **options: SqliteLedger(tmp_path / "l.db", **options)


ODD_TEXTS = [
    "it's -- a test",
    "100% off; %s %d %%",
    "what? ?1 :name @x $1",
    "emoji 🎉🇲🇾 and \u00e9\u0301",
    "'); DROP TABLE sends; --",
    "a\x1fseparator",
]


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"60123{n:06d}" for n in range(start, start + count)]


def times_sent(fake: FakeGateway) -> Counter[str]:
    return Counter(message.to for message in fake.sent)


async def _records(ledger: SqliteLedger, job: str) -> list[Any]:
    return [record async for record in ledger.records(job)]


async def test_refs_that_print_alike_are_different_recipients(make_ledger: LedgerMaker) -> None:
    """``1`` and ``"1"`` (and position 1) are three keys: none is taken for another on a
    first run or on a resume, in one unit or across units."""
    rows = [
        Sms(to=numbers(1, 0)[0], text="a", ref=1),
        Sms(to=numbers(1, 1)[0], text="b", ref="1"),
        Sms(to=numbers(1, 2)[0], text="c"),  # position 2
        Sms(to=numbers(1, 3)[0], text="d", ref=2),  # an int ref equal to a position
        Sms(to=numbers(1, 4)[0], text="e", ref="2"),
    ]
    fake = FakeGateway()
    async with make_ledger() as ledger, fake.isms_client(ledger=ledger) as isms:
        first = await isms.send_sms_bulk(rows, job="alike")
        again = await isms.send_sms_bulk(list(reversed(rows[:2])) + rows[2:], job="alike")
        records = await _records(ledger, "alike")
    assert first.all_accepted, [o.reason for o in first.outcomes]
    assert times_sent(fake) == Counter(numbers(5))
    by_ref = {(type(o.ref), o.ref): o.message_id for o in first.outcomes}
    assert len(set(by_ref.values())) == 5
    # refs 1 and "1" swapped places: each keeps its own recorded message
    assert all(o.from_ledger and o.status is OutcomeStatus.ACCEPTED for o in again.outcomes)
    assert {(type(o.ref), o.ref): o.message_id for o in again.outcomes} == by_ref
    assert sorted((type(r.ref).__name__, str(r.ref)) for r in records if r.ref is not None) == [
        ("int", "1"),
        ("int", "2"),
        ("str", "1"),
        ("str", "2"),
    ]


@pytest.mark.parametrize("store_text", [False, True])
async def test_odd_refs_and_texts_round_trip_and_resume(
    make_ledger: LedgerMaker, tmp_path: Path, store_text: bool
) -> None:
    """Refs with quotes, ``%``, unicode and 1,024 characters, texts with SQL and printf
    syntax: stored as given, resumed from the ledger, nothing sent twice."""
    refs: list[str | int] = [
        "o'brien",
        'say "hi"',
        "50%s%d%%",
        "ünï©ødé 🎉",
        "x" * 1024,  # the longest a ledger keeps (``MAX_KEY_BYTES``)
        "p:0000000003",  # looks like a positional key
        "s:p:1",
        -7,
        2**62,
    ]
    rows = [
        Sms(to=to, text=ODD_TEXTS[n % len(ODD_TEXTS)], ref=ref)
        for n, (to, ref) in enumerate(zip(numbers(len(refs)), refs, strict=True))
    ]
    fake = FakeGateway()
    ledger_file = tmp_path / "l.db"
    async with (
        make_ledger(store_text=store_text) as ledger,
        fake.isms_client(ledger=ledger) as isms,
    ):
        first = await isms.send_sms_bulk(rows, job="odd '%s' job --")
        again = await isms.send_sms_bulk(rows, job="odd '%s' job --")
        records = await _records(ledger, "odd '%s' job --")
        summary = await ledger.summary("odd '%s' job --")
    assert first.all_accepted, [o.reason for o in first.outcomes]
    assert [o.ref for o in first.outcomes] == refs
    assert all(o.from_ledger for o in again.outcomes)
    assert [o.message_id for o in again.outcomes] == [o.message_id for o in first.outcomes]
    assert [o.ref for o in again.outcomes] == refs
    assert times_sent(fake) == Counter(numbers(len(refs)))
    assert sorted(map(repr, (r.ref for r in records))) == sorted(map(repr, refs))
    texts = {r.ref: r.text for r in records}
    for row in rows:
        assert texts[row.ref] == (row.text if store_text else None)
    assert summary.total == len(refs)
    assert summary.outcomes["accepted"] == len(refs)
    if not store_text and ledger_file.exists():  # SQLite: no text anywhere in the file
        assert not any(text.encode() in ledger_file.read_bytes() for text in ODD_TEXTS)


async def test_a_unit_mixing_keyed_and_positional_recipients(make_ledger: LedgerMaker) -> None:
    """In one unit: refs, no refs, an int ref equal to another's position; then a resume
    with one positional text changed and one ref's text changed: exactly those two are
    "input changed", nothing else is sent again."""
    rows = [
        Sms(to=to, text=f"t{n}", ref=(n if n % 3 == 0 else f"r{n}" if n % 3 == 1 else None))
        for n, to in enumerate(numbers(120))
    ]
    fake = FakeGateway()
    async with make_ledger() as ledger, fake.isms_client(ledger=ledger) as isms:
        first = await isms.send_sms_bulk(rows, job="mixed")
        changed = list(rows)
        changed[5] = Sms(to=rows[5].to, text="new", ref=rows[5].ref)  # positional (5 % 3 == 2)
        changed[7] = Sms(to=rows[7].to, text="new", ref=rows[7].ref)  # ref "r7"
        again = await isms.send_sms_bulk(changed, job="mixed")
        summary = await ledger.summary("mixed")
    assert first.all_accepted
    assert len(fake.sent) == 120
    rejected = [o.index for o in again.outcomes if o.status is OutcomeStatus.REJECTED]
    assert rejected == [5, 7]
    assert all("input changed" in (again.outcomes[i].reason or "") for i in rejected)
    assert all(o.from_ledger for o in again.outcomes)
    assert summary.total == 120
    assert summary.outcomes["accepted"] == 120  # the rejection is said, not recorded over


async def test_a_ref_repeated_within_and_across_units(make_ledger: LedgerMaker) -> None:
    """The first occurrence is sent, later ones ``rejected`` — in the same unit and 100
    positions later (another unit); a resume says the same and sends nothing."""
    rows = [Sms(to=to, text="x", ref=f"r{n}") for n, to in enumerate(numbers(150))]
    rows[3] = Sms(to=numbers(1, 900)[0], text="x", ref="r1")  # same unit as r1
    rows[130] = Sms(to=numbers(1, 901)[0], text="x", ref="r1")  # a later unit
    rows[131] = Sms(to=numbers(1, 902)[0], text="x", ref=1)  # int 1: not a repeat of "r1"
    fake = FakeGateway()
    async with make_ledger() as ledger, fake.isms_client(ledger=ledger) as isms:
        first = await isms.send_sms_bulk(rows, job="rep")
        again = await isms.send_sms_bulk(rows, job="rep")
        summary = await ledger.summary("rep")
    for run in (first, again):
        rejected = [o.index for o in run.outcomes if o.status is OutcomeStatus.REJECTED]
        assert rejected == [3, 130], [o.reason for o in run.outcomes if o.index in (3, 130)]
    assert all(o.from_ledger for o in again.outcomes if o.index not in (3, 130))
    assert len(fake.sent) == 148
    assert numbers(1, 900)[0] not in times_sent(fake)
    assert summary.outcomes["accepted"] == 148
    assert summary.outcomes["rejected"] == 2


@pytest.mark.parametrize("where", [0, 49, 50, 511, 512, 599])
async def test_input_changed_at_one_position_is_rejected_and_not_sent(
    tmp_path: Path, where: int
) -> None:
    """A resumed positional job whose item at ``where`` (a unit's and the read-ahead's
    first window's edges) has another text, or another number: that one is rejected
    "input changed" and nothing at all is sent."""
    rows = [Sms(to=to, text=f"t{n}") for n, to in enumerate(numbers(600))]
    fake = FakeGateway()
    async with SqliteLedger(tmp_path / "l.db") as ledger, fake.isms_client(ledger=ledger) as isms:
        await isms.send_sms_bulk(rows, job="chg")
        for changed_row in (
            Sms(to=rows[where].to, text="another"),
            Sms(to=numbers(1, 9999)[0], text=rows[where].text),
        ):
            changed = list(rows)
            changed[where] = changed_row
            again = await isms.send_sms_bulk(changed, job="chg")
            outcome = again.outcomes[where]
            assert outcome.status is OutcomeStatus.REJECTED
            assert "input changed" in (outcome.reason or "")
            others = [o for o in again.outcomes if o.index != where]
            assert all(o.status is OutcomeStatus.ACCEPTED and o.from_ledger for o in others)
    assert len(fake.sent) == 600


async def test_changed_order_without_refs_is_input_changed_with_refs_is_a_resume(
    make_ledger: LedgerMaker,
) -> None:
    rows = [Sms(to=to, text="same") for to in numbers(60)]
    keyed = [Sms(to=to, text="same", ref=to) for to in numbers(60, 100)]
    fake = FakeGateway()
    async with make_ledger() as ledger, fake.isms_client(ledger=ledger) as isms:
        await isms.send_sms_bulk(rows, job="order")
        swapped = [rows[1], rows[0], *rows[2:]]
        again = await isms.send_sms_bulk(swapped, job="order")
        first_keyed = await isms.send_sms_bulk(keyed, job="order-keyed")
        reordered = await isms.send_sms_bulk(keyed[::-1], job="order-keyed")
    assert [o.index for o in again.outcomes if o.status is OutcomeStatus.REJECTED] == [0, 1]
    assert all(o.from_ledger for o in reordered.outcomes)
    ids = {o.ref: o.message_id for o in first_keyed.outcomes}
    assert {o.ref: o.message_id for o in reordered.outcomes} == ids
    assert len(fake.sent) == 120


async def test_whatsapp_bulk_resume_and_changed_params(make_ledger: LedgerMaker) -> None:
    """Template params that differ only in type print alike (``1`` / ``"1"``) and are sent
    alike: a resume keeps them; a changed param is "input changed"."""
    rows = [
        WhatsAppTemplate(to=to, template_code="otp", params=[n, "x'%s--"])
        for n, to in enumerate(numbers(30))
    ]
    fake = FakeGateway()
    async with make_ledger() as ledger, fake.isms_client(ledger=ledger) as isms:
        first = await isms.send_whatsapp_bulk(rows, job="wa")
        same = [
            WhatsAppTemplate(to=r.to, template_code="otp", params=[str(n), "x'%s--"])
            for n, r in enumerate(rows)
        ]
        again = await isms.send_whatsapp_bulk(same, job="wa")
        changed = list(rows)
        changed[29] = WhatsAppTemplate(to=rows[29].to, template_code="otp", params=[29, "y"])
        third = await isms.send_whatsapp_bulk(changed, job="wa")
    assert first.all_accepted, [o.reason for o in first.outcomes]
    assert all(o.from_ledger for o in again.outcomes)
    assert third.outcomes[29].status is OutcomeStatus.REJECTED
    assert "input changed" in (third.outcomes[29].reason or "")
    assert len(fake.sent) == 30


async def test_smscommy_caller_and_generated_seqnos_resume(make_ledger: LedgerMaker) -> None:
    """sms.com.my with some caller seqnos (kept on the record) and some generated: a
    resume sends nothing and gives back each recorded seqno; NoDR too."""
    rows = [
        Sms(to=to, text=ODD_TEXTS[n % len(ODD_TEXTS)], seqno=(f"q{n}" if n % 2 else None))
        for n, to in enumerate(numbers(40))
    ]
    fake = FakeGateway()
    async with (
        make_ledger() as ledger,
        fake.smscommy_client(ledger=ledger) as my,
    ):
        first = await my.send_sms_bulk(rows, job="my")
        again = await my.send_sms_bulk(rows, job="my")
        nodr = await my.send_sms_same_text(numbers(70, 500), "100% 'off' --", job="nodr")
        nodr_again = await my.send_sms_same_text(numbers(70, 500), "100% 'off' --", job="nodr")
        nodr_summary = await ledger.summary("nodr")
    assert first.all_accepted, [o.reason for o in first.outcomes]
    assert [o.seqno for o in first.outcomes][1::2] == [f"q{n}" for n in range(1, 40, 2)]
    assert all(o.seqno for o in first.outcomes)
    assert all(o.from_ledger for o in again.outcomes)
    assert [o.seqno for o in again.outcomes] == [o.seqno for o in first.outcomes]
    assert [o.message_id for o in again.outcomes] == [o.message_id for o in first.outcomes]
    assert nodr.all_accepted
    assert all(o.from_ledger for o in nodr_again.outcomes)
    assert nodr_summary.delivery["no_report_expected"] == 70
    assert times_sent(fake) == Counter(numbers(40) + numbers(70, 500))


def _final(outcomes: list[Outcome]) -> dict[int, Outcome]:
    return {o.index: o for o in outcomes}


async def _cancelled_until_done(
    send: Any, rows: list[Any], job: str, fake: FakeGateway, marks: list[int]
) -> tuple[Any, int]:
    """Runs ``send(rows, job=job)`` and cancels it once the gateway holds ``mark``
    messages, for each mark (a point in the blast, not a time: the machine's load does
    not move it); then runs it to its end. Returns the last report and the runs cut."""
    cut = 0
    for mark in marks:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_at, fake, mark, scope)
                await send(rows, job=job)
                group.cancel_scope.cancel()
        cut += scope.cancelled_caught
    return await send(rows, job=job), cut


async def _cancel_at(fake: FakeGateway, mark: int, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` once the gateway accepted ``mark`` messages (the sandbox has no
    event to wait on: polled)."""
    while len(fake.sent) < mark:  # noqa: ASYNC110
        await anyio.sleep(0.001)
    scope.cancel()


def _reconcile(report: Any, summary: Any, fake: FakeGateway, count: int) -> Counter[str]:
    """Every recipient exactly one final outcome; an accepted one in the gateway's records
    exactly once under its message id; an unknown at most once; nothing else sent; the
    summary counts what the final report says."""
    outcomes = list(report.outcomes)
    assert sorted(o.index for o in outcomes) == list(range(count))
    sent = times_sent(fake)
    ids = {m.message_id: m.to for m in fake.sent}
    statuses: Counter[str] = Counter()
    for outcome in outcomes:
        statuses[outcome.status.value] += 1
        if outcome.status is OutcomeStatus.ACCEPTED:
            assert sent[outcome.to] == 1, outcome
            # sms.com.my's 1718 ("that seqno was accepted earlier") comes with no id
            assert outcome.message_id is None or ids[outcome.message_id] == outcome.to
        elif outcome.status is OutcomeStatus.UNKNOWN:
            assert sent[outcome.to] <= 1
        else:
            assert sent[outcome.to] == 0, outcome
    assert summary.total == count
    assert summary.in_flight == 0
    assert {k: v for k, v in summary.outcomes.items() if v} == dict(statuses)
    return statuses


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_10300_recipient_isms_job_cancelled_at_random_points(tmp_path: Path) -> None:
    """Cancelled at seven random points (a fixed seed) and run again until done:
    every recipient one final outcome, each accepted one sent exactly once, unknowns only
    from cancels, the summary equal to the last report; the resumes cross the read-ahead's
    windows (512, 2,048, 8,192) and units."""
    count = 10_300
    rows = [Sms(to=to, text=f"Promo {n}") for n, to in enumerate(numbers(count))]
    marks = sorted(random.Random(1414).sample(range(1, count), 7))
    fake = FakeGateway()
    fake.inject(Fault.SLOW, times=None, delay=0.05)  # recorded at once, answered later
    async with SqliteLedger(tmp_path / "l.db") as ledger, fake.isms_client(ledger=ledger) as isms:
        report, cut = await _cancelled_until_done(isms.send_sms_bulk, rows, "big", fake, marks)
        summary = await ledger.summary("big")
        again = await isms.send_sms_bulk(rows, job="big")
    assert cut == len(marks)
    statuses = _reconcile(report, summary, fake, count)
    assert statuses["accepted"] + statuses["unknown"] == count
    assert statuses["unknown"] <= cut * 50 * 10  # at most the units in flight at the cuts
    assert all(o.from_ledger for o in again.outcomes)
    assert [o.status for o in again.outcomes] == [o.status for o in report.outcomes]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_smscommy_job_cancelled_at_random_points_ends_all_accepted_once(
    tmp_path: Path,
) -> None:
    """sms.com.my re-sends what a cancel left in flight with its seqno: every recipient
    ends ``accepted``, each in the gateway's records exactly once."""
    count = 1_500
    rows = [Sms(to=to, text=f"Promo {n}") for n, to in enumerate(numbers(count))]
    marks = sorted(random.Random(1718).sample(range(1, count), 5))
    fake = FakeGateway()
    fake.inject(Fault.SLOW, times=None, delay=0.02)  # recorded at once, answered later
    async with (
        SqliteLedger(tmp_path / "l.db") as ledger,
        fake.smscommy_client(ledger=ledger) as my,
    ):
        report, cut = await _cancelled_until_done(my.send_sms_bulk, rows, "big-my", fake, marks)
        summary = await ledger.summary("big-my")
    assert cut == len(marks)
    statuses = _reconcile(report, summary, fake, count)
    assert statuses == Counter(accepted=count)


async def test_a_resume_across_the_read_ahead_trips_and_a_gap(tmp_path: Path) -> None:
    """A resumed job reads ahead 512, then 2,048, then 8,192 positions a trip (the third
    trip ends at 10,752). Changes on both sides of those edges are "input changed"; a
    number written another way there is still the recorded recipient; a gap of never
    settled positions (invalid the first time) hands over to the usual reading, which
    still gives everything after it its recorded outcome; and nothing is sent twice."""
    count = 11_000
    rows = [Sms(to=to, text=f"t{n}") for n, to in enumerate(numbers(count))]
    first_input = list(rows)
    gap = range(3_000, 3_700)
    for n in gap:
        first_input[n] = Sms(to="not a number", text=f"t{n}")
    fake = FakeGateway()
    async with SqliteLedger(tmp_path / "l.db") as ledger, fake.isms_client(ledger=ledger) as isms:
        first = await isms.send_sms_bulk(first_input, job="edges")
        changed = [*rows, *(Sms(to=to, text="late") for to in numbers(200, 20_000))]
        for n in (511, 512, 2_559, 2_560, 10_751, 10_752, 10_999):
            changed[n] = Sms(to=rows[n].to, text="changed")
        for n in (8_191, 8_192):
            changed[n] = Sms(to="+" + rows[n].to, text=rows[n].text)
        again = await isms.send_sms_bulk(changed, job="edges")
        summary = await ledger.summary("edges")
    assert first.counts["rejected"] == len(gap)
    outcomes = {o.index: o for o in again.outcomes}
    assert len(outcomes) == len(changed)
    for n in (511, 512, 2_559, 2_560, 10_751, 10_752, 10_999):
        assert outcomes[n].status is OutcomeStatus.REJECTED, n
        assert "input changed" in (outcomes[n].reason or "")
    for n in (8_191, 8_192, 0, 3_700, 10_750):
        assert outcomes[n].from_ledger, n
        assert outcomes[n].message_id == first.outcomes[n].message_id
    sent_now = [o.index for o in again.outcomes if not o.from_ledger]
    assert sent_now == [*gap, *range(count, count + 200)]
    assert times_sent(fake) == Counter(n for n in numbers(count) + numbers(200, 20_000))
    assert summary.total == count + 200
    assert summary.outcomes["accepted"] == count + 200


async def test_a_key_reused_for_another_message_is_a_validation_error(
    make_ledger: LedgerMaker,
) -> None:
    """``key=`` names one message: used again for another number or text, nothing is sent
    and the caller gets a ``ValidationError`` on ``key`` — not an ``UnexpectedAnswerError``
    (no gateway answered anything), and not a message about jobs."""
    fake = FakeGateway()
    async with (
        make_ledger() as ledger,
        fake.isms_client(ledger=ledger) as isms,
        fake.smscommy_client(ledger=ledger) as my,
    ):
        to, other = numbers(2)
        await isms.send_sms(to, "Your OTP is 111111", key="otp:1")
        await fake.receive_whatsapp(to, "hi")  # opens the 24-hour window for texts
        await isms.send_whatsapp_text(to, "hello", key="wa:1")
        await my.send_sms(to, "Your OTP is 333333", key="otp:my")
        reused: list[Any] = [
            lambda: isms.send_sms(to, "Your OTP is 222222", key="otp:1"),
            lambda: isms.send_sms(other, "Your OTP is 111111", key="otp:1"),
            lambda: isms.send_whatsapp_text(to, "bye", key="wa:1"),
            lambda: my.send_sms(to, "Your OTP is 444444", key="otp:my"),
        ]
        for send in reused:
            with pytest.raises(ValidationError, match="another message") as caught:
                await send()
            assert caught.value.field == "key"
            assert "job" not in str(caught.value)
            assert not any(otp in str(caught.value) for otp in ("111111", "222222", "444444"))
        again = await isms.send_sms(to, "Your OTP is 111111", key="otp:1")  # the same: fine
    assert again.from_ledger
    assert len(fake.sent) == 3


def _random_text(length: int, seed: int) -> str:
    """Text that does not compress (a long repeated letter would fit an index)."""
    rnd = random.Random(seed)
    return "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(length))


async def test_a_ref_too_long_to_index_is_that_recipient_rejected_on_every_store(
    make_ledger: LedgerMaker,
) -> None:
    """A ref (or an int) whose key is longer than the ledger keeps (1,024 bytes: a
    PostgreSQL index entry cannot hold 6,000 random characters) is that recipient
    ``rejected``, saying why, on SQLite and PostgreSQL alike; the others are sent — one odd
    ref never stops the blast with a ledger error."""
    long_ref = _random_text(6_000, 5)
    rows = [
        Sms(to=numbers(1, 0)[0], text="a", ref=long_ref),
        Sms(to=numbers(1, 1)[0], text="b", ref=10**1100),
        Sms(to=numbers(1, 4)[0], text="e", ref=-(10**5000)),  # past Python's 4,300 digits
        Sms(to=numbers(1, 2)[0], text="c", ref="é" * 512),  # 1,024 bytes: kept
        Sms(to=numbers(1, 3)[0], text="d"),
    ]
    fake = FakeGateway()
    async with make_ledger() as ledger, fake.isms_client(ledger=ledger) as isms:
        report = await isms.send_sms_bulk(rows, job="long-refs")
        again = await isms.send_sms_bulk(rows, job="long-refs")
        with pytest.raises(ValidationError, match="1,024 bytes") as caught:
            await isms.send_sms(numbers(1, 5)[0], "x", key=long_ref)
    assert caught.value.field == "key"
    statuses = [o.status.value for o in report.outcomes]
    assert statuses == ["rejected", "rejected", "rejected", "accepted", "accepted"]
    assert "1,024 bytes" in (report.outcomes[0].reason or "")
    assert [o.status.value for o in again.outcomes] == [o.status.value for o in report.outcomes]
    assert sorted(m.to for m in fake.sent) == numbers(2, 2)


async def test_a_ref_the_ledger_cannot_key_is_counted_in_the_summary_once(
    make_ledger: LedgerMaker,
) -> None:
    """A recipient refused for its ref (a float, a ref too long to index) is ``rejected``
    in the report and counted in the job's summary, once however often the job is run:
    its rejection is kept under a key of its own (its position), as a repeated ref's is."""
    rows = [
        Sms(to=numbers(1, 0)[0], text="a", ref=1.5),
        Sms(to=numbers(1, 1)[0], text="b", ref="x" * 2_000),
        Sms(to=numbers(1, 2)[0], text="c", ref="kept"),
        Sms(to=numbers(1, 3)[0], text="d", ref=7),
    ]
    fake = FakeGateway()
    async with make_ledger() as ledger, fake.isms_client(ledger=ledger) as isms:
        for _ in range(3):
            report = await isms.send_sms_bulk(rows, job="odd-refs")
            assert [o.status.value for o in report.outcomes] == [
                "rejected",
                "rejected",
                "accepted",
                "accepted",
            ]
        summary = await ledger.summary("odd-refs")
        records = [r async for r in ledger.records("odd-refs", outcome="rejected")]
    assert summary.total == len(rows)
    assert summary.outcomes["rejected"] == 2
    assert summary.outcomes["accepted"] == 2
    assert sorted(r.recipient for r in records) == numbers(2, 0)
    assert {r.reason for r in records} == {report.outcomes[0].reason}
    assert len(fake.sent) == 2


async def test_a_postgresql_refusal_is_not_called_a_lost_connection(qa_pg_dsn: str) -> None:
    """PostgreSQL refusing a statement (here: a 6,000-character random job name, too long
    for its index) on a live connection is said as that, not as "lost the connection"
    (psycopg files a program limit under ``OperationalError``, as it does a dropped
    connection); the ledger goes on working."""
    schema = "qa_" + uuid.uuid4().hex[:16]
    async with PostgresLedger(qa_pg_dsn, schema=schema) as ledger:
        with pytest.raises(LedgerError) as caught:
            await ledger.open_job(_random_text(6_000, 7), gateway="isms")
        await ledger.open_job("after", gateway="isms")
    message = str(caught.value)
    assert "lost the connection" not in message
    assert "PostgreSQL refused" in message, message
    assert "index row size" in message


@pytest.mark.parametrize(
    ("gateway", "endpoint", "code", "error"),
    [
        ("isms", "isms_send_json.php", -1008, InvalidNumberError),
        ("whatsapp", "isms_send_waba.php", 50500, InvalidNumberError),
        ("smscommy", None, 1704, InsufficientCreditsError),
        ("isms", "isms_send_json.php", -1002, GatewayError),  # undocumented
    ],
)
async def test_a_keyed_send_refused_raises_the_same_error_when_retried(
    tmp_path: Path, gateway: str, endpoint: str | None, code: int, error: type[Exception]
) -> None:
    """A handler retried by its own client calls ``send_…(key=k)`` again: the ledger
    replays the recorded refusal without sending, and the caller gets the same typed error
    (``InvalidNumberError``, ``InsufficientCreditsError``…) with the same code both times,
    not a generic ``UnexpectedAnswerError`` the second time."""
    fake = FakeGateway()
    fake.inject(Fault.CODE, code=code, times=1, endpoint=endpoint)
    to = numbers(1, 77)[0]
    async with (
        SqliteLedger(tmp_path / "l.db") as ledger,
        fake.isms_client(ledger=ledger) as isms,
        fake.smscommy_client(ledger=ledger) as my,
    ):
        sends = {
            "isms": lambda: isms.send_sms(to, "Your OTP is 123456", key="otp"),
            "whatsapp": lambda: isms.send_whatsapp_template(
                to, "otp", params=["123456"], key="otp"
            ),
            "smscommy": lambda: my.send_sms(to, "Your OTP is 123456", key="otp"),
        }
        raised = []
        for _ in range(2):
            with pytest.raises(GatewayError) as caught:
                await sends[gateway]()
            raised.append(caught.value)
    first, again = raised
    assert type(first) is error
    assert type(again) is type(first)
    assert (again.code, str(again)) == (first.code, str(first))
    assert again.outcome is not None
    assert again.outcome.from_ledger
    assert fake.sent == []
