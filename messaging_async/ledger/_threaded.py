"""The async face both stores share: a synchronous ``Store`` driven from worker threads.

Every call runs in a worker thread (``anyio.to_thread``), so the event loop never waits
on the disk or the database server, on asyncio and trio alike; the runner's calls travel
together in trips (``_batch``): many units, one thread hop, one commit. A call that was
started is never abandoned when its caller is cancelled: a claim or an outcome is
committed whole, or not at all. ``clock`` is for tests (leases, seqno memory and horizons
without waiting).

``SqliteLedger`` and ``PostgresLedger`` differ only in how they connect and migrate
(``_connect``); the statements and the rules are the same code (``_store``). A store may
also have its jobs' units written by a writer process (``_start_writer``: SQLite's), the
same ``Store`` code in a child, sent trips down a pipe (``_writer_client``); everything
else stays in this process's threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio.to_thread

from ..errors import LedgerError
from ..models import Outcome, OutcomeStatus
from ..webhooks.events import DeliveryReport, WhatsAppInbound
from . import _delivery, _queries, _settled, _writer_calls
from ._db import Connection
from ._loop_batchers import LoopBatchers
from ._models import IN_FLIGHT, Entry, JobSummary, LedgerRecord, Plan
from ._owner import Owner
from ._store import Store
from ._writer_calls import Encoded
from ._writer_client import WriterProcess

__all__ = ["ThreadedLedger"]

T = TypeVar("T")

_PAGE = 1000


class ThreadedLedger:
    """A ledger whose ``Store`` is opened by ``_connect`` (in a worker thread).

    ``store_text``: keep message texts (off by default: texts hold OTPs; a fingerprint is
    kept instead). ``lease_seconds``: how long a run on another machine is trusted to be
    alive without renewing (each unit it writes renews it). ``report_horizon``: after how
    long an accepted message without a delivery report counts as ``no_report``.
    """

    def __init__(
        self,
        *,
        store_text: bool = False,
        lease_seconds: float = 120.0,
        report_horizon: timedelta = timedelta(hours=72),
        clock: Callable[[], float] = time.time,
    ):
        self._store_text = store_text
        self._lease = lease_seconds
        self._horizon = report_horizon.total_seconds()
        self._clock = clock
        self._store: Store | None = None
        self._writer: WriterProcess | None = None
        """Where its jobs' units are written, if not in ``_store`` (``_start_writer``)."""
        self._starting = threading.Lock()  # one writer, however many jobs open at once
        self._loops = LoopBatchers()  # each event loop's batchers of its store and lanes

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open (creating and migrating) the store; ``async with`` does it for you."""
        if self._store is None:
            self._store = await anyio.to_thread.run_sync(self._open)

    def _open(self) -> Store:
        conn = self._connect()
        try:
            return Store(
                conn, store_text=self._store_text, lease_seconds=self._lease, clock=self._clock
            )
        except BaseException:
            conn.close()
            raise

    def _connect(self) -> Connection:
        """A connection to a migrated store (in a worker thread)."""
        raise NotImplementedError

    def _not_open(self) -> LedgerError:
        name = type(self).__name__
        return LedgerError(f"the ledger is not open: use `async with {name}(...)`")

    def _start_writer(self) -> WriterProcess | None:
        """The process to write its jobs' units in, started at the first job (in a worker
        thread); ``None``: they are written in ``_store``, in worker threads."""
        return None

    def _writer_started(self) -> None:
        """``_writer`` started if it is not yet (in a worker thread). Under a lock: jobs
        opened at once (two blasts started together) would each start a child, and the
        first job's run be told to a child the ledger then forgot."""
        with self._starting:
            if self._writer is None:
                self._writer = self._start_writer()

    async def aclose(self) -> None:
        """Let go of the jobs this ledger holds and close the file."""
        store, self._store = self._store, None
        writer, self._writer = self._writer, None
        self._loops.forget(store, *(writer.lanes if writer is not None else ()))
        with anyio.CancelScope(shield=True):
            if writer is not None:  # its last trip lands before the jobs are let go
                await anyio.to_thread.run_sync(writer.close)
            if store is not None:
                await anyio.to_thread.run_sync(_close, store)

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker thread, on its own (under the store's lock)."""
        if self._store is None:
            raise self._not_open()
        return await anyio.to_thread.run_sync(partial(function, *args))

    def _batched(self, function: Callable[..., T], *args: Any) -> Awaitable[T]:
        """``function(*args)`` in the next trip of this event loop's ``Batcher``: the
        runner's calls, many units at a time in one thread trip and one commit."""
        return self._loops.call(self._open_store, function, *args)

    def _unit(
        self,
        local: Callable[..., T],
        remote: Callable[..., Encoded],
        *args: Any,
        checkpoint: bool = True,
    ) -> Awaitable[T]:
        """A job's unit call: ``local`` in the store's trips, or, where the units are
        written by a writer process, ``remote`` (its encoder) in the writer's trips."""
        store = self._open_store
        writer = self._writer
        if writer is None:
            return self._loops.call(store, local, *args, checkpoint=checkpoint)
        return self._loops.call(writer.lane(remote), remote, *args, checkpoint=checkpoint)

    @property
    def _open_store(self) -> Store:
        if self._store is None:
            raise self._not_open()
        return self._store

    # -- the runner -----------------------------------------------------------------------

    async def open_job(self, job: str, *, gateway: str, owner: Owner | None = None) -> None:
        """The job held for this run. Once the store holds it, a failure or a cancellation
        (while the writer is started, say: a thread trip, a checkpoint) lets it go again
        before it is raised: the caller, told the job was not opened, will not close it,
        and it stayed "already open in this ledger" for the ledger's life."""
        store = self._open_store
        await self._run(store.open_job, job, gateway, owner or Owner.current())
        try:
            if self._writer is None:
                await anyio.to_thread.run_sync(self._writer_started)
            writer = self._writer
            if writer is not None:
                run = store.run_of(job)
                with anyio.CancelScope(shield=True):  # the child knows the run, or is told no
                    await writer.adopt(job, run.job_id, run.run_id, run.gateway, run.fresh)
        except BaseException:
            with anyio.CancelScope(shield=True):  # else a pending cancellation lands first
                await self._run(store.close_job, job)
            raise

    async def renew_job(self, job: str) -> None:
        await self._run(self._open_store.renew_job, job)

    async def close_job(self, job: str) -> None:
        writer = self._writer
        if writer is not None:
            with anyio.CancelScope(shield=True):
                await writer.drop(job)
        await self._run(self._open_store.close_job, job)

    async def plan(
        self, job: str, entries: Sequence[Entry], *, resend_unknown: bool = False
    ) -> Plan:
        store = self._open_store
        return await self._unit(store.plan, _writer_calls.plan, job, entries, resend_unknown)

    async def begin_unit(
        self, job: str, entries: Sequence[Entry], *, expect_reports: bool = True
    ) -> None:
        store = self._open_store
        begin = _writer_calls.begin_unit
        await self._unit(store.begin_unit, begin, job, entries, expect_reports)

    async def plan_and_begin_unit(
        self,
        job: str,
        entries: Sequence[Entry],
        *,
        resend_unknown: bool = False,
        expect_reports: bool = True,
    ) -> Plan:
        """``plan``, then ``begin_unit(job, plan.send)`` if there is any, in one trip: the
        runner's unit waits for one commit before its request leaves, not two. Whole
        (``plan_and_begin_whole``): the plan is returned though the caller was cancelled
        meanwhile, the cancellation landing at its next checkpoint."""
        store = self._open_store
        remote = _writer_calls.plan_and_begin
        args = (job, entries, resend_unknown, expect_reports)
        return await self._unit(store.plan_and_begin, remote, *args, checkpoint=False)

    @property
    def plan_and_begin_whole(self) -> bool:
        """Whether ``plan_and_begin_unit`` is whole (see ``_protocol``): this class's own
        is; an override (a subclass's) may await more, and is not taken to be. The runner
        then opens no cancel scope of its own around a unit's claim: anyio's scope is the
        dearest part of the claim's event-loop work but the trip (3.2 µs a scope on
        asyncio, timeit), and this one shielded a shielded call."""
        return type(self).plan_and_begin_unit is ThreadedLedger.plan_and_begin_unit

    async def read_ahead(self, job: str, first: int, count: int) -> _settled.Ahead | None:
        """The rows an earlier run settled at input positions ``first`` … ``first + count
        - 1``, for the runner to tell, as it reads each item of a resumed job, whether it
        is settled with this very input (``_settled``); one trip, reads only. ``None``:
        this run created the job."""
        return await self._batched(_settled.read_ahead, self._open_store, job, first, count)

    async def settle_unit(self, job: str, outcomes: Sequence[Outcome]) -> None:
        store = self._open_store
        await self._unit(store.settle_unit, _writer_calls.settle, job, outcomes)

    async def settle_accepted(
        self,
        job: str,
        indices: Sequence[int],
        numbers: Sequence[str],
        refs: Sequence[Any],
        message_ids: Sequence[str | None],
        code: int | None,
    ) -> None:
        """``settle_unit`` of a unit the gateway accepted whole with one ``code``, given as
        its columns (optional, see ``_protocol``): the runner makes no ``Outcome`` for it
        unless a hook or a stream wants one."""
        store = self._open_store
        columns = (indices, numbers, refs, message_ids, code)
        await self._unit(store.settle_accepted, _writer_calls.settle_accepted, job, *columns)

    async def claim_key(
        self,
        key: str,
        entry: Entry,
        *,
        gateway: str,
        resend_unknown: bool = False,
        owner: Owner | None = None,
    ) -> Plan:
        store = self._open_store
        claim = store.keys.claim_key
        owner = owner or Owner.current()
        return await self._batched(claim, key, entry, gateway, resend_unknown, owner)

    async def settle_key(self, key: str, outcome: Outcome, *, owner: Owner | None = None) -> None:
        settle = self._open_store.keys.settle_key
        await self._batched(settle, key, outcome, owner or Owner.current())

    # -- the webhook receiver -------------------------------------------------------------

    async def record_report(self, report: DeliveryReport) -> bool:
        return await self._batched(self._write, _delivery.record_report, report)

    async def record_inbound(self, event: WhatsAppInbound) -> None:
        if not event.sender:
            return  # nobody to open a window for
        sent_at = event.timestamp.timestamp() if event.timestamp is not None else None
        await self._batched(self._write, _delivery.record_inbound, event.sender, sent_at)

    async def whatsapp_window_open(self, number: str) -> bool:
        return await self._run(self._read, _delivery.window_open, number)

    def _write(self, function: Callable[..., T], *args: Any) -> T:
        store = self._open_store
        with store.write() as conn:
            return function(conn, *args, store.clock())

    def _read(self, function: Callable[..., T], *args: Any) -> T:
        store = self._open_store
        with store.lock:
            return function(store.conn, *args, store.clock())

    # -- queries --------------------------------------------------------------------------

    async def summary(self, job: str) -> JobSummary:
        return await self._run(self._read, _summary, job, self._horizon)

    async def records(
        self, job: str, *, delivery: str | None = None, outcome: OutcomeStatus | str | None = None
    ) -> AsyncIterator[LedgerRecord]:
        """A job's records in key order, read a page at a time (memory stays flat).

        ``outcome``: an ``OutcomeStatus`` or ``"in_flight"``; ``delivery``: a delivery
        state, ``"awaiting"``, ``"no_report"`` or ``"no_report_expected"``.
        """
        after: str | None = None
        state = (
            None
            if outcome is None
            else IN_FLIGHT
            if outcome == IN_FLIGHT
            else OutcomeStatus(outcome).value
        )
        while True:
            page = await self._run(self._read, _page, job, delivery, state, after, self._horizon)
            for record in page:
                yield record
            if len(page) < _PAGE:
                return
            after = page[-1].key

    async def find(self, *, message_id: str, gateway: str) -> tuple[LedgerRecord, ...]:
        return tuple(await self._run(self._read, _find, message_id, gateway))


def _close(store: Store) -> None:
    with store.lock:  # after any trip under way, before any other
        for job in list(store.runs):
            store.close_job(job)
        store.conn.close()


def _summary(conn: Any, job: str, horizon: float, now: float) -> JobSummary:
    return _queries.summary(conn, job, now, horizon)


def _page(
    conn: Any,
    job: str,
    delivery: str | None,
    outcome: str | None,
    after: str | None,
    horizon: float,
    now: float,
) -> list[LedgerRecord]:
    return _queries.records_page(
        conn,
        job,
        delivery=delivery,
        outcome=outcome,
        after=after,
        limit=_PAGE,
        now=now,
        horizon=horizon,
    )


def _find(conn: Any, message_id: str, gateway: str, now: float) -> list[LedgerRecord]:
    return _queries.find(conn, message_id, gateway)
