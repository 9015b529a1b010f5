"""The SQLite ledger's writer process: a job's units written by a child process of its own
(``writer="process"``, the default), to the same rows as in worker threads, and nothing
left behind by a parent that dies or a child that does."""

from __future__ import annotations

import enum
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from messaging_async import LedgerError, OutcomeStatus, Sms, SqliteLedger, ValidationError
from messaging_async.ledger import Entry, Plan
from messaging_async.ledger._fingerprint import fingerprint
from messaging_async.ledger._store import Store
from messaging_async.testing import FakeGateway

from .conftest import Clock, accepted, sms_entries

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[2]


class Tier(enum.StrEnum):
    GOLD = "gold"


class Rank(enum.IntEnum):
    FIRST = 1


def _writer_of(ledger: SqliteLedger) -> Any:
    writer = ledger._writer
    assert writer is not None
    return writer


def _gone(pid: int, within: float = 30.0) -> bool:
    """Whether process ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


async def test_a_jobs_units_are_written_by_a_child_not_by_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    here: list[str] = []
    for name in ("plan", "begin_unit", "plan_and_begin", "settle_unit", "settle_accepted"):
        original = getattr(Store, name)

        def spy(self: Store, *args: Any, _name: str = name, _original: Any = original) -> Any:
            here.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(Store, name, spy)
    entries = sms_entries(5)
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        plan = await ledger.plan_and_begin_unit("j", entries)
        await ledger.settle_unit("j", accepted(list(plan.send)))
        child = _writer_of(ledger).pid
        assert child != os.getpid()
        assert not _gone(child, within=0)
        summary = await ledger.summary("j")
    assert here == []  # none of it in this process
    assert summary.outcomes[OutcomeStatus.ACCEPTED] == 5
    assert _gone(child)  # ended with the ledger


async def test_a_ledger_that_runs_no_job_starts_no_writer(tmp_path: Path, clock: Clock) -> None:
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.summary("nothing")
        assert ledger._writer is None


def _sends(path: Path, contents: dict[int, object]) -> list[tuple[Any, ...]]:
    """The rows, each fingerprint checked against the file's own salt and left out but for
    whether there is one (a salt is made per ledger file)."""
    with closing(sqlite3.connect(path)) as conn:
        salt = conn.execute("SELECT value FROM meta WHERE name = 'salt'").fetchone()[0]
        rows = conn.execute("SELECT * FROM sends ORDER BY job, key").fetchall()
    for row in rows:
        to, position, fp = row[3:6]
        assert fp is None or fp == fingerprint(to, contents[position], salt)
    return [(*row[:5], row[5] is None, *row[6:]) for row in rows]


def _odd_ref_entries() -> list[Entry]:
    """Refs of every kind a caller may give: keyed (str, int, their subclasses) or refused."""
    refs: list[Any] = [None, "a", 7, Tier.GOLD, Rank.FIRST, 1.5, True, ("t",), "a", None]
    return [
        Entry(n, f"6012{n:07d}", ref, Sms(to=f"6012{n:07d}", text=f"Hi {n}"), None)
        for n, ref in enumerate(refs)
    ]


async def _journal(path: Path, writer: str, clock: Clock) -> tuple[list[Plan], list[Any]]:
    """The same runs of one job, two of them: a fresh run with odd refs, mixed outcomes
    and a unit accepted whole; then a resume where some content changed."""
    plans: list[Plan] = []
    first, second = _odd_ref_entries(), sms_entries(4, start=10, refs=True, seqnos=True)
    async with SqliteLedger(path, clock=clock, writer=writer) as ledger:  # type: ignore[arg-type]
        await ledger.open_job("j", gateway="isms")
        plans.append(await ledger.plan_and_begin_unit("j", first))
        sent = list(plans[-1].send)
        outcomes = accepted(sent[:3]) + [
            e.outcome(OutcomeStatus.REJECTED, "bad number") for e in sent[3:5]
        ]
        await ledger.settle_unit(
            "j", outcomes + [e.outcome(OutcomeStatus.UNKNOWN, "?") for e in sent[5:]]
        )
        plans.append(await ledger.plan_and_begin_unit("j", second))
        columns = [e.position for e in second], [e.to for e in second]
        refs, ids = [e.ref for e in second], [f"m{e.position}" for e in second]
        await ledger.settle_accepted("j", *columns, refs, ids, 2000)
        await ledger.close_job("j")
    clock.advance(60)
    changed = [
        e._replace(content=Sms(to=e.to, text="new")) if e.position % 2 else e for e in second
    ]
    async with SqliteLedger(path, clock=clock, writer=writer) as ledger:  # type: ignore[arg-type]
        await ledger.open_job("j", gateway="isms")
        plans.append(await ledger.plan("j", _odd_ref_entries() + changed))
        await ledger.close_job("j")
    return plans, _sends(path, {e.position: e.content for e in first + second})


async def test_both_writers_decide_and_write_the_same(tmp_path: Path) -> None:
    by_thread = await _journal(tmp_path / "t.db", "thread", Clock())
    by_process = await _journal(tmp_path / "p.db", "process", Clock())
    assert by_process[0] == by_thread[0]  # the same plans, the caller's own refs on them
    assert by_process[1] == by_thread[1]  # the same rows
    kept = [o.ref for o in by_process[0][0].outcomes]
    assert any(isinstance(ref, float) for ref in kept)  # refused refs come back as given


async def test_the_childs_errors_arrive_as_the_same_errors(tmp_path: Path, clock: Clock) -> None:
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        with pytest.raises(LedgerError, match="not open"):
            await ledger.begin_unit("j", sms_entries(1))
        await ledger.open_job("j", gateway="isms")
        bad = [Entry(0, "60120000000", 1.5, Sms(to="60120000000", text="x"), None)]
        with pytest.raises(ValidationError) as refused:
            await ledger.begin_unit("j", bad)
        assert refused.value.field == "ref"
        await ledger.begin_unit("j", sms_entries(2))  # the writer goes on
        await ledger.close_job("j")
        with pytest.raises(LedgerError, match="not open"):
            await ledger.begin_unit("j", sms_entries(1, start=5))


async def test_a_writer_that_dies_fails_the_job_and_nothing_is_sent(
    tmp_path: Path, clock: Clock
) -> None:
    fake = FakeGateway()
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("warm-up", gateway="isms")
        await ledger.close_job("warm-up")
        child = _writer_of(ledger).pid
        os.kill(child, signal.SIGKILL)
        assert _gone(child)
        async with fake.isms_client(ledger=ledger) as isms:
            with pytest.raises(LedgerError, match="writer process"):
                await isms.send_sms_bulk([Sms(to="60123456789", text="hi")], job="j")
        assert fake.sent == []
        with pytest.raises(LedgerError, match="writer process"):  # and stays failed
            await ledger.open_job("k", gateway="isms")


async def test_ctrl_c_reaches_the_parent_not_the_writer(tmp_path: Path, clock: Clock) -> None:
    """The terminal sends Ctrl-C to the whole process group; the parent's shielded settles
    must still find its writer alive."""
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        entries = sms_entries(3)
        await ledger.begin_unit("j", entries)
        os.kill(_writer_of(ledger).pid, signal.SIGINT)
        await ledger.settle_unit("j", accepted(entries))
        assert (await ledger.summary("j")).outcomes[OutcomeStatus.ACCEPTED] == 3


_ORPHAN = textwrap.dedent(
    """
    import sys, time, anyio
    from messaging_async import SqliteLedger

    async def main():
        async with SqliteLedger(sys.argv[1], writer="process") as ledger:
            await ledger.open_job("j", gateway="isms")
            print(ledger._writer.pid, flush=True)
            time.sleep(600)

    anyio.run(main)
    """
)


def test_a_parent_killed_leaves_no_writer_behind(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", _ORPHAN, str(tmp_path / "l.db")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(60)
    parent.stdout.close()
    assert _gone(child)


async def test_where_no_process_can_be_run_units_are_written_in_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # a frozen application
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", sms_entries(2))
        assert ledger._writer is None
        assert (await ledger.summary("j")).total == 2


def test_the_writer_option_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="writer") as refused:
        SqliteLedger(tmp_path / "l.db", writer="fork")  # type: ignore[arg-type]
    assert refused.value.field == "writer"


async def test_a_fork_of_the_process_cannot_write_to_its_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    """Two processes writing frames into one pipe would garble both: a fork that inherited
    an open ledger (a pre-forking server) is told to open its own."""
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        parent = os.getpid()
        monkeypatch.setattr(os, "getpid", lambda: parent + 1)
        with pytest.raises(LedgerError, match="fork"):
            await ledger.begin_unit("j", sms_entries(1))
        monkeypatch.undo()
        await ledger.begin_unit("j", sms_entries(1))  # the parent's own still works


@pytest.mark.parametrize(("cpus", "started"), [(1, False), (2, True)])
async def test_auto_writes_in_a_process_only_with_a_second_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock, cpus: int, started: bool
) -> None:
    """On one CPU a writer process would only take turns with the event loop."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    async with SqliteLedger(tmp_path / "l.db", clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", sms_entries(2))
        assert (ledger._writer is not None) is started
        assert (await ledger.summary("j")).total == 2


