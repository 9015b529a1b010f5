"""``PostgresLedger``: the ledger in a PostgreSQL database, for blasts that run on several
machines (``messaging_async.workers``) and webhook receivers on several web workers.

The same semantics as ``SqliteLedger``, by construction: the same statements and rules
(``_store``, ``_keys``, ``_delivery``, ``_queries``) over psycopg's synchronous connection
(``_pg``), driven from worker threads like the SQLite file, so it runs on asyncio and trio
alike; the same contract tests run against both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..errors import LedgerError
from ._db import Connection
from ._pg_schema import DEFAULT_SCHEMA
from ._threaded import ThreadedLedger

__all__ = ["APPLICATION_NAME", "PostgresLedger", "connect"]

APPLICATION_NAME = "messaging-async ledger"
"""How the ledger's connections name themselves to the server (``pg_stat_activity``)."""


def connect(dsn: str, schema: str = DEFAULT_SCHEMA) -> Connection:
    """A connection to the ledger in ``dsn`` (its schema created and migrated)."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise LedgerError(
            "PostgresLedger needs psycopg: pip install 'messaging-async[postgres]'"
        ) from exc
    from ._pg import PgConnection
    from ._pg_schema import migrate

    def connection() -> psycopg.Connection[Any]:
        conn = psycopg.connect(dsn, autocommit=True, application_name=APPLICATION_NAME)
        try:
            migrate(conn, schema)
            # A process stopped mid-transaction must not hold the writers' lock for ever.
            conn.execute("SET idle_in_transaction_session_timeout = '60s'")
            conn.execute("SET lock_timeout = '60s'")
        except BaseException:
            conn.close()
            raise
        return conn

    return PgConnection(connection)


class PostgresLedger(ThreadedLedger):
    """A ledger in the PostgreSQL database at ``dsn`` (a ``postgresql://`` URL or a libpq
    ``key=value`` string), in the schema ``schema`` (created and migrated on open).

    Other options as ``SqliteLedger``'s. The DSN may hold a password: it is never shown
    (not in the repr, not in errors raised here).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
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
        self._dsn = dsn
        self.schema = schema

    def __repr__(self) -> str:
        return f"PostgresLedger(schema={self.schema!r}, store_text={self._store_text})"

    def _connect(self) -> Connection:
        return connect(self._dsn, self.schema)
