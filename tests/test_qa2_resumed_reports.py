"""QA (qa2): a resumed journalled job's report, on every road that journals, read through
every public surface, equal field by field to what the same resume gives when a hook
listens (which forces real outcomes) and to what the ledger's records say; mixed runs
(settled earlier, sent now, rejected, unknown, not sent, changed input), refs of every
kind, ``resend_unknown=True``, a finished job run again, a cancelled resume resumed."""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from messaging_async import (
    BulkReport,
    Outcome,
    OutcomeStatus,
    Sms,
    SqliteLedger,
    WhatsAppTemplate,
)
from messaging_async.testing import FakeGateway, Fault

pytestmark = pytest.mark.anyio

COUNT = 130
FAULTS = (Fault.RESET, Fault.SERVER_ERROR, Fault.TRUNCATED, Fault.NOT_JSON)

Send = Callable[[Any, Any, str, dict[str, Any]], Awaitable[BulkReport]]


def number(i: int) -> str:
    return "12" if i % 17 == 3 else f"6012{i:07d}"  # a few invalid numbers: rejected


def _ref(i: int) -> Any:
    return (None, f"r{i}", i * 10)[i % 3]  # positional, str and int refs mixed


def sms_items(text: str = "Promo {i}") -> list[Sms]:
    return [Sms(to=number(i), text=text.format(i=i), ref=_ref(i)) for i in range(COUNT)]


def templates(param: str = "p{i}") -> list[WhatsAppTemplate]:
    return [
        WhatsAppTemplate(to=number(i), template_code="otp", params=[param.format(i=i)], ref=_ref(i))
        for i in range(COUNT)
    ]


async def json_sms(isms: Any, my: Any, job: str, kw: dict[str, Any]) -> BulkReport:
    return await isms.send_sms_bulk(sms_items(), job=job, **kw)  # type: ignore[no-any-return]


async def classic(isms: Any, my: Any, job: str, kw: dict[str, Any]) -> BulkReport:
    numbers = [number(i) for i in range(COUNT)]
    return await isms.send_sms_classic(numbers, "hello all", job=job, **kw)  # type: ignore[no-any-return]


async def whatsapp(isms: Any, my: Any, job: str, kw: dict[str, Any]) -> BulkReport:
    return await isms.send_whatsapp_bulk(templates(), job=job, **kw)  # type: ignore[no-any-return]


async def personalised(isms: Any, my: Any, job: str, kw: dict[str, Any]) -> BulkReport:
    return await my.send_sms_bulk(sms_items(), job=job, **kw)  # type: ignore[no-any-return]


async def no_dr(isms: Any, my: Any, job: str, kw: dict[str, Any]) -> BulkReport:
    numbers = [number(i) for i in range(COUNT)]
    return await my.send_sms_same_text(numbers, "hello all", job=job, **kw)  # type: ignore[no-any-return]


ROADS = {
    "json": json_sms,
    "classic": classic,
    "whatsapp": whatsapp,
    "personalised": personalised,
    "nodr": no_dr,
}


def fields(outcomes: Any) -> list[dict[str, Any]]:
    return [attrs.asdict(o, recurse=False) for o in outcomes]


async def run(
    path: Path, fake: FakeGateway, send: Send, **kw: Any
) -> tuple[BulkReport, list[Outcome]]:
    hooked: list[Outcome] = []
    if kw.pop("hook", False):
        kw["on_outcome"] = hooked.append
    async with (
        SqliteLedger(path) as ledger,
        fake.isms_client(ledger=ledger) as isms,
        fake.smscommy_client(ledger=ledger) as my,
    ):
        report = await send(isms, my, "job", kw)
    return report, hooked


def copy(source: Path, target: Path) -> Path:
    with sqlite3.connect(source) as a, sqlite3.connect(target) as b:
        a.backup(b)
    a.close()
    b.close()
    return target


async def records(path: Path) -> dict[str, Any]:
    async with SqliteLedger(path) as ledger:
        return {r.key: r async for r in ledger.records("job")}


