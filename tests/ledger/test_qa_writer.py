"""The SQLite ledger's writer process under attack: jobs opened at once, cancellations,
children killed, loops in threads; each test here failed before the fix it came with."""

from __future__ import annotations

import contextlib
import enum
import math
import os
import signal
import sys
import time
import types
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from attrs import evolve

from messaging_async import LedgerError, OutcomeStatus, Sms, SqliteLedger
from messaging_async.ledger import Entry, _writer_client, _writer_pipes
from messaging_async.ledger._writer_client import WriterProcess
from messaging_async.testing import FakeGateway

from .conftest import Clock, accepted, sms_entries
from .test_writer_process import _gone, _sends, _writer_of

pytestmark = pytest.mark.anyio


async def test_jobs_opened_at_once_share_one_writer(tmp_path: Path, clock: Clock) -> None:
    """Two blasts started together on a fresh ledger: both open a job before either has
    a writer; each must not start its own (the first job's run would be told to a child
    the ledger forgot, and its units refused as "not open")."""
    started: list[WriterProcess] = []
    original = SqliteLedger._start_writer

    def spy(self: SqliteLedger) -> WriterProcess | None:
        writer = original(self)
        if writer is not None:
            started.append(writer)
        return writer

    ledger = SqliteLedger(tmp_path / "l.db", clock=clock, writer="process")
    ledger._start_writer = partial(spy, ledger)  # type: ignore[method-assign]
    async with ledger:
        async with anyio.create_task_group() as tasks:
            for job in ("a", "b", "c"):
                tasks.start_soon(partial(ledger.open_job, job, gateway="isms"))
        for n, job in enumerate(("a", "b", "c")):
            entries = sms_entries(2, start=2 * n)
            await ledger.begin_unit(job, entries)
            await ledger.settle_unit(job, accepted(entries))
        assert len(started) == 1
        for job in ("a", "b", "c"):
            assert (await ledger.summary(job)).total == 2
    assert all(_gone(writer.pid) for writer in started)


def _callers_classes(monkeypatch: pytest.MonkeyPatch) -> tuple[type[str], type[int]]:
    """A ``str`` and an ``int`` class of a module this process has and the writer process
    cannot import (as a script's ``__main__`` is, to a child started with ``-c``)."""
    module = types.ModuleType("qa_callers_own_module")

    class Text(str):
        __slots__ = ()

        def __str__(self) -> str:
            return "not the characters"

    class Code(enum.IntEnum):
        OK = 2000

    for cls in (Text, Code):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return Text, Code


async def _journal_subclasses(path: Path, writer: str, text: type[str], code: Any) -> Any:
    clock = Clock()
    entries = [evolve_entry(e, text) for e in sms_entries(6, refs=True, seqnos=True, text="Hi {n}")]
    async with SqliteLedger(path, clock=clock, writer=writer, store_text=True) as ledger:  # type: ignore[arg-type]
        await ledger.open_job("j", gateway="smscom")
        plan = await ledger.plan_and_begin_unit("j", entries[:3])
        outcomes = [
            evolve(o, to=text(o.to), reason=text("fine"), message_id=text("m"), code=code.OK)
            for o in accepted(list(plan.send))
        ]
        await ledger.settle_unit("j", outcomes)
        await ledger.begin_unit("j", entries[3:])
        rest = entries[3:]
        columns = [e.position for e in rest], [e.to for e in rest], [e.ref for e in rest]
        await ledger.settle_accepted("j", *columns, [text(f"m{e.position}") for e in rest], code.OK)
        await ledger.close_job("j")
    return plan, _sends(path, {e.position: e.content for e in entries})


def evolve_entry(entry: Entry, text: type[str]) -> Entry:
    """``entry`` with its number, text and seqno of the caller's ``str`` class."""
    to, seqno = text(entry.to), text(entry.seqno)
    content = evolve(entry.content, to=to, text=text(entry.content.text))  # type: ignore[misc, attr-defined]
    return Entry(entry.position, to, entry.ref, content, seqno)


