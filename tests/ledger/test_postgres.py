"""What is particular to the PostgreSQL store: its schema and migrations, its texts, its
SQL dialect, and ``messaging-async db migrate``. (The semantics it shares with SQLite are
the contract tests, run on both stores through ``make_ledger``.)"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import anyio
import psycopg
import pytest
from psycopg import sql

from messaging_async import JobRunningError, LedgerError, PostgresLedger
from messaging_async.ledger import Ledger
from messaging_async.ledger._pg import translate
from messaging_async.ledger._pg_schema import MIGRATIONS, migrate, version
from messaging_async.ledger._postgres import APPLICATION_NAME
from messaging_async.workers import migrate_database

from ..pgcluster import Cluster
from .conftest import Clock, accepted
from .test_sqlite import SECRET, otp_entries

pytestmark = pytest.mark.anyio


@pytest.fixture
def schema() -> str:
    return "t_" + uuid.uuid4().hex[:16]


def _dump(dsn: str, schema: str) -> str:
    """Every row of every table of ``schema``, as text."""
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        rows = []
        for (table,) in tables:
            query = sql.SQL("SELECT * FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            rows += [repr(row) for row in conn.execute(query)]
    return "\n".join(rows)


async def test_postgres_ledger_is_a_ledger() -> None:
    assert isinstance(PostgresLedger("postgresql://u@127.0.0.1/db"), Ledger)


async def test_the_dsn_and_its_password_stay_out_of_the_repr() -> None:
    ledger = PostgresLedger("postgresql://blaster:hunter2-placeholder@127.0.0.1/db")
    assert "hunter2" not in repr(ledger)
    assert "blaster" not in repr(ledger)


async def test_texts_are_not_stored_by_default_only_a_fingerprint(
    pg_cluster: Cluster, schema: str, clock: Clock
) -> None:
    dsn = pg_cluster.dsn()
    async with PostgresLedger(dsn, schema=schema, clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", otp_entries())
        await ledger.settle_unit("j", accepted(otp_entries()))
        records = [r async for r in ledger.records("j")]
    stored = _dump(dsn, schema)
    assert "60123456789" in stored  # the dump does hold the rows
    assert "918273" not in stored
    assert records[0].text is None
    assert len(records[0].fingerprint or "") == 32


async def test_store_text_keeps_the_text(pg_cluster: Cluster, schema: str) -> None:
    async with PostgresLedger(pg_cluster.dsn(), schema=schema, store_text=True) as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", otp_entries())
        records = [r async for r in ledger.records("j")]
    assert records[0].text == SECRET


async def test_the_schema_is_versioned_and_migrates_once(pg_cluster: Cluster, schema: str) -> None:
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        assert migrate(conn, schema) == 0
        assert version(conn) == len(MIGRATIONS)
        assert migrate(conn, schema) == len(MIGRATIONS)  # a second time: nothing to do
    async with PostgresLedger(pg_cluster.dsn(), schema=schema) as ledger:
        await ledger.open_job("j", gateway="isms")


async def test_a_later_migration_is_applied_in_order(pg_cluster: Cluster, schema: str) -> None:
    later = (*MIGRATIONS, "ALTER TABLE sends ADD COLUMN campaign TEXT;")
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        migrate(conn, schema)
        assert migrate(conn, schema, later) == len(MIGRATIONS)
        assert version(conn) == len(later)
        conn.execute("SELECT campaign FROM sends")


async def test_a_schema_newer_than_the_sdk_is_refused(pg_cluster: Cluster, schema: str) -> None:
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        migrate(conn, schema)
        conn.execute("UPDATE ledger_version SET version = version + 1")
    with pytest.raises(LedgerError, match="newer than this SDK"):
        async with PostgresLedger(pg_cluster.dsn(), schema=schema):
            pass


async def test_ledgers_in_other_schemas_of_one_database_are_apart(
    pg_cluster: Cluster, schema: str
) -> None:
    async with (
        PostgresLedger(pg_cluster.dsn(), schema=schema) as one,
        PostgresLedger(pg_cluster.dsn(), schema=schema + "_b") as two,
    ):
        await one.open_job("j", gateway="isms")
        await two.open_job("j", gateway="smscommy")  # no JobRunningError: another ledger
        await one.begin_unit("j", otp_entries())
        assert (await one.summary("j")).in_flight == 1
        assert (await two.summary("j")).in_flight == 0


@pytest.mark.parametrize(
    ("shared", "postgres"),
    [
        (
            "SELECT a FROM t WHERE b = ? AND c IS ?",
            "SELECT a FROM t WHERE b = %s AND c IS NOT DISTINCT FROM %s",
        ),
        (
            "UPDATE t SET a = 1 WHERE t.p IS excluded.p AND x IS NULL",
            "UPDATE t SET a = 1 WHERE t.p IS NOT DISTINCT FROM excluded.p AND x IS NULL",
        ),
        (
            "INSERT OR IGNORE INTO t (a) VALUES (?)",
            "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING",
        ),
        ("SET v = max(t.v, excluded.v)", "SET v = greatest(t.v, excluded.v)"),
        ("SELECT max(v) FROM t", "SELECT max(v) FROM t"),
        ("INSERT INTO runs (a) VALUES (?)", "INSERT INTO runs (a) VALUES (%s) RETURNING id"),
        ("INSERT INTO sends (a) VALUES (?)", "INSERT INTO sends (a) VALUES (%s)"),
        ("SELECT '50%'", "SELECT '50%%'"),
    ],
)
def test_the_shared_sql_is_translated(shared: str, postgres: str) -> None:
    assert translate(shared).sql == postgres


def test_db_migrate_installs_both_schemas_once(pg_dsn: str) -> None:
    first = migrate_database(pg_dsn)
    assert (first.ledger_from, first.ledger_to, first.procrastinate_installed) == (
        0,
        len(MIGRATIONS),
        True,
    )
    again = migrate_database(pg_dsn)
    assert (again.ledger_from, again.procrastinate_installed) == (len(MIGRATIONS), False)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (0,)
        assert conn.execute("SELECT version FROM messaging_ledger.ledger_version").fetchone()


def test_the_db_migrate_command(pg_dsn: str) -> None:
    command = [str(Path(sys.executable).parent / "messaging-async"), "db", "migrate"]
    done = subprocess.run(  # noqa: S603 - our own CLI
        command,
        env={"MESSAGING_DSN": pg_dsn, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"ledger schema: version 0 -> {len(MIGRATIONS)}" in done.stdout
    assert "procrastinate schema: installed" in done.stdout
    missing = subprocess.run(  # noqa: S603 - our own CLI
        command, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 2
    assert "MESSAGING_DSN" in missing.stderr


async def test_two_ledgers_opening_one_job_at_once_never_both_hold_it(
    pg_cluster: Cluster, schema: str
) -> None:
    """Writers take turns (as on SQLite): of two runs opening a job at the same moment, one
    holds it and the other is refused — never both (which would send twice)."""
    dsn = pg_cluster.dsn()
    async with (
        PostgresLedger(dsn, schema=schema) as one,
        PostgresLedger(dsn, schema=schema) as two,
    ):
        for attempt in range(30):
            job = f"race-{attempt}"
            if attempt % 2:  # half of them on a job an earlier run left closed
                await one.open_job(job, gateway="isms")
                await one.close_job(job)
            held: list[PostgresLedger] = []
            refused: list[BaseException] = []

            async def open_(
                ledger: PostgresLedger,
                job: str = job,
                held: list[PostgresLedger] = held,
                refused: list[BaseException] = refused,
            ) -> None:
                try:
                    await ledger.open_job(job, gateway="isms")
                    held.append(ledger)
                except Exception as error:
                    refused.append(error)

            async with anyio.create_task_group() as group:
                group.start_soon(open_, one, job)
                group.start_soon(open_, two, job)
            assert len(held) == 1, (attempt, refused)
            assert [type(e) for e in refused] == [JobRunningError], attempt
            await held[0].close_job(job)


def _terminate_ledger_connections(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (APPLICATION_NAME,),
        ).fetchall()
    return len(found)


async def test_a_lost_connection_is_made_again_where_nothing_was_under_way(
    pg_cluster: Cluster, schema: str, clock: Clock
) -> None:
    """A server restart between calls: the next read and the next unit go through on a new
    connection (nothing of them can have happened on the old one)."""
    dsn = pg_cluster.dsn()
    async with PostgresLedger(dsn, schema=schema, clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", otp_entries())
        assert _terminate_ledger_connections(dsn) == 1
        assert (await ledger.summary("j")).in_flight == 1  # a read: retried
        assert _terminate_ledger_connections(dsn) == 1
        await ledger.settle_unit("j", accepted(otp_entries()))  # a write: BEGIN retried
        summary = await ledger.summary("j")
    assert summary.outcomes["accepted"] == 1