def surfaces(report: BulkReport) -> tuple[Any, ...]:
    """Everything a user reads off a report, as plain values."""
    outcomes = report.outcomes
    listed = list(outcomes)
    return (
        len(outcomes),
        fields(listed),
        fields([outcomes[i] for i in range(len(outcomes))]),
        fields([outcomes[-i - 1] for i in range(len(outcomes))]),
        fields(outcomes[3:90:7]),
        fields(outcomes[::-5]),
        outcomes == tuple(listed),
        hash(outcomes) == hash(tuple(listed)),
        fields(pickle.loads(pickle.dumps(outcomes))),  # noqa: S301 - our own bytes
        repr(outcomes) == repr(tuple(listed)),
        report.counts,
        {s: fields(report.with_status(s)) for s in OutcomeStatus},
        fields(report.accepted),
        report.all_accepted,
    )


@pytest.mark.parametrize("road", list(ROADS))
async def test_a_resumed_jobs_report_reads_as_the_hooked_resume_does(
    road: str, tmp_path: Path
) -> None:
    send = ROADS[road]
    first = FakeGateway()
    first.inject(Fault.RESET, times=1)
    first.chaos(FAULTS, rate=0.3, seed=7)
    report, _ = await run(tmp_path / "first.db", first, send)
    if road in ("json", "classic", "whatsapp"):  # sms.com.my retries with its seqno
        assert OutcomeStatus.UNKNOWN in {o.status for o in report.outcomes}
    # the same history resumed twice: quietly (compact road) and with a hook
    for way in ("quiet", "hooked"):
        copy(tmp_path / "first.db", tmp_path / f"{way}.db")
    quiet, _ = await run(tmp_path / "quiet.db", FakeGateway(), send)
    hooked_report, hooked = await run(tmp_path / "hooked.db", FakeGateway(), send, hook=True)
    assert sorted(o.index for o in hooked) == list(range(COUNT))
    assert any(o.from_ledger for o in quiet.outcomes)
    assert any(not o.from_ledger for o in quiet.outcomes)
    statuses = {o.status for o in quiet.outcomes}
    assert OutcomeStatus.REJECTED in statuses
    # Each resume sent its own (different message ids perhaps): the ones from the ledger
    # equal field by field; the rest equal in what the gateway did not choose.
    by_index = sorted(hooked, key=lambda o: o.index)
    for mine, theirs in zip(quiet.outcomes, hooked_report.outcomes, strict=True):
        if mine.from_ledger:
            assert attrs.asdict(mine, recurse=False) == attrs.asdict(theirs, recurse=False)
        assert (mine.index, mine.to, mine.status, mine.ref, mine.from_ledger) == (
            theirs.index,
            theirs.to,
            theirs.status,
            theirs.ref,
            theirs.from_ledger,
        )
    assert fields(by_index) == fields(hooked_report.outcomes)
    # A finished job run again: everything from the ledger, the same both ways.
    quiet_again, _ = await run(tmp_path / "quiet.db", FakeGateway(), send)
    copy(tmp_path / "quiet.db", tmp_path / "again.db")
    hooked_again, seen = await run(tmp_path / "again.db", FakeGateway(), send, hook=True)
    assert surfaces(quiet_again) == surfaces(hooked_again)
    assert fields(sorted(seen, key=lambda o: o.index)) == fields(hooked_again.outcomes)
    settled = [o for o in quiet_again.outcomes if o.status in ("accepted", "rejected")]
    # invalid input is decided again each run (nothing was recorded as sent for it)
    assert all(o.from_ledger for o in settled if not (o.reason or "").startswith("invalid"))


