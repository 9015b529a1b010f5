"""PostgreSQL speaking the shared ledger SQL: a psycopg (3) connection behind the
``_db.Connection`` interface the SQLite store's statements are written for.

The statements are written once (``_sql``, ``_store``, ``_keys``, ``_delivery``,
``_queries``); the few SQLite spellings PostgreSQL does not share are rewritten here, once
per distinct statement (cached):

- ``?`` marks become ``%s``;
- ``x IS y`` between values becomes ``IS NOT DISTINCT FROM`` (SQLite's ``IS`` compares
  NULLs as equal, PostgreSQL's only takes NULL/TRUE/FALSE);
- the two-argument ``max(a, b)`` becomes ``greatest(a, b)``;
- ``INSERT OR IGNORE`` becomes ``INSERT … ON CONFLICT DO NOTHING``;
- an insert of a run or a job returns its id (``RETURNING id``: PostgreSQL has no
  ``lastrowid``);
- ``BEGIN IMMEDIATE`` (SQLite's "one writer at a time") becomes ``BEGIN`` plus a
  transaction-scoped advisory lock of the ledger's schema: writers take turns exactly as
  they do on SQLite, so both stores have the same semantics under concurrency too (a
  unit's write is short; reads never wait).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import psycopg

from ..errors import LedgerError

__all__ = ["PgConnection", "translate"]

_WRITER_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('messaging_async ledger ' || current_schema()))"
)


class _Statement(NamedTuple):
    sql: str
    returns_id: bool


@lru_cache(maxsize=512)
def translate(statement: str) -> _Statement:
    """``statement`` (shared SQL) as PostgreSQL takes it."""
    text = statement.strip()
    ignore = text.startswith("INSERT OR IGNORE INTO")
    if ignore:
        text = "INSERT INTO" + text[len("INSERT OR IGNORE INTO") :] + " ON CONFLICT DO NOTHING"
    text = re.sub(r"\bIS (?=excluded\.|\?)", "IS NOT DISTINCT FROM ", text)
    text = re.sub(r"\bmax\(([\w.]+), ([\w.]+)\)", r"greatest(\1, \2)", text)
    text = text.replace("%", "%%").replace("?", "%s")
    returns_id = bool(re.match(r"INSERT INTO (runs|jobs)\b", text))
    if returns_id:
        text += " RETURNING id"
    return _Statement(text, returns_id)


class _Cursor:
    """What the shared code reads of a cursor, ``lastrowid`` included."""

    def __init__(
        self, cursor: psycopg.Cursor[Any] | None, returns_id: bool, rowcount: int | None = None
    ):
        self._cursor = cursor
        self.rowcount = rowcount if rowcount is not None or cursor is None else cursor.rowcount
        self.lastrowid: int | None = None
        if returns_id and cursor is not None:
            row = cursor.fetchone()
            self.lastrowid = None if row is None else int(row[0])

    def fetchone(self) -> Any:
        return None if self._cursor is None else self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return [] if self._cursor is None else self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(()) if self._cursor is None else iter(self._cursor)


class PgConnection:
    """A psycopg connection in autocommit mode, its transactions opened and closed by the
    shared code (``BEGIN IMMEDIATE`` … ``COMMIT``), as on SQLite.

    A server restart or a dropped connection is not a file that vanished: where nothing of
    the call can have happened yet (at the start of a transaction, or a read outside one)
    the connection is made again and the statement retried once; inside a transaction the
    call fails with ``LedgerError`` and its transaction is gone (the server rolled it back;
    a ``COMMIT`` whose answer was lost may have landed, which the ledger's rules make safe:
    a claim never answered is never re-sent where that could send twice).
    """

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]]):
        self._connect = connect
        self._conn = connect()
        self._in_transaction = False

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> _Cursor:
        if sql == "BEGIN IMMEDIATE":
            cursor = self._fresh(self._begin)
            self._in_transaction = True
            return cursor
        if sql in ("COMMIT", "ROLLBACK"):
            was_in, self._in_transaction = self._in_transaction, False
            if sql == "ROLLBACK" and (self._conn.broken or not was_in):
                return _Cursor(None, False)  # nothing left to roll back
        statement = translate(sql)

        def run() -> _Cursor:
            return _Cursor(
                self._conn.execute(statement.sql, tuple(parameters)), statement.returns_id
            )

        if not self._in_transaction and statement.sql.startswith("SELECT"):
            return self._fresh(run)
        return self._guarded(run)

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> _Cursor:
        if not parameters:
            return _Cursor(None, False, rowcount=0)

        def run() -> _Cursor:
            cursor = self._conn.cursor()
            cursor.executemany(translate(sql).sql, parameters)
            return _Cursor(cursor, False)

        return self._guarded(run)

    def close(self) -> None:
        self._conn.close()

    def _begin(self) -> _Cursor:
        self._conn.execute("BEGIN")
        return _Cursor(self._conn.execute(_WRITER_LOCK), False)

    def _fresh(self, run: Callable[[], _Cursor]) -> _Cursor:
        """``run()`` on a live connection, made again (and ``run`` retried once) where the
        old one was lost: only for statements that cannot have changed anything yet."""
        if self._conn.broken or self._conn.closed:
            self._reconnect()
        try:
            return run()
        except psycopg.OperationalError as error:
            if not (self._conn.broken or self._conn.closed):
                raise _refused(error) from error
        self._reconnect()
        return self._guarded(run)

    def _guarded(self, run: Callable[[], _Cursor]) -> _Cursor:
        try:
            return run()
        except psycopg.OperationalError as error:
            if not (self._conn.broken or self._conn.closed):
                # refused on a live connection: its transaction is still open, for the
                # caller's ROLLBACK (or ROLLBACK TO its savepoint) as after any failure
                raise _refused(error) from error
            self._in_transaction = False
            raise _lost() from error

    def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
        try:
            self._conn = self._connect()
        except psycopg.OperationalError as error:
            raise _lost() from error


def _lost() -> LedgerError:
    return LedgerError(
        "lost the connection to the PostgreSQL ledger; the call's transaction was rolled back"
    )


def _refused(error: psycopg.OperationalError) -> LedgerError:
    """PostgreSQL refused a statement on a live connection: psycopg files a program limit
    (an index entry too long, say) or a lack of resources under ``OperationalError``, as
    it does a dropped connection, but nothing was lost. The server's one-line message
    names no value (its details, which may quote one, are left out)."""
    what = error.diag.message_primary or type(error).__name__
    return LedgerError(f"PostgreSQL refused the ledger's statement: {what}")
