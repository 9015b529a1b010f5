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

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import psycopg

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

    def __init__(self, cursor: psycopg.Cursor[Any], returns_id: bool, rowcount: int | None = None):
        self._cursor = cursor
        self.rowcount = cursor.rowcount if rowcount is None else rowcount
        self.lastrowid: int | None = None
        if returns_id:
            row = cursor.fetchone()
            self.lastrowid = None if row is None else int(row[0])

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class PgConnection:
    """A psycopg connection in autocommit mode, its transactions opened and closed by the
    shared code (``BEGIN IMMEDIATE`` … ``COMMIT``), as on SQLite."""

    def __init__(self, conn: psycopg.Connection[Any]):
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> _Cursor:
        if sql == "BEGIN IMMEDIATE":
            self._conn.execute("BEGIN")
            return _Cursor(self._conn.execute(_WRITER_LOCK), False)
        statement = translate(sql)
        cursor = self._conn.execute(statement.sql, tuple(parameters))
        return _Cursor(cursor, statement.returns_id)

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> _Cursor:
        cursor = self._conn.cursor()
        if not parameters:
            return _Cursor(cursor, False, rowcount=0)
        cursor.executemany(translate(sql).sql, parameters)
        return _Cursor(cursor, False)

    def close(self) -> None:
        self._conn.close()