async def test_a_callers_own_str_and_int_classes_are_written_as_by_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Numbers, texts, seqnos, reasons, ids and codes of the caller's own classes: the
    child cannot unpickle them (it died, and the ledger with it); threads bind them as
    the plain values, and so must the process."""
    text, code = _callers_classes(monkeypatch)
    by_thread = await _journal_subclasses(tmp_path / "t.db", "thread", text, code)
    by_process = await _journal_subclasses(tmp_path / "p.db", "process", text, code)
    assert by_process == by_thread
    assert [row[3] for row in by_process[1]] == [f"6012{n:07d}" for n in range(6)]
    assert {row[7] for row in by_process[1]} == {OutcomeStatus.ACCEPTED}


async def test_a_job_named_by_a_callers_own_str_class_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    """The job's name goes in every frame (adopt, drop, each call): as a plain ``str``."""
    text, _ = _callers_classes(monkeypatch)
    job = text("campaign-7")
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job(job, gateway="isms")
        entries = sms_entries(3)
        plan = await ledger.plan_and_begin_unit(job, entries)
        await ledger.settle_unit(job, accepted(list(plan.send)))
        await ledger.close_job(job)
        assert (await ledger.summary("campaign-7")).outcomes[OutcomeStatus.ACCEPTED] == 3


async def test_a_frame_the_child_cannot_read_fails_its_request_not_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    """Whatever else of the caller's reaches a frame (a clock's own number class, say):
    the child read the whole frame, so it answers that request with an error and goes
    on, rather than dying and failing the ledger for good. (A ``str`` or ``int`` of the
    caller's goes as its plain value: ``_writer_calls.dumps``.)"""
    _callers_classes(monkeypatch)
    module = sys.modules["qa_callers_own_module"]

    class Seconds(float):
        __slots__ = ()

    Seconds.__module__, Seconds.__qualname__ = module.__name__, "Seconds"
    module.Seconds = Seconds  # type: ignore[attr-defined]
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        writer = _writer_of(ledger)
        with pytest.raises(LedgerError, match="could not read") as refused:
            await writer.request(("drop", Seconds(1234.5)))
        assert "1234.5" not in str(refused.value)
        entries = sms_entries(2)
        await ledger.begin_unit("j", entries)
        await ledger.settle_unit("j", accepted(entries))
        assert (await ledger.summary("j")).outcomes[OutcomeStatus.ACCEPTED] == 2


async def test_a_request_interrupted_before_its_answer_leaves_no_answer_to_misread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    """Ctrl-C lands mid-request (trio raises ``KeyboardInterrupt`` at any checkpoint;
    ``anyio.run`` then returns, and the ledger may be used by the next one): its answer,
    left in the pipe, was read as the answer to the next request, a unit's plan given to
    another. The writer refuses every call from then on instead."""
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        real = _writer_pipes.read_some
        interrupted: list[bool] = []

        async def interrupting(fd: int, owed: Any) -> bytes:
            if not interrupted:
                interrupted.append(True)
                raise KeyboardInterrupt
            return await real(fd, owed)

        monkeypatch.setattr(_writer_client, "_read_some", interrupting)
        with pytest.raises(KeyboardInterrupt):
            await ledger.plan("j", sms_entries(2))
        with pytest.raises(LedgerError, match="interrupted"):
            await ledger.plan_and_begin_unit("j", sms_entries(2, start=5))


async def test_sigterm_to_the_whole_group_leaves_the_writer_to_the_parent(
    tmp_path: Path, clock: Clock
) -> None:
    """systemd (``KillMode=control-group``) and ``kill -TERM -PGID`` send SIGTERM to every
    process of the service; the CLI takes it as Ctrl-C and settles what is in flight, so
    its writer must still be there (it ends when the parent does: its stdin ends)."""
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        entries = sms_entries(3)
        await ledger.begin_unit("j", entries)
        child = _writer_of(ledger).pid
        os.kill(child, signal.SIGTERM)
        assert not _gone(child, within=1)
        await ledger.settle_unit("j", accepted(entries))
        assert (await ledger.summary("j")).outcomes[OutcomeStatus.ACCEPTED] == 3
    assert _gone(child)


