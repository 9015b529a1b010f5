"""The ledger's tests run on asyncio AND trio through anyio's pytest plugin (the suite's
``anyio_mode = "auto"``): ``anyio_backend`` here has both."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve

from messaging_async import Outcome, OutcomeStatus, PostgresLedger, Sms, SqliteLedger
from messaging_async.ledger import Entry, Ledger, _writer

from ..pgcluster import Cluster


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Clock:
    """A clock the tests move by hand: leases, seqno memory and horizons without sleeping."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


LedgerFactory = Callable[..., Ledger]


@pytest.fixture(scope="session")
def pg_ledger_dsn(pg_cluster: Cluster) -> str:
    """The database of the PostgreSQL ledgers of the contract tests (a schema each): its
    text sorts in English order, not byte order, as a production database's may — the
    ledger must not depend on the database's collation."""
    return pg_cluster.create_database(icu_locale="en-US")


@pytest.fixture(params=["sqlite", "sqlite-thread", "postgres"])
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> LedgerFactory:
    """Opens a ledger of each store the contract covers, on one database per test (for
    PostgreSQL: a schema of its own in a database of the session's throwaway cluster);
    SQLite both ways: its units written by its writer process (the default), and in
    worker threads (``writer="thread"``).

    Every ledger made by one factory shares the database: a second one stands for another
    process (or a later run) over the same file.
    """
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("pg_ledger_dsn")
        schema = "t_" + uuid.uuid4().hex[:16]

        def make_postgres(**options: Any) -> Ledger:
            options.setdefault("clock", clock)
            return PostgresLedger(dsn, schema=schema, **options)

        return make_postgres
    path = tmp_path / "ledger.db"

    writer = "thread" if request.param == "sqlite-thread" else "process"

    def make(**options: Any) -> Ledger:
        options.setdefault("clock", clock)
        options.setdefault("writer", writer)
        return SqliteLedger(path, **options)

    return make


OPENED: list[sqlite3.Connection] = []
"""Connections a test opened for a ``Store`` of its own, closed at its end (``_close_opened``)."""


@pytest.fixture(autouse=True)
def _close_opened() -> Iterator[None]:
    """Each test's own stores closed at its end: a connection left to the collector warns
    on Python 3.13 (``ResourceWarning``), failing whichever test is running then."""
    yield
    while OPENED:
        OPENED.pop().close()


@pytest.fixture
def entries_made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each unit the writer process read as ``Entry``s (``_writer._entries``),
    in order: a unit claimed straight from its columns makes none."""
    made: list[int] = []
    entries_of: Callable[..., list[Entry]] = _writer._entries

    def counted(columns: Any) -> list[Entry]:
        made.append(len(columns[0]))
        return entries_of(columns)

    monkeypatch.setattr(_writer, "_entries", counted)
    return made


def sms_entries(
    count: int, *, start: int = 0, text: str = "Hi {n}", refs: bool = False, seqnos: bool = False
) -> list[Entry]:
    """Entries for positions ``start`` … ``start + count - 1``."""
    return [
        Entry(
            position=n,
            to=f"6012{n:07d}",
            ref=f"r{n}" if refs else None,
            content=Sms(to=f"6012{n:07d}", text=text.format(n=n)),
            seqno=f"s{n}" if seqnos else None,
        )
        for n in range(start, start + count)
    ]


def accepted(entries: list[Entry], prefix: str = "m") -> list[Outcome]:
    return [
        evolve(
            entry.outcome(OutcomeStatus.ACCEPTED, "accepted"),
            message_id=f"{prefix}{entry.position}",
            code=2000,
        )
        for entry in entries
    ]


def sends_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every row of a SQLite ledger's ``sends``, each value with its SQLite type, in key
    order: what two roads that must write the same rows are compared by."""
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(sends)")]
    typed = ", ".join(f"{c}, typeof({c})" for c in columns)
    rows = conn.execute(f"SELECT {typed} FROM sends ORDER BY job, key").fetchall()  # noqa: S608
    conn.close()
    return rows
