"""``SqliteLedger``: the default ledger, one SQLite file, no server."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from os import PathLike

from ..errors import LedgerError
from ._db import Connection
from ._schema import connect, migrate
from ._threaded import ThreadedLedger

__all__ = ["SqliteLedger"]


class SqliteLedger(ThreadedLedger):
    """A ledger in the SQLite file at ``path`` (created and migrated on open).

    ``store_text``: keep message texts (off by default: texts hold OTPs; a fingerprint is
    kept instead). ``lease_seconds``: how long a run on another machine is trusted to be
    alive without renewing (each unit it writes renews it). ``report_horizon``: after how
    long an accepted message without a delivery report counts as ``no_report``.
    """

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        store_text: bool = False,
        lease_seconds: float = 120.0,
        report_horizon: timedelta = timedelta(hours=72),
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(
            store_text=store_text,
            lease_seconds=lease_seconds,
            report_horizon=report_horizon,
            clock=clock,
        )
        self.path = str(path)

    def __repr__(self) -> str:
        return f"SqliteLedger({self.path!r}, store_text={self._store_text})"

    def _connect(self) -> Connection:
        """The migrated connection; a path SQLite cannot open as a database (a missing
        directory, a directory, a file that is something else) is a ``LedgerError`` that
        names it, so the command line says so in one line rather than a traceback."""
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
