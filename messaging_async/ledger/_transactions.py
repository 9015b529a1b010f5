"""The transactions of the ledger's writing side (``_store.Store``): one a call, or one a
trip of calls, where each call's failure is its own.

A call of a trip is a savepoint of the trip's transaction, undone alone if it fails; in
the writer process's trips (``rerun``) a call that fails rolls the trip back instead, and
the calls before it run again without it (``Transactions.run_trip``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ._batch import Call
from ._db import Connection
from ._run import Run

__all__ = ["Transactions"]


class Transactions:
    """A connection's write transactions, under one lock; the runs of the jobs it holds
    (``runs``: their plans are put back when a trip is run again)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.lock = threading.RLock()
        self.runs: dict[str, Run] = {}
        self._in_trip = False
        self._rerun = False  # the trip is run again when a call fails (``run_trip``)
        self._renewed: list[int] = []  # runs renewed in this trip, by calls not undone

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction, under the lock: all of it commits or none of it.

        Inside a trip (``run_trip``) it is a savepoint of the trip's transaction: it
        vanishes if it fails, and is committed with the trip; or, in a trip run again
        when a call fails (``rerun``), the trip's transaction as it is.
        """
        with self.lock:
            if self._in_trip and self._rerun:
                yield self.conn
                return
            if self._in_trip:
                with self.savepoint() as conn:
                    yield conn
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self._rollback()
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[Connection]:
        """A savepoint of the trip's transaction, under the lock: it vanishes if it fails
        (a ``write`` in a trip; in a trip run again when a call fails, where a call must
        undo a part of its own work alone: ``_writer._plan_and_begin_units``)."""
        with self.lock:
            self.conn.execute("SAVEPOINT call")
            renewed = len(self._renewed)
            try:
                yield self.conn
            except BaseException:
                del self._renewed[renewed:]  # undone with the savepoint
                if self.active():  # else SQLite undid the whole trip: ``run_trip``
                    self.conn.execute("ROLLBACK TO call")
                    self.conn.execute("RELEASE call")
                raise
            self.conn.execute("RELEASE call")

    def run_trip(self, calls: Iterable[Call[Any]], *, rerun: bool = False) -> None:
        """Run a trip's calls in one transaction; each call's failure is its own.

        Each call is a savepoint (``write``), undone alone if it fails. With ``rerun`` (the
        writer process's trips) there is none: a call that fails rolls the transaction
        back, and the calls before it that had not failed run again in a new one
        (``_run_again``), so the same rows are committed and each call answered as with
        savepoints: a savepoint and its release a call cost the writer process 610
        instructions a recipient (callgrind, ``writer_replay.py``), 0.03-0.12 µs of its
        CPU, for a failure that is rare. Only for calls that may run twice: each a
        function of the file, its job's ``Run`` (put back as it was) and the trip's time
        (``_writer.OPS``), not ``KeyedSends`` (a run row it remembers making) nor a clock
        that moves on.
        """
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_trip, self._rerun = True, rerun
            ran: list[Call[Any]] = []
            planned = {run: run.unplanned for run in self.runs.values()} if rerun else {}
            try:
                for call in calls:
                    _run(call)
                    if rerun:
                        ran.append(call)
                        if call.error is not None:
                            self._run_again(ran, planned)
                    elif call.error is not None and not self.active():
                        raise call.error  # the calls before it were undone with it
            except BaseException:
                try:
                    if self._in_trip:  # not when ``_run_again`` could not begin
                        self._rollback()
                finally:
                    self._in_trip, self._rerun = False, False
                    self._renewed.clear()
                raise
            self._in_trip, self._rerun = False, False
            self._renewed.clear()
            self.conn.execute("COMMIT")

    def _run_again(self, ran: list[Call[Any]], planned: dict[Run, int]) -> None:
        """The trip's transaction rolled back, its runs' plans put back as they were
        (``planned``), and the calls of ``ran`` that have not failed run again, in order, in
        a new transaction; again if one of them fails now (it did not before: a disk
        full, say), until none does."""
        again = True
        while again:
            self._rollback()
            self._in_trip = False
            self._renewed.clear()
            for run, unplanned in planned.items():
                run.unplanned = unplanned
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_trip = again = True
            for call in ran:
                if call.error is None:
                    _run(call)
                    if call.error is not None:
                        break
            else:
                again = False

    def active(self) -> bool:
        """Whether the transaction is still open. A statement that fails with
        ``SQLITE_FULL``, ``SQLITE_IOERR``, ``SQLITE_NOMEM`` or ``SQLITE_INTERRUPT`` may
        make SQLite roll the whole transaction back itself (its savepoints with it): the
        trip's calls before it are undone too, and those after it would each be committed
        on their own (autocommit). ``PgConnection``'s server rolls a transaction back only
        with the connection lost, which fails the call (``LedgerError``)."""
        return bool(getattr(self.conn, "in_transaction", True))

    def _rollback(self) -> None:
        """``ROLLBACK``, unless SQLite rolled the transaction back already (``active``):
        a second one raised "no transaction is active", in place of the call's error."""
        if self.active():
            self.conn.execute("ROLLBACK")


def _run(call: Call[Any]) -> None:
    """``call`` run: its result, or its error."""
    try:
        call.result = call.function(*call.args)
    except Exception as exc:
        call.error = exc
