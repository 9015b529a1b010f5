"""What the shared SQL code needs of a database connection: ``sqlite3.Connection`` as it
is, and PostgreSQL's through ``_pg.PgConnection`` (which speaks the same SQL to it).

The writing and reading sides (``_store``, ``_keys``, ``_delivery``, ``_queries``) are
written once against this, so both stores apply the same statements and the same rules.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Connection"]


class Connection(Protocol):
    """A DB-API-like connection whose ``execute`` returns a cursor (``fetchone``,
    ``fetchall``, iteration, ``rowcount``, ``lastrowid``); statements use ``?`` marks."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...

    def close(self) -> None: ...
