"""The writer process answers claims first: a unit's claim, which its request waits for,
is run and answered before the settles the child has waiting, even in the middle of a
long settle trip; answers come out of order and each reaches its own requester."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import anyio
import anyio.to_thread
import pytest

from messaging_async import LedgerError, OutcomeStatus, SqliteLedger
from messaging_async.ledger import Entry, Plan, _writer_calls
from messaging_async.ledger._batch import Batcher, Call
from messaging_async.ledger._writer import frame
from messaging_async.ledger._writer_client import WriterProcess

from .conftest import Clock, accepted, sms_entries
from .test_writer_process import _writer_of

pytestmark = pytest.mark.anyio

REFUSED = 1.5  # a ref the ledger refuses: its recipient is decided "rejected" by the writer


def _claim_of(unit: int) -> tuple[list[Entry], int]:
    """Unit ``unit``'s entries, one of them with a refused ref at a position of its own,
    so that its plan (sent, decided) is this unit's and no other's; and that position."""
    entries = sms_entries(50, start=10_000 + 100 * unit)
    refused = entries[unit].position
    entries[unit] = entries[unit]._replace(ref=REFUSED)
    return entries, refused


async def _trip(
    writer: WriterProcess, calls: list[Call[Any]], urgent: bool, log: list[str]
) -> None:
    await writer.trip(calls, urgent)
    log.append("claim" if urgent else "settles")


async def _sent(writer: WriterProcess, count: int) -> None:
    """Until ``count`` requests are under way, their frames written whole."""
    while len(writer._waiting) < count or writer._sending:  # noqa: ASYNC110 - the writer has no event to wait on
        await anyio.sleep(0.001)


async def test_claims_sent_during_a_long_settle_trip_are_answered_first_each_its_own(
    tmp_path: Any, clock: Clock
) -> None:
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        writer = _writer_of(ledger)
        units = [sms_entries(50, start=50 * n) for n in range(150)]
        begins = [Call(_writer_calls.begin_unit, ("j", unit, True)) for unit in units]
        await writer.trip(begins)
        assert [call.error for call in begins] == [None] * len(units)
        settles = [Call(_writer_calls.settle, ("j", accepted(unit))) for unit in units]
        claims = [_claim_of(n) for n in range(4)]
        trips: list[list[Call[Any]]] = [
            [Call(_writer_calls.plan_and_begin, ("j", e, False, True))] for e, _ in claims
        ]
        answered: list[str] = []
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_trip, writer, settles, False, answered)
                await _sent(writer, 1)  # the settle trip's frame first, then the claims'
                for trip in trips:
                    tasks.start_soon(_trip, writer, trip, True, answered)
        # 150 settle calls of 50 rows each take far longer than the child takes to see
        # the claims come; in order, the settles were answered first
        assert answered == ["claim"] * 4 + ["settles"]
        assert [call.error for call in settles] == [None] * len(settles)
        for (entries, refused), (call,) in zip(claims, trips, strict=True):
            assert call.error is None
            assert isinstance(call.result, Plan)
            plan = call.result  # its own plan: another unit's would name none of these
            assert [o.index for o in plan.outcomes] == [refused]
            assert plan.outcomes[0].status == OutcomeStatus.REJECTED
            assert [e.position for e in plan.send] == [
                e.position for e in entries if e.position != refused
            ]
        summary = await ledger.summary("j")
        assert summary.outcomes[OutcomeStatus.ACCEPTED] == 150 * 50
        assert summary.outcomes[OutcomeStatus.REJECTED] == 4


async def test_a_writer_killed_with_answers_owed_fails_every_waiter(
    tmp_path: Any, clock: Clock
) -> None:
    """Claims and a settle trip sent, none answered, and the child dies: each request is
    a ``LedgerError`` (none waits for ever, none is answered with another's answer), and
    so is every request after."""
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        writer = _writer_of(ledger)
        entries = sms_entries(10)
        await ledger.begin_unit("j", entries)
        os.kill(writer.pid, signal.SIGSTOP)  # it reads nothing more, answers nothing
        failures: list[BaseException] = []

        async def trip(calls: list[Call[Any]], urgent: bool) -> None:
            try:
                await writer.trip(calls, urgent)
            except LedgerError as error:
                failures.append(error)

        try:
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(
                        trip, [Call(_writer_calls.settle, ("j", accepted(entries)))], False
                    )
                    for n in range(3):
                        unit = sms_entries(5, start=100 + 10 * n)
                        plan = Call(_writer_calls.plan_and_begin, ("j", unit, False, True))
                        tasks.start_soon(trip, [plan], True)
                    await _sent(writer, 4)
                    os.kill(writer.pid, signal.SIGKILL)
        finally:  # a stopped child, if the test failed before its kill, must not hang
            with contextlib.suppress(ProcessLookupError):
                os.kill(writer.pid, signal.SIGCONT)
        assert len(failures) == 4
        assert all("ended" in str(error) for error in failures)
        with pytest.raises(LedgerError, match="writer process"):
            await ledger.plan_and_begin_unit("j", sms_entries(2, start=500))


async def test_a_trips_callers_resume_as_soon_as_it_is_over() -> None:
    """A writer trip's answer is read by whichever request is reading: the trip's
    callers resume, and the next trip may start, then (``over``), not when the task that
    sent it is scheduled again (a trip round a busy event loop, each claim)."""
    go, release, first = anyio.Event(), anyio.Event(), anyio.Event()
    resumed: list[int] = []

    async def run_trip(calls: list[Call[Any]], over: Any) -> None:
        await go.wait()
        for call in calls:
            call.result = call.function(*call.args)
        over()
        await release.wait()  # the task that sent it, not scheduled again yet

    batcher = Batcher(run_trip, in_thread=False)

    async def caller(n: int) -> None:
        resumed.append(await batcher.call(int, n))
        first.set()

    async with anyio.create_task_group() as tasks:
        for n in range(3):
            tasks.start_soon(caller, n)
        while batcher._next is None or len(batcher._next.calls) < 2:  # noqa: ASYNC110 - no event
            await anyio.sleep(0.001)  # one trip under way, two calls waiting for the next
        go.set()
        with anyio.move_on_after(20):  # the first trip over, the second run and over
            await first.wait()
        early = list(resumed)
        release.set()
    assert len(early) == 1  # the second trip's caller that did not run it
    assert sorted(resumed) == [0, 1, 2]


async def test_what_the_parent_sent_whole_is_written_after_it_stops_reading(
    tmp_path: Any, clock: Clock
) -> None:
    """A parent killed (or gone) after sending frames: the child cannot answer them, and
    still commits every one it read whole before it exits (it used to stop at the first
    answer it could not write, leaving the rest of the pipe unwritten)."""
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        writer = _writer_of(ledger)
        child = writer._child
        child.stdout.close()  # nobody reads its answers: each write of one fails
        frames = []
        for n in range(20):
            op, args, _ = _writer_calls.begin_unit("j", sms_entries(10, start=10 * n), True)
            frames.append(frame(1000 + n, ("trip", clock(), [(op, args)]), n % 3 == 0))
        os.set_blocking(writer._out, True)
        os.write(writer._out, b"".join(frames))
        child.stdin.close()
        assert await anyio.to_thread.run_sync(child.wait, 60) == 0
        assert (await ledger.summary("j")).total == 200


@pytest.mark.parametrize("linger", [True, False])
async def test_settle_trips_gather_the_calls_of_a_loop_round(linger: bool) -> None:
    """Answered at once now, the writer's settle trips held one unit each (a frame and a
    commit a unit): a lingering ``Batcher`` lets the loop go round once first, and the
    calls made in that round go in the same trip."""
    trips: list[int] = []

    async def run_trip(calls: list[Call[Any]], over: Any) -> None:
        trips.append(len(calls))
        for call in calls:
            call.result = call.function(*call.args)

    batcher = Batcher(run_trip, in_thread=False, under_way=2, linger=linger)
    async with anyio.create_task_group() as tasks:
        for n in range(3):
            tasks.start_soon(batcher.call, int, n)
    assert trips == ([3] if linger else [1, 1, 1])
