"""``SqliteLedger``: the default ledger, one SQLite file, no server."""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from os import PathLike
from typing import Literal

from ..errors import LedgerError, ValidationError
from ._checkpoints import WAL_PAGES
from ._db import Connection
from ._schema import connect, migrate
from ._threaded import ThreadedLedger
from ._writer_client import WriterProcess

__all__ = ["SqliteLedger"]

_log = logging.getLogger("messaging_async.ledger")


class SqliteLedger(ThreadedLedger):
    """A ledger in the SQLite file at ``path`` (created and migrated on open).

    ``store_text``: keep message texts (off by default: texts hold OTPs; a fingerprint is
    kept instead). ``lease_seconds``: how long a run on another machine is trusted to be
    alive without renewing (each unit it writes renews it). ``report_horizon``: after how
    long an accepted message without a delivery report counts as ``no_report``.

    ``writer``: where a job's units are written. ``"process"``: in a writer process of its
    own, started at the ledger's first job (``_writer.main`` run by this interpreter, ended
    with the ledger): SQLite's work and its bindings are off this process's GIL and on
    another CPU, so a journalled blast costs your process about a third less CPU and goes
    faster. ``"thread"``: in worker threads of this process (also what a frozen
    application, an interpreter without ``sys.executable`` or an in-memory database
    gets). ``"auto"`` (the default): a process where this process may run on two CPUs or
    more, else threads (on one CPU the two would only take turns). Keyed single sends,
    delivery reports and queries are always answered
    in this process.
    """

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        store_text: bool = False,
        lease_seconds: float = 120.0,
        report_horizon: timedelta = timedelta(hours=72),
        clock: Callable[[], float] = time.time,
        writer: Literal["auto", "process", "thread"] = "auto",
    ):
        if writer not in ("auto", "process", "thread"):
            message = f"writer must be 'auto', 'process' or 'thread', not {writer!r}"
            raise ValidationError(message, field="writer")
        super().__init__(
            store_text=store_text,
            lease_seconds=lease_seconds,
            report_horizon=report_horizon,
            clock=clock,
        )
        self.path = str(path)
        self.writer = writer
        self._where = self.path  # the file as opened (``_connect``): the writer's too

    def __repr__(self) -> str:
        return f"SqliteLedger({self.path!r}, store_text={self._store_text})"

    def _start_writer(self) -> WriterProcess | None:
        if self.writer == "thread" or self.path in ("", ":memory:") or _frozen():
            return None
        if self.writer == "auto" and _cpus() < 2:  # it would take turns with the loop anyway
            return None
        try:
            writer = WriterProcess(
                self._where,
                store_text=self._store_text,
                lease_seconds=self._lease,
                clock=self._clock,
            )
        except OSError as error:  # no process can be started here: threads will do
            _log.warning("ledger writer process not started (%s): writing in threads", error)
            return None
        self._leave_checkpoints_to_the_writer()
        return writer

    def _leave_checkpoints_to_the_writer(self) -> None:
        """This process's connection checkpoints only past ``WAL_PAGES`` too, once a writer
        process syncs the file and checkpoints it when idle (``_checkpoints``): else a
        commit of this process's (the job's close, at a blast's end) found the blast's
        write-ahead file past SQLite's 1,000 pages and checkpointed it all there, 30-40 ms
        the blast waited for. Should the writer process end, this connection still
        checkpoints at the bound, and at the ledger's close."""
        store = self._store
        if store is not None:
            with store.lock:
                store.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")

    def _connect(self) -> Connection:
        """The migrated connection; a path SQLite cannot open as a database (a missing
        directory, a directory, a file that is something else) is a ``LedgerError`` that
        names it, so the command line says so in one line rather than a traceback."""
        self._where = os.path.abspath(self.path) if self.path != ":memory:" else self.path
        try:
            conn = connect(self.path)
        except sqlite3.Error as error:
            raise LedgerError(f"cannot open the ledger {self.path}: {error}") from error
        try:
            migrate(conn)
        except sqlite3.Error as error:
            conn.close()
            raise LedgerError(f"cannot open the ledger {self.path}: {error}") from error
        except BaseException:
            conn.close()
            raise
        return conn


def _frozen() -> bool:
    """Whether this interpreter cannot run ``_writer.main``: a frozen
    application's ``sys.executable`` is the application itself."""
    return not sys.executable or bool(getattr(sys, "frozen", False))


def _cpus() -> int:
    """How many CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