async def test_input_changed_resend_unknown_and_a_cancelled_resume_resumed(
    tmp_path: Path,
) -> None:
    """SMS JSON: a first run with unknowns; a resume cut midway, resumed with
    ``resend_unknown=True`` and a changed text for some; each number once more at most."""
    first = FakeGateway()
    first.inject(Fault.RESET, times=1)

    async def some(isms: Any, my: Any, job: str, kw: dict[str, Any]) -> BulkReport:
        return await isms.send_sms_bulk(sms_items()[:60], job=job, **kw)  # type: ignore[no-any-return]

    report, _ = await run(tmp_path / "l.db", first, some)
    unknown = {o.index for o in report.outcomes if o.status is OutcomeStatus.UNKNOWN}
    assert unknown
    second = FakeGateway()
    second.inject(Fault.SLOW, times=None, delay=1.0)
    with anyio.move_on_after(0.5):
        await run(tmp_path / "l.db", second, json_sms)
    cut = len(second.sent)
    assert cut < COUNT - 60  # the resume was cut midway
    second.clear_faults()
    changed = sms_items()
    changed[5] = Sms(to=changed[5].to, text="changed", ref=changed[5].ref)

    async def send(isms: Any, my: Any, job: str, kw: dict[str, Any]) -> BulkReport:
        return await isms.send_sms_bulk(changed, job=job, **kw)  # type: ignore[no-any-return]

    held, _ = await run(tmp_path / "l.db", second, send)
    in_flight = {o.index for o in held.outcomes if o.status is OutcomeStatus.UNKNOWN} - unknown
    assert in_flight  # the cut left requests in flight: unknown, not sent again
    assert {m.to for m in second.sent[cut:]}.isdisjoint(number(i) for i in in_flight | unknown)
    assert held.outcomes[5].status is OutcomeStatus.REJECTED
    assert "input changed" in (held.outcomes[5].reason or "")
    before = len(second.sent)
    final, _ = await run(tmp_path / "l.db", second, send, resend_unknown=True)
    resent = sorted(m.to for m in second.sent[before:])
    expected = sorted(number(i) for i in (in_flight | unknown) - {5} if number(i) != "12")
    assert resent == expected  # the unknowns, and nothing else, sent again
    assert final.outcomes[5].status is OutcomeStatus.REJECTED
    assert [o.status for o in final.outcomes].count(OutcomeStatus.UNKNOWN) == 0
    done = await records(tmp_path / "l.db")
    assert len(done) == COUNT


STREAMS = {
    "json": lambda isms, my: isms.stream_sms_bulk(sms_items(), job="job"),
    "whatsapp": lambda isms, my: isms.stream_whatsapp_bulk(templates(), job="job"),
    "personalised": lambda isms, my: my.stream_sms_bulk(sms_items(), job="job"),
}


@pytest.mark.parametrize("road", list(STREAMS))
async def test_a_resumed_jobs_stream_yields_what_its_report_holds(
    road: str, tmp_path: Path
) -> None:
    """``async with client.stream_*_bulk(..., job=) as stream`` over a resumed job: one
    outcome a recipient, those from the ledger equal field by field to the report's."""
    first = FakeGateway()
    first.inject(Fault.RESET, times=1)
    await run(tmp_path / "first.db", first, ROADS[road])
    copy(tmp_path / "first.db", tmp_path / "streamed.db")
    quiet, _ = await run(tmp_path / "first.db", FakeGateway(), ROADS[road])
    fake = FakeGateway()
    async with (
        SqliteLedger(tmp_path / "streamed.db") as ledger,
        fake.isms_client(ledger=ledger) as isms,
        fake.smscommy_client(ledger=ledger) as my,
        STREAMS[road](isms, my) as stream,
    ):
        streamed = sorted([o async for o in stream], key=lambda o: o.index)
    assert [o.index for o in streamed] == list(range(COUNT))
    assert any(o.from_ledger for o in streamed)
    for mine, theirs in zip(quiet.outcomes, streamed, strict=True):
        assert (mine.status, mine.from_ledger, mine.ref, mine.to) == (
            theirs.status,
            theirs.from_ledger,
            theirs.ref,
            theirs.to,
        )
        if mine.from_ledger:
            assert attrs.asdict(mine, recurse=False) == attrs.asdict(theirs, recurse=False)
