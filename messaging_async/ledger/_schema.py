"""The SQLite schema, versioned by ``PRAGMA user_version`` and migrating itself on open.

Each migration is a script run in one transaction with the version bump, so a ledger is
always at one version or the next, never between. A file written by a newer SDK is
refused rather than guessed at.

Tables: ``jobs`` (one row per job, pointing at the run that holds it), ``runs`` (who ran
it: host, pid, process start, lease), ``sends`` (one row per recipient of a job, or per
keyed single send under job 0), ``reports`` (every delivery report, deduplicated, joined
or waiting for its send) and ``inbound`` (a WhatsApp sender's last message).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..errors import LedgerError

__all__ = ["MIGRATIONS", "connect", "migrate"]

_V1 = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    opened_at REAL NOT NULL,
    lease_until REAL NOT NULL
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    gateway TEXT NOT NULL,
    run INTEGER REFERENCES runs (id),
    created_at REAL NOT NULL,
    closed_at REAL
);
INSERT INTO jobs (id, name, gateway, created_at) VALUES (0, '', '', 0);
CREATE TABLE sends (
    job INTEGER NOT NULL,
    key TEXT NOT NULL,
    gateway TEXT NOT NULL,
    recipient TEXT NOT NULL,
    position INTEGER,
    fingerprint BLOB,
    text TEXT,
    state TEXT NOT NULL,
    code INTEGER,
    reason TEXT,
    message_id TEXT,
    request_id TEXT,
    seqno TEXT,
    run INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    began_at REAL,
    settled_at REAL,
    delivery TEXT,
    delivery_rank INTEGER NOT NULL DEFAULT -1,
    delivery_code TEXT,
    reported_at REAL,
    PRIMARY KEY (job, key)
) WITHOUT ROWID;
CREATE INDEX sends_by_message ON sends (message_id) WHERE message_id IS NOT NULL;
CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    family TEXT NOT NULL,
    message_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    status TEXT NOT NULL,
    status_code TEXT NOT NULL,
    reported_at REAL NOT NULL,
    received_at REAL NOT NULL,
    joined INTEGER NOT NULL DEFAULT 0,
    UNIQUE (family, message_id, recipient, status, status_code)
);
CREATE INDEX reports_waiting ON reports (family, message_id) WHERE joined = 0;
CREATE TABLE inbound (number TEXT PRIMARY KEY, last_at REAL NOT NULL) WITHOUT ROWID;
"""

MIGRATIONS: tuple[str, ...] = (_V1,)
"""``MIGRATIONS[n]`` takes a ledger from version ``n`` to ``n + 1``. Append, never edit."""


def connect(path: str) -> sqlite3.Connection:
    """A connection in WAL mode (readers never wait for the writer), for use by one thread
    at a time; transactions are explicit (``BEGIN IMMEDIATE`` … ``COMMIT``).

    ``synchronous=NORMAL``: a commit survives the process being killed at any moment (the
    crash the ledger is for); only a power cut can lose the last commits.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    try:  # a file that is not a database fails here: closed, not left to the collector
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the schema to the latest version; returns the version it was at."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > len(migrations):
        raise LedgerError(
            f"the ledger's schema is version {found}, newer than this SDK knows "
            f"({len(migrations)}): upgrade messaging-async to open it"
        )
    for version in range(found, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) != version:
                conn.execute("ROLLBACK")  # another process migrated meanwhile
                continue
            for statement in _statements(migrations[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return found


def _statements(script: str) -> list[str]:
    """The script's statements; ``executescript`` would commit the open transaction."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [statement for statement in statements if statement]
