"""``messaging-async db migrate``: the ledger's schema and Procrastinate's, in one database.

The ledger's schema is versioned and migrates itself (``ledger._pg_schema``); this brings
it up to date ahead of time, so that workers starting together find it ready. Procrastinate's
schema is installed when absent; later Procrastinate releases ship their own migrations,
applied as its documentation says (`procrastinate schema --apply` installs, never upgrades).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import frozen

if TYPE_CHECKING:  # psycopg is an optional extra: imported when used
    import psycopg

__all__ = ["Migrated", "migrate_database"]

_PROCRASTINATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('messaging_async procrastinate'))"


@frozen
class Migrated:
    """What ``migrate_database`` did: the ledger's schema version before and after, and
    whether Procrastinate's schema was installed now (else it was there already)."""

    ledger_from: int
    ledger_to: int
    procrastinate_installed: bool


def migrate_database(dsn: str, *, schema: str | None = None) -> Migrated:
    """Bring ``dsn``'s ledger schema to the latest version and install Procrastinate's."""
    import psycopg

    from ..ledger._pg_schema import DEFAULT_SCHEMA, MIGRATIONS, migrate

    with psycopg.connect(dsn, autocommit=True) as conn:
        found = migrate(conn, schema or DEFAULT_SCHEMA)
    with psycopg.connect(dsn, autocommit=True) as conn:
        installed = _install_procrastinate(conn)
    return Migrated(found, len(MIGRATIONS), installed)


def _install_procrastinate(conn: psycopg.Connection[Any]) -> bool:
    from procrastinate.schema import SchemaManager

    with conn.transaction():
        conn.execute(_PROCRASTINATE_LOCK)
        found = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if found is not None and found[0] is not None:
            return False
        conn.execute(SchemaManager.get_schema().encode())  # its script, run as it is
    return True