def _fork_sleeping(seconds: float) -> int:
    """A forked copy of this process that sleeps (as a pre-forking server's worker or a
    ``multiprocessing`` fork would live on), holding whatever descriptors it inherited."""
    with warnings.catch_warnings():  # 3.12+: fork() of a process with threads warns
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the copy)
        time.sleep(seconds)
        os._exit(0)
    return pid


async def test_a_fork_after_the_writer_started_does_not_hold_its_pipe(
    tmp_path: Path, clock: Clock
) -> None:
    """A fork inherited the writer's stdin: the writer never saw it end, so ``aclose``
    waited its 30 s and killed it, and a parent killed left it running while the fork
    lived. The fork lets go of the pipes (it cannot use them anyway)."""
    ledger = SqliteLedger(tmp_path / "l.db", clock=clock, writer="process")
    async with ledger:
        await ledger.open_job("j", gateway="isms")
        child = _writer_of(ledger).pid
        fork = _fork_sleeping(120)
        try:
            await ledger.begin_unit("j", sms_entries(2))
            started = time.monotonic()
            await ledger.aclose()
            assert time.monotonic() - started < 20  # not the 30 s of a writer killed
            assert _gone(child, within=1)
        finally:
            os.kill(fork, signal.SIGKILL)
            await anyio.to_thread.run_sync(os.waitpid, fork, 0)


async def test_the_writer_imports_nothing_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    """``python -c`` puts the working directory first on ``sys.path``: a ``types.py`` or
    ``signal.py`` of the user's project there (where the parent, run as a script or an
    installed command, never looks) was imported by the writer in place of the standard
    library's, and killed it."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("types", "signal", "pickle"):
        (project / f"{name}.py").write_text('raise SystemExit("not the standard library")\n')
    monkeypatch.chdir(project)
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", sms_entries(2))
        assert (await ledger.summary("j")).total == 2


@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_ledgers_closed_are_not_kept_by_the_event_loop(
    tmp_path: Path, clock: Clock, writer: str
) -> None:
    """A long-lived loop that opens and closes ledgers (one a tenant, one a day): each
    one's batchers, kept per loop, held its store and writer (and their closed
    connection and pipes) for as long as the loop ran."""
    import gc
    import weakref

    kept: list[weakref.ref[Any]] = []
    for n in range(4):
        ledger = SqliteLedger(tmp_path / f"l{n}.db", clock=clock, writer=writer)  # type: ignore[arg-type]
        async with ledger:
            await ledger.open_job("j", gateway="isms")
            entries = sms_entries(2)
            await ledger.begin_unit("j", entries)
            await ledger.settle_unit("j", accepted(entries))
            kept.append(weakref.ref(ledger._writer or ledger._store))
        del ledger
    gc.collect()
    # an idle worker thread may still hold its last call's arguments (the last store
    # closed) until its next call: one at most
    assert sum(ref() is not None for ref in kept) <= 1


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncios_own_cancellation_neither_garbles_nor_stops_the_writer(
    tmp_path: Path, clock: Clock
) -> None:
    """``asyncio.timeout`` around a blast cancels with ``task.cancel()``, which anyio's
    shield does not hold off: a request was cut between its frame and its answer (the
    writer then out of step, every later call refused). Now the request ends first and
    the cancellation lands at the caller's next await, still a ``TimeoutError``."""
    import asyncio

    fake = FakeGateway()
    messages = [Sms(to=f"6012{n:07d}", text=f"hi {n}") for n in range(3000)]
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="process") as ledger:
        async with fake.isms_client(ledger=ledger) as isms:
            for n, seconds in enumerate((0.005, 0.02, 0.05, 0.1)):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(seconds):
                        await isms.send_sms_bulk(messages, job=f"cut-{n}")
            await isms.send_sms_bulk(messages[:120], job="after")
        assert (await ledger.summary("after")).outcomes[OutcomeStatus.ACCEPTED] == 120
        claimed = 120
        for n in range(4):
            claimed += (await ledger.summary(f"cut-{n}")).total
    assert len(fake.sent) <= claimed  # nothing sent that was not claimed first