async def test_a_trips_request_is_shielded_by_its_batchers_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``Batcher`` trip's request opens no cancel scope of its own (``shield=False``):
    its first caller's shielded scope holds a cancellation off, so a claim made in a scope
    cancelled already is answered whole, and the cancellation lands after it. Requests
    of no trip (``adopt``, ``drop``) shield themselves."""
    import anyio

    from messaging_async.ledger._writer_client import WriterProcess

    shields: list[bool] = []
    request = WriterProcess.request

    async def spied(self: WriterProcess, message: object, **options: Any) -> Any:
        shields.append(options.get("shield", True))
        return await request(self, message, **options)

    monkeypatch.setattr(WriterProcess, "request", spied)
    async with SqliteLedger(tmp_path / "l.db", writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        with anyio.CancelScope() as scope:
            scope.cancel()
            plan = await ledger.plan_and_begin_unit("j", sms_entries(2))
            await anyio.lowlevel.checkpoint()
            pytest.fail("the cancellation did not land")  # pragma: no cover
        assert scope.cancelled_caught
        assert len(plan.send) == 2
        assert (await ledger.summary("j")).in_flight == 2
        await ledger.close_job("j")
    assert shields == [True, False, True]  # adopt, the claim's trip, drop


def test_a_request_makes_its_wake_event_only_to_wait() -> None:
    """A request that reads its own answer (the usual one) makes no event: waking it
    before it waits does nothing, and it looks before it waits."""
    from messaging_async.ledger._writer_pipes import Waiter

    waiter = Waiter(None)
    assert waiter.wake is None
    waiter.wake_up()
    assert waiter.wake is None


async def test_frames_sent_together_take_turns_at_a_full_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim whose frame does not fit the pipe (texts of a million characters) is written
    whole while a settle sent meanwhile waits at its gate (``WriterProcess._send``), then
    the settle's frame goes: both answered, every row as sent."""
    import sys as _sys

    import anyio

    from messaging_async.ledger import _writer_client
    from messaging_async.ledger._batch import steady
    from messaging_async.ledger._writer_pipes import write_all

    gated: list[str] = []
    writing, at_gate = anyio.Event(), anyio.Event()

    async def spied(owed: list[BaseException], function: Any, *args: Any) -> Any:
        if _sys._getframe(1).f_code.co_name == "_send":
            gated.append(type(getattr(function, "__self__", None)).__name__)
            at_gate.set()
        return await steady(owed, function, *args)

    async def written(fd: int, data: bytes, owed: list[BaseException]) -> None:
        if len(data) > 1_000_000:
            writing.set()  # the claim's frame: 4 MB, 64 KiB a round
            with anyio.fail_after(30):  # the settle at its gate before the frame goes: a
                await at_gate.wait()  # child that drained the pipe as fast as it was
                # written let the write end first, and the test failed (under load)
        await write_all(fd, data, owed)

    monkeypatch.setattr(_writer_client, "steady", spied)
    monkeypatch.setattr(_writer_client, "_write_all", written)
    big = [Entry(n, f"6012{n:07d}", None, "x" * 1_000_000, None) for n in range(4)]
    small = sms_entries(3, start=10)
    async with SqliteLedger(tmp_path / "l.db", writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.plan_and_begin_unit("j", small)
        numbers = tuple(entry.to for entry in small)

        async def settle() -> None:
            await writing.wait()
            await ledger.settle_accepted(
                "j", (10, 11, 12), numbers, (None,) * 3, ("a", "b", "c"), 1
            )

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ledger.plan_and_begin_unit, "j", big)
                tasks.start_soon(settle)
        summary = await ledger.summary("j")
        await ledger.close_job("j")
    assert gated == ["Event"]
    assert summary.in_flight == 4
    assert summary.outcomes["accepted"] == 3
