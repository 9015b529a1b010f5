"""A resumed job's fast way (settled rows read ahead of the input, ``read_ahead``; an item
settled with this very input not prepared) against the usual way (every recipient
prepared and planned): the same outcomes, the same sends, the same ledger, whatever the
earlier runs left and however the input changed; and the input read as lazily.

The usual way is the same client and ledger with ``read_ahead`` hidden (the runner then
prepares and plans everything, as it does for a store without it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging_async import (
    InputFailedError,
    Outcome,
    RetryPolicy,
    Sms,
    SqliteLedger,
)
from messaging_async.ledger import Entry, Owner
from messaging_async.testing import FakeGateway, Fault

DEAD = Owner("another-host", 4242, 1.0)  # a run elsewhere whose lease has run out
JOB = "job"

# How the second run's input differs from the first's, per recipient.
CHANGES = ["same", "same", "same", "text", "plus", "local", "ref", "invalid", "seqno"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def _first(count: int, refs: bool) -> list[Sms]:
    return [
        Sms(to=f"60123{n:06d}", text=f"Promo {n}", ref=f"c{n}" if refs and n % 3 else None)
        for n in range(count)
    ]


def _changed(item: Sms, change: str, n: int) -> object:
    if change == "text":
        return Sms(to=item.to, text="another text", ref=item.ref)
    if change == "plus":  # the same number, written otherwise
        return Sms(to="+" + item.to, text=item.text, ref=item.ref)
    if change == "local":  # the same number through the client's default country
        return Sms(to="0" + item.to[2:], text=item.text, ref=item.ref)
    if change == "ref":
        return Sms(to=item.to, text=item.text, ref=f"new{n}")
    if change == "invalid":
        return Sms(to="12", text=item.text, ref=item.ref)
    if change == "seqno":  # iSMS refuses a seqno: the usual way says why
        return Sms(to=item.to, text=item.text, ref=item.ref, seqno=f"s{n}")
    return item


def _client(fake: FakeGateway, ledger: SqliteLedger) -> Any:
    return fake.isms_client(
        ledger=ledger,
        default_country="MY",
        max_concurrency=1,  # the same order of sends on both ways: the same message ids
        retry=RetryPolicy.no_wait(max_attempts=1),
        sms_base_urls=["https://www.isms.com.my"],
        transport=fake.transport(),
    )


def _seen(outcomes: Sequence[Outcome]) -> list[tuple[object, ...]]:
    return [
        (
            *(o.index, o.to, o.ref, o.status, o.code, o.reason, o.message_id, o.request_id),
            *(o.seqno, o.raw, type(o.status), o.from_ledger),
        )
        for o in outcomes
    ]


async def _records(path: Path, clock: Clock) -> list[tuple[object, ...]]:
    async with SqliteLedger(path, clock=clock) as ledger:
        return [
            (r.key, r.recipient, r.outcome, r.code, r.reason, r.message_id, r.attempts)
            async for r in ledger.records(JOB)
        ]


async def _history(path: Path, clock: Clock, first: list[Sms], refused: int, dead: int) -> None:
    """A first run (its first ``refused`` units not sent), then a run that died with the
    ``dead`` recipients after the input in flight."""
    fake = FakeGateway()
    if refused:
        fake.inject(Fault.REFUSE, endpoint="isms_send_json.php", times=refused)
    async with SqliteLedger(path, clock=clock) as ledger, _client(fake, ledger) as isms:
        await isms.send_sms_bulk(first, job=JOB)
    async with SqliteLedger(path, clock=clock) as died:
        await died.open_job(JOB, gateway="isms", owner=DEAD)
        extra = _first(len(first) + dead, refs=False)[len(first) :]
        start = len(first)
        await died.begin_unit(JOB, [Entry(start + i, s.to, None, s) for i, s in enumerate(extra)])


async def _resume(path: Path, clock: Clock, items: list[object], fast: bool) -> tuple[Any, ...]:
    fake = FakeGateway()
    async with SqliteLedger(path, clock=clock) as ledger, _client(fake, ledger) as isms:
        if not fast:
            ledger.read_ahead = None  # type: ignore[method-assign,assignment]
        report = await isms.send_sms_bulk(items, job=JOB)
    return _seen(report.outcomes), [m.to for m in fake.sent], await _records(path, clock)


def _copy(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as a, sqlite3.connect(target) as b:
        a.backup(b)
    a.close()
    b.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(1, 130),
    refs=st.booleans(),
    refused=st.integers(0, 2),
    dead=st.integers(0, 3),
    changes=st.lists(st.sampled_from(CHANGES), max_size=140),
    extra=st.integers(0, 5),
)
def test_the_fast_way_agrees_with_the_usual_way(
    tmp_path_factory: pytest.TempPathFactory,
    count: int,
    refs: bool,
    refused: int,
    dead: int,
    changes: list[str],
    extra: int,
) -> None:
    folder = tmp_path_factory.mktemp("agree")
    clock = Clock()
    first = _first(count, refs)
    changes += ["same"] * (count - len(changes))
    second = [_changed(item, changes[n], n) for n, item in enumerate(first)]
    second += _first(count + dead + extra, refs)[count:]
    anyio.run(_history, folder / "history.db", clock, first, refused, dead)
    clock.now += 3600
    for name in ("fast.db", "usual.db"):
        _copy(folder / "history.db", folder / name)
    fast = anyio.run(_resume, folder / "fast.db", clock, second, True)
    usual = anyio.run(_resume, folder / "usual.db", clock, second, False)
    assert fast == usual


async def _count_asks(path: Path, clock: Clock, items: list[object]) -> tuple[Any, int]:
    fake = FakeGateway()
    async with SqliteLedger(path, clock=clock) as ledger, _client(fake, ledger) as isms:
        asks = 0
        read = ledger.read_ahead

        async def counted(job: str, first: int, count: int) -> Any:
            nonlocal asks
            asks += 1
            return await read(job, first, count)

        ledger.read_ahead = counted  # type: ignore[method-assign]
        report = await isms.send_sms_bulk(items, job=JOB)
    return report, asks


@pytest.mark.anyio
async def test_a_finished_job_is_read_in_growing_trips_and_a_fresh_one_once(
    tmp_path: Path,
) -> None:
    """The first trip reads one window (512 positions); once it held settled rows, the
    next reads four times as far: 1,500 recipients, two trips (512, then 2,048)."""
    clock = Clock()
    items = _first(1500, refs=False)
    fresh, fresh_asks = await _count_asks(tmp_path / "l.db", clock, list(items))
    again, again_asks = await _count_asks(tmp_path / "l.db", clock, list(items))
    assert fresh.all_accepted
    assert not any(o.from_ledger for o in fresh.outcomes)
    assert fresh_asks == 1  # nothing settled in the first window: asked no more
    assert again.all_accepted
    assert all(o.from_ledger for o in again.outcomes)
    assert [o.message_id for o in again.outcomes] == [o.message_id for o in fresh.outcomes]
    assert again_asks == 2  # 1500 recipients: 512, then the next 2,048 positions


@pytest.mark.anyio
async def test_a_window_with_nothing_settled_in_a_longer_trip_ends_the_asking(
    tmp_path: Path,
) -> None:
    """600 settled of 3,000: the second trip (positions 512 … 2,559) holds settled rows,
    but its window from 1,024 holds none, so the runner reads on the usual way from
    there, with no third trip at 2,560; the 600 come from the ledger, the rest are sent."""
    clock = Clock()
    items = _first(3000, refs=False)
    await _count_asks(tmp_path / "l.db", clock, list(items[:600]))
    again, asks = await _count_asks(tmp_path / "l.db", clock, list(items))
    assert asks == 2
    assert [o.from_ledger for o in again.outcomes] == [True] * 600 + [False] * 2400
    assert again.all_accepted


def test_the_fast_way_agrees_with_the_usual_way_over_several_trips(
    tmp_path: Path,
) -> None:
    """The property test's comparison on an input long enough for three trips (512,
    2,048, 8,192 positions), with every kind of change spread over all of them."""
    clock = Clock()
    first = _first(2700, refs=True)
    second = [_changed(item, CHANGES[(n * 7) % len(CHANGES)], n) for n, item in enumerate(first)]
    second += _first(2900, refs=True)[2700:]
    anyio.run(_history, tmp_path / "history.db", clock, first, 1, 2)
    clock.now += 3600
    for name in ("fast.db", "usual.db"):
        _copy(tmp_path / "history.db", tmp_path / name)
    fast = anyio.run(_resume, tmp_path / "fast.db", clock, second, True)
    usual = anyio.run(_resume, tmp_path / "usual.db", clock, second, False)
    assert sum(o[-1] for o in fast[0]) > 1000  # many taken from the ledger
    assert fast == usual


@pytest.mark.anyio
async def test_every_item_read_has_its_outcome_when_the_input_fails_mid_window(
    tmp_path: Path,
) -> None:
    clock = Clock()
    items = _first(700, refs=True)
    await _count_asks(tmp_path / "l.db", clock, list(items[:600]))

    def failing() -> Iterator[Sms]:
        yield from items[:620]
        raise OSError("the file went away")

    fake = FakeGateway()
    async with (
        SqliteLedger(tmp_path / "l.db", clock=clock) as ledger,
        _client(fake, ledger) as isms,
    ):
        with pytest.raises(InputFailedError) as failed:
            await isms.send_sms_bulk(failing(), job=JOB)
    report = failed.value.report
    assert report is not None
    assert [o.index for o in report.outcomes] == list(range(620))
    assert all(o.from_ledger for o in report.outcomes[:600])  # the unit forming: not sent
    assert {o.status.value for o in report.outcomes[600:]} == {"not_sent"}
    assert fake.sent == []


@pytest.mark.anyio
async def test_a_stream_closed_early_still_accounts_for_what_it_read(tmp_path: Path) -> None:
    clock = Clock()
    items = _first(1200, refs=False)
    await _count_asks(tmp_path / "l.db", clock, list(items[:1100]))
    read = 0

    async def counted() -> AsyncIterator[Sms]:
        nonlocal read
        for item in items:
            read += 1
            yield item

    fake = FakeGateway()
    seen: list[Outcome] = []
    async with (
        SqliteLedger(tmp_path / "l.db", clock=clock) as ledger,
        _client(fake, ledger) as isms,
        isms.stream_sms_bulk(counted(), job=JOB, on_outcome=seen.append) as stream,
    ):
        async for _ in stream:
            break
    assert sorted(o.index for o in seen) == list(range(read))
    assert fake.sent == []


@pytest.mark.anyio
async def test_a_callers_seqno_is_still_checked_against_the_settled_ones(tmp_path: Path) -> None:
    """sms.com.my: two messages of a call may not share a caller's seqno (the gateway
    would answer the second 1718, "accepted"). A settled message with a seqno is prepared
    again on a resume, so a new one reusing its seqno is still refused."""
    first = [Sms(to="60123000000", text="Promo 0", seqno="A")]
    second = [*first, Sms(to="60123000001", text="Promo 1", seqno="A")]
    fake = FakeGateway()
    async with (
        SqliteLedger(tmp_path / "l.db", clock=Clock()) as ledger,
        fake.smscommy_client(ledger=ledger) as my,
    ):
        assert (await my.send_sms_bulk(first, job=JOB)).all_accepted
        again = await my.send_sms_bulk(second, job=JOB)
    assert again.outcomes[0].from_ledger
    assert again.outcomes[1].status.value == "rejected"
    assert "already used" in (again.outcomes[1].reason or "")
    assert [m.to for m in fake.sent] == ["60123000000"]


@pytest.mark.anyio
async def test_one_text_to_many_numbers_resumes_the_same_either_way(tmp_path: Path) -> None:
    numbers = [f"60123{n:06d}" for n in range(700)]
    fake = FakeGateway()
    async with (
        SqliteLedger(tmp_path / "l.db", clock=Clock()) as ledger,
        fake.isms_client(ledger=ledger, default_country="MY") as isms,
    ):
        await isms.send_sms_classic(numbers[:600], "Hello", job=JOB)
    for name in ("fast.db", "usual.db"):
        _copy(tmp_path / "l.db", tmp_path / name)
    again = [*numbers[:300], "0" + numbers[300][2:], *numbers[301:]]  # one written locally
    seen = []
    for name, fast in (("fast.db", True), ("usual.db", False)):
        fake = FakeGateway()
        async with (
            SqliteLedger(tmp_path / name, clock=Clock()) as ledger,
            fake.isms_client(ledger=ledger, default_country="MY") as isms,
        ):
            if not fast:
                ledger.read_ahead = None  # type: ignore[method-assign,assignment]
            report = await isms.send_sms_classic(again, "Hello", job=JOB)
        # A classic request's id is one for all its numbers, and the fast way groups the
        # ones it sends otherwise (none of them settled): their ids are not compared.
        outcomes = [o if o[-1] else o[:6] for o in _seen(report.outcomes)]
        seen.append((outcomes, sorted(m.to for m in fake.sent)))
        assert sum(o.from_ledger for o in report.outcomes) == 600
    assert seen[0] == seen[1]
    assert len(seen[0][1]) == 100  # the one written locally is the same number: not sent


async def _pulled_until_a_send(path: Path, items: list[Sms], fast: bool) -> int:
    """How many items the runner pulled from an input that stops once a request reached
    the gateway (as a worker stops feeding a slice when it is told to stop)."""
    fake = FakeGateway()
    pulled = 0

    async def feed() -> AsyncIterator[Sms]:
        nonlocal pulled
        for item in items:
            if fake.sent:
                return
            pulled += 1
            yield item

    async with SqliteLedger(path, clock=Clock()) as ledger, _client(fake, ledger) as isms:
        if not fast:
            ledger.read_ahead = None  # type: ignore[method-assign,assignment]
        await isms.send_sms_bulk(feed(), job=JOB)
    return pulled


@pytest.mark.anyio
async def test_the_input_is_read_no_further_ahead_than_the_usual_way_reads_it(
    tmp_path: Path,
) -> None:
    """A resume reads the rows ahead, not the input: an input that stops when told to
    (a worker releasing its slice) is left as much unread as it is the usual way."""
    items = _first(1000, refs=False)
    await _count_asks(tmp_path / "l.db", Clock(), list(items[:300]))
    for name in ("fast.db", "usual.db"):
        _copy(tmp_path / "l.db", tmp_path / name)
    fast = await _pulled_until_a_send(tmp_path / "fast.db", items, fast=True)
    usual = await _pulled_until_a_send(tmp_path / "usual.db", items, fast=False)
    assert fast == usual
    assert fast < 600


def test_an_item_the_ledger_cannot_fingerprint_goes_the_usual_way(tmp_path: Path) -> None:
    """A look-alike of an ``Sms`` (a number, a ref, a text, but not a message the SDK
    knows) at a settled position: the fast way cannot fingerprint it, so it is prepared
    as the usual way prepares it (and refused there), not raised out of the call."""
    clock = Clock()
    first = _first(5, refs=False)
    anyio.run(_history, tmp_path / "history.db", clock, first, 0, 0)
    for name in ("fast.db", "usual.db"):
        _copy(tmp_path / "history.db", tmp_path / name)
    second: list[object] = list(first)
    second[2] = SimpleNamespace(to=first[2].to, ref=None, text=first[2].text, seqno=None)
    fast = anyio.run(_resume, tmp_path / "fast.db", clock, second, True)
    usual = anyio.run(_resume, tmp_path / "usual.db", clock, second, False)
    assert fast == usual
    assert [o[-1] for o in fast[0]] == [True, True, False, True, True]