def test_loops_in_two_threads_write_through_one_writer_at_once(tmp_path: Path) -> None:
    """One ledger, an asyncio loop and a trio loop in threads of their own, blasting at
    once: they take turns at the pipes (a loop waits for the other's requests to be
    answered) and every unit lands once."""
    import threading

    ledger = SqliteLedger(tmp_path / "l.db", writer="process")
    anyio.run(ledger.open)
    failures: list[BaseException] = []

    async def blast(job: str, first: int) -> None:
        await ledger.open_job(job, gateway="isms")
        async with anyio.create_task_group() as tasks:
            for unit in range(20):
                entries = sms_entries(25, start=first + 25 * unit)
                tasks.start_soon(_unit, ledger, job, entries)
        await ledger.close_job(job)

    def run(job: str, first: int, backend: str) -> None:
        try:
            anyio.run(blast, job, first, backend=backend)
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    threads = [
        threading.Thread(target=run, args=(f"j{n}", 10_000 * n, backend))
        for n, backend in enumerate(("asyncio", "trio", "asyncio"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []

    async def check() -> list[int]:
        try:
            return [(await ledger.summary(f"j{n}")).total for n in range(3)]
        finally:
            await ledger.aclose()

    assert anyio.run(check) == [500, 500, 500]


async def _unit(ledger: SqliteLedger, job: str, entries: list[Entry]) -> None:
    plan = await ledger.plan_and_begin_unit(job, entries)
    await ledger.settle_unit(job, accepted(list(plan.send)))


def _odder_classes(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Stranger classes of the caller's, in a module the child cannot import: a ``str``
    with a ``__reduce__`` of its own, an ``int`` whose ``__index__``, ``__int__`` and
    ``__str__`` lie, a ``StrEnum``."""
    module = types.ModuleType("qa_callers_odder_module")

    class Reduced(str):
        __slots__ = ()

        def __reduce__(self) -> Any:
            return (Reduced, ("what __reduce__ says",))

        def __str__(self) -> str:
            return "not the characters"

    class Liar(int):
        __slots__ = ()

        def __index__(self) -> int:
            return 1

        def __int__(self) -> int:
            return 2

        def __str__(self) -> str:
            return "3"

    class Channel(enum.StrEnum):
        SMS = "sms-channel"

    for cls in (Reduced, Liar, Channel):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return types.SimpleNamespace(Reduced=Reduced, Liar=Liar, Channel=Channel)


async def _journal_odder(path: Path, writer: str, odd: types.SimpleNamespace) -> Any:
    """Every column a frame carries, of the odder classes: numbers, texts, seqnos, refs
    (a NaN among them), a job's name; reasons, message and request ids, codes (a ``bool``
    too), indices of a unit accepted whole."""
    entries = []
    refs: list[Any] = [odd.Reduced("k0"), odd.Liar(11), math.nan, odd.Channel.SMS, None, None]
    for n, ref in enumerate(refs):
        to = odd.Reduced(f"6012{n:07d}")
        content = Sms(to=to, text=odd.Reduced(f"Hi {n}"))
        entries.append(Entry(n, to, ref, content, odd.Channel.SMS if n % 2 else odd.Reduced("s")))
    job = odd.Channel.SMS
    async with SqliteLedger(path, clock=Clock(), writer=writer, store_text=True) as ledger:  # type: ignore[arg-type]
        await ledger.open_job(job, gateway="smscom")
        plan = await ledger.plan_and_begin_unit(job, entries[:4])
        outcomes = [
            evolve(
                o,
                to=odd.Reduced(o.to),
                reason=odd.Channel.SMS,
                message_id=odd.Reduced(f"m{o.index}"),
                request_id=odd.Liar(99),
                code=True if o.index else odd.Liar(2000),
            )
            for o in accepted(list(plan.send))
        ]
        await ledger.settle_unit(job, outcomes)
        rest = entries[4:]
        await ledger.begin_unit(job, rest)
        indices = [odd.Liar(e.position) for e in rest]
        numbers = [odd.Reduced(e.to) for e in rest]
        ids = [odd.Channel.SMS for _ in rest]
        await ledger.settle_accepted(job, indices, numbers, [e.ref for e in rest], ids, odd.Liar(7))
        await ledger.close_job(job)
    return plan, _sends(path, {e.position: e.content for e in entries})


async def test_odder_classes_in_every_column_are_written_as_by_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The frames' pickler (``_writer_calls.dumps``) sends a caller's ``str``/``int`` as
    the value SQLite binds (the characters; the number, whatever ``__index__`` or
    ``__reduce__`` say): the same plan and rows as threads, which bind them directly."""
    odd = _odder_classes(monkeypatch)
    by_thread = await _journal_odder(tmp_path / "t.db", "thread", odd)
    by_process = await _journal_odder(tmp_path / "p.db", "process", odd)
    assert [(e.position, e.seqno) for e in by_process[0].send] == [
        (e.position, e.seqno) for e in by_thread[0].send
    ]
    assert [(o.index, o.status) for o in by_process[0].outcomes] == [
        (o.index, o.status) for o in by_thread[0].outcomes
    ]
    assert by_process[1] == by_thread[1]
    assert "6012" + "0" * 7 in {row[3] for row in by_process[1]}


def _cyclic() -> list[Any]:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    return cyclic


_REFUSED_VALUES = {
    "a function as a message id": lambda o: evolve(o, message_id=lambda: "m"),
    "a cyclic reason": lambda o: evolve(o, reason=_cyclic()),
}


@pytest.mark.parametrize("writer", ["process", "thread"])
@pytest.mark.parametrize("refuse", list(_REFUSED_VALUES), ids=list(_REFUSED_VALUES))
async def test_a_value_pickle_refuses_fails_its_own_call_not_its_trip_nor_the_writer(
    tmp_path: Path, clock: Clock, writer: str, refuse: str
) -> None:
    """A caller's value the frames' pickler refuses (a function as a message id; a reason
    that holds itself, which pickle's fast mode refuses: a trip with no shared text is
    pickled without the memo, ``memo_pays``): its settle fails, as SQLite's binding fails
    it in a thread; the settle that shared its trip is written, and the ledger goes on. It
    failed the whole trip, and, raised while the frame was being written, was taken for a
    frame half written: the writer out of step for good ("open the ledger again"). The
    cyclic one failed the trip again: its calls were tried alone with the memo, which
    takes a cycle, so all were kept."""
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer=writer) as ledger:  # type: ignore[arg-type]
        await ledger.open_job("j", gateway="isms")
        bad, good = sms_entries(3), sms_entries(3, start=3)
        await ledger.begin_unit("j", bad)
        await ledger.begin_unit("j", good)
        refused = list(map(_REFUSED_VALUES[refuse], accepted(bad)))
        failed: list[BaseException] = []

        async def settle(outcomes: list[Any]) -> None:
            try:
                await ledger.settle_unit("j", outcomes)
            except Exception as error:
                failed.append(error)

        async with anyio.create_task_group() as tasks:  # one trip, both settles
            tasks.start_soon(settle, refused)
            tasks.start_soon(settle, accepted(good))
        assert len(failed) == 1
        assert not isinstance(failed[0], LedgerError)  # the value's own error, not the writer's
        more = sms_entries(2, start=10)
        await ledger.begin_unit("j", more)
        await ledger.settle_unit("j", accepted(more))
        summary = await ledger.summary("j")
        assert summary.outcomes[OutcomeStatus.ACCEPTED] == 5
        assert summary.in_flight == 3
