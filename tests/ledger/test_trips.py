"""Calls coalesced into trips: committed before their callers resume, failing alone,
never abandoned by a cancelled caller."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from messaging_async import LedgerError, SqliteLedger
from messaging_async.ledger import Plan
from messaging_async.ledger._batch import Call

from .conftest import Clock, accepted, sms_entries

pytestmark = pytest.mark.anyio


def _states(path: Path) -> list[tuple[int, str]]:
    """What another connection (another process, say) sees: only what is committed."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute("SELECT position, state FROM sends ORDER BY position"))
    finally:
        conn.close()


async def test_a_claim_is_committed_before_begin_unit_returns(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "l.db"
    entries = sms_entries(3)
    async with SqliteLedger(path, clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", entries)
        assert _states(path) == [(0, "in_flight"), (1, "in_flight"), (2, "in_flight")]
        await ledger.settle_unit("j", accepted(entries))
        assert _states(path) == [(0, "accepted"), (1, "accepted"), (2, "accepted")]


async def test_calls_of_one_trip_fail_alone(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "l.db"
    async with SqliteLedger(path, clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")
        store = ledger._open_store

        def write_then_fail() -> None:
            with store.write() as conn:
                conn.execute("INSERT INTO meta (name, value) VALUES ('half-done', x'00')")
                raise RuntimeError("boom")

        failures: list[BaseException] = []

        async def failing() -> None:
            try:
                await ledger._batched(write_then_fail)
            except RuntimeError as exc:
                failures.append(exc)

        async def unit(start: int) -> None:
            await ledger.begin_unit("j", sms_entries(10, start=start))

        async def not_open() -> None:
            try:
                await ledger.begin_unit("not-open", sms_entries(1, start=500))
            except LedgerError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tasks:
            for start in range(0, 100, 10):
                tasks.start_soon(unit, start)
                tasks.start_soon(failing)
            tasks.start_soon(not_open)
    states = _states(path)
    assert len(failures) == 11
    assert [position for position, _ in states] == list(range(100))
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM meta WHERE name = 'half-done'").fetchone() == (0,)
    conn.close()


async def test_an_error_reaches_its_own_caller(tmp_path: Path, clock: Clock) -> None:
    async with SqliteLedger(tmp_path / "l.db", clock=clock) as ledger:
        with pytest.raises(LedgerError, match="not open"):
            await ledger.begin_unit("never-opened", sms_entries(1))


async def test_a_cancelled_caller_does_not_abandon_its_claim(tmp_path: Path, clock: Clock) -> None:
    """Cancelled while claiming: the claim is committed whole all the same, and the caller
    is cancelled afterwards — so no request can leave unclaimed, and no claim is half
    written."""
    path = tmp_path / "l.db"
    async with SqliteLedger(path, clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await ledger.begin_unit("j", sms_entries(5))
            pytest.fail("the cancellation should surface once the claim is committed")
        assert scope.cancelled_caught
        assert len(_states(path)) == 5


@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_a_cancelled_caller_of_the_one_trip_claim_gets_its_plan(
    tmp_path: Path, clock: Clock, writer: str
) -> None:
    """``plan_and_begin_unit`` is whole: cancelled while claiming, its caller still gets
    the plan of what was committed, the cancellation landing at its next checkpoint; so
    the runner opens no shield of its own around a unit's claim (``plan_and_begin_whole``).
    A subclass's override is not taken to be whole."""
    path = tmp_path / "l.db"
    planned = []
    async with SqliteLedger(path, clock=clock, writer=writer) as ledger:  # type: ignore[arg-type]
        assert ledger.plan_and_begin_whole
        await ledger.open_job("j", gateway="isms")
        with anyio.CancelScope() as scope:
            scope.cancel()
            planned.append(await ledger.plan_and_begin_unit("j", sms_entries(5)))
            await anyio.lowlevel.checkpoint()
            pytest.fail("the cancellation should surface at the next checkpoint")
        assert scope.cancelled_caught
        assert [entry.position for entry in planned[0].send] == list(range(5))
        assert len(_states(path)) == 5

    class Overridden(SqliteLedger):
        async def plan_and_begin_unit(self, *args: Any, **kwargs: Any) -> Plan:
            return await super().plan_and_begin_unit(*args, **kwargs)

    assert not Overridden(path).plan_and_begin_whole


def test_one_ledger_serves_event_loops_one_after_another_and_in_threads(
    tmp_path: Path, clock: Clock
) -> None:
    """A CLI that runs several event loops, a receiver on a loop of its own in a thread."""
    ledger = SqliteLedger(tmp_path / "l.db", clock=clock)

    async def first() -> None:
        await ledger.open()
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", sms_entries(2))

    async def second() -> None:
        await ledger.settle_unit("j", accepted(sms_entries(2)))

        def in_a_thread() -> None:
            anyio.run(ledger.begin_unit, "j", sms_entries(2, start=2), backend="trio")

        await anyio.to_thread.run_sync(in_a_thread)
        await ledger.aclose()

    anyio.run(first)
    anyio.run(second)
    assert _states(tmp_path / "l.db") == [
        (0, "accepted"),
        (1, "accepted"),
        (2, "in_flight"),
        (3, "in_flight"),
    ]


def _lease_until(path: Path) -> float:
    conn = sqlite3.connect(path)
    try:
        return float(conn.execute("SELECT max(lease_until) FROM runs").fetchone()[0])
    finally:
        conn.close()


async def test_a_trip_renews_a_jobs_lease_once(tmp_path: Path, clock: Clock) -> None:
    """One trip is one transaction: its units renew their job's lease with one statement."""
    path = tmp_path / "l.db"
    async with SqliteLedger(path, clock=clock, lease_seconds=60) as ledger:
        await ledger.open_job("j", gateway="isms")
        store = ledger._open_store
        statements: list[str] = []
        conn = store.conn
        assert isinstance(conn, sqlite3.Connection)
        conn.set_trace_callback(statements.append)
        clock.advance(30)
        units = [sms_entries(5, start=start) for start in (0, 5, 10)]
        calls = [Call(store.begin_unit, ("j", unit, True)) for unit in units]
        calls += [Call(store.settle_unit, ("j", accepted(unit))) for unit in units]
        store.run_trip(calls)
        conn.set_trace_callback(None)
        assert [call.error for call in calls] == [None] * 6
    assert sum(s.startswith("UPDATE runs SET lease_until") for s in statements) == 1
    assert _lease_until(path) == clock.now + 60
    assert [state for _, state in _states(path)] == ["accepted"] * 15


async def test_a_renewal_undone_with_its_failed_call_is_made_again(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "l.db"
    async with SqliteLedger(path, clock=clock, lease_seconds=60) as ledger:
        await ledger.open_job("j", gateway="isms")
        store = ledger._open_store
        clock.advance(30)

        def renew_then_fail() -> None:
            with store.write() as conn:
                store._renew(conn, store.run_of("j"), "j")
                raise RuntimeError("boom")

        calls = [Call(renew_then_fail, ()), Call(store.begin_unit, ("j", sms_entries(2), True))]
        store.run_trip(calls)
        assert isinstance(calls[0].error, RuntimeError)
        assert calls[1].error is None
    assert _lease_until(path) == clock.now + 60


@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_open_job_cancelled_once_the_job_is_held_lets_it_go(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    """Cancelled after the store took the job (while the writer is started, or told of the
    run): ``open_job`` raises, so nobody will close the job; it must let the job go
    itself. It kept it: the job was "already open in this ledger" for the ledger's life
    (a blast cut at its start, then run again: trio with ``writer="thread"``)."""
    from messaging_async.ledger._store import Store

    scope = anyio.CancelScope()
    original = Store.open_job

    def open_then_cancel(store: Store, *args: Any) -> None:
        original(store, *args)
        anyio.from_thread.run_sync(scope.cancel)

    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer=writer) as ledger:  # type: ignore[arg-type]
        monkeypatch.setattr(Store, "open_job", open_then_cancel)
        with scope:
            await ledger.open_job("j", gateway="isms")
        monkeypatch.undo()
        assert scope.cancelled_caught
        await ledger.open_job("j", gateway="isms")  # raised JobRunningError
        entries = sms_entries(3)
        await ledger.settle_unit(
            "j", accepted(list((await ledger.plan_and_begin_unit("j", entries)).send))
        )
        await ledger.close_job("j")
        assert (await ledger.summary("j")).total == 3
