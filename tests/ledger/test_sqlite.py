"""What is particular to the SQLite store: its file, its schema, its threads, its texts."""

from __future__ import annotations

import io
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import anyio
import pytest

from messaging_async import (
    JobSummary,
    LedgerError,
    LedgerRecord,
    OutcomeStatus,
    Sms,
    SqliteLedger,
)
from messaging_async._convert import to_json
from messaging_async.ledger import Entry, Ledger
from messaging_async.ledger._delivery import rank_of
from messaging_async.ledger._schema import MIGRATIONS, connect, migrate
from messaging_async.ledger._store import Store
from messaging_async.ledger._writer_serve import Inbox, Writer

from .conftest import Clock, accepted, sms_entries

pytestmark = pytest.mark.anyio

SECRET = "Your OTP is 918273"


def otp_entries() -> list[Entry]:
    return [Entry(0, "60123456789", "u1", Sms(to="60123456789", text=SECRET))]


async def test_sqlite_ledger_is_a_ledger(tmp_path: Path) -> None:
    assert isinstance(SqliteLedger(tmp_path / "l.db"), Ledger)


async def test_texts_are_not_stored_by_default_only_a_fingerprint(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "l.db"
    async with SqliteLedger(path, clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", otp_entries())
        await ledger.settle_unit("j", accepted(otp_entries()))
        records = [r async for r in ledger.records("j")]
    on_disk = _bytes_under(tmp_path)
    assert SECRET.encode() not in on_disk
    assert b"918273" not in on_disk
    assert records[0].text is None
    assert len(records[0].fingerprint or "") == 32


def _bytes_under(directory: Path) -> bytes:
    """Every byte of the ledger's files (database, WAL, shared memory)."""
    return b"".join(path.read_bytes() for path in sorted(directory.iterdir()))


async def test_store_text_keeps_the_text_out_of_reprs_and_json(
    tmp_path: Path, clock: Clock
) -> None:
    async with SqliteLedger(tmp_path / "l.db", store_text=True, clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", otp_entries())
        records = [r async for r in ledger.records("j")]
    assert records[0].text == SECRET
    assert SECRET not in repr(records[0])
    assert SECRET not in str(to_json(records[0]))
    assert "918273" not in repr(otp_entries()[0])


async def test_the_file_is_in_wal_mode_at_the_latest_schema_version(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "l.db"
    async with SqliteLedger(path, clock=clock):
        pass
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


def test_migrations_run_once_each_and_in_order(tmp_path: Path) -> None:
    with closing(connect(str(tmp_path / "l.db"))) as conn:
        steps = ("CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD COLUMN y TEXT;")
        assert migrate(conn, steps[:1]) == 0
        assert migrate(conn, steps) == 1  # only the new step runs
        assert migrate(conn, steps) == 2
        assert [row[1] for row in conn.execute("PRAGMA table_info(a)")] == ["x", "y"]


def test_a_failed_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    with closing(connect(str(tmp_path / "l.db"))) as conn:
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, ("CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y);\nBROKEN SQL;"))
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'b'").fetchone() is None


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(LedgerError, match="newer"):
        async with SqliteLedger(path):
            pass


async def test_calls_run_off_the_event_loop_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    threads: list[int] = []
    original = Store.begin_unit

    def spy(self: Store, *args: object) -> None:
        threads.append(threading.get_ident())
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "begin_unit", spy)
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer="thread") as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", sms_entries(3))
    assert threads
    assert threading.get_ident() not in threads


async def test_units_written_concurrently_all_land(tmp_path: Path, clock: Clock) -> None:
    entries = sms_entries(2000)
    async with SqliteLedger(tmp_path / "l.db", clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")

        async def unit(start: int) -> None:
            part = entries[start : start + 50]
            await ledger.begin_unit("j", part)
            await ledger.settle_unit("j", accepted(part))

        async with anyio.create_task_group() as tasks:
            for start in range(0, 2000, 50):
                tasks.start_soon(unit, start)
        summary = await ledger.summary("j")
        every = [r.index or 0 async for r in ledger.records("j")]  # more than one page
    assert summary.outcomes["accepted"] == summary.total == 2000
    assert sorted(every) == list(range(2000))


async def test_records_filter_by_outcome(tmp_path: Path, clock: Clock) -> None:
    entries = sms_entries(4)
    async with SqliteLedger(tmp_path / "l.db", clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", entries)
        await ledger.settle_unit(
            "j", [*accepted(entries[:3]), entries[3].outcome(OutcomeStatus.NOT_SENT, "refused")]
        )
        await ledger.begin_unit("j", sms_entries(1, start=4))
        in_flight = [r.index or 0 async for r in ledger.records("j", outcome="in_flight")]
        not_sent = [r.index or 0 async for r in ledger.records("j", outcome="not_sent")]
        accepted_ = [
            r.index or 0 async for r in ledger.records("j", outcome=OutcomeStatus.ACCEPTED)
        ]
    assert (not_sent, sorted(accepted_), in_flight) == ([3], [0, 1, 2], [4])


async def test_a_closed_ledger_says_so(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    with pytest.raises(LedgerError, match="not open"):
        await ledger.summary("j")


async def test_summary_and_records_convert_to_json(tmp_path: Path, clock: Clock) -> None:
    async with SqliteLedger(tmp_path / "l.db", clock=clock) as ledger:
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", sms_entries(1))
        await ledger.settle_unit("j", accepted(sms_entries(1)))
        summary = await ledger.summary("j")
        (record,) = [r async for r in ledger.records("j")]
    data = to_json(summary)
    assert isinstance(summary, JobSummary)
    assert data["outcomes"]["accepted"] == 1
    assert data["first_activity"] == "2027-01-15T08:00:00+00:00"
    assert isinstance(record, LedgerRecord)
    as_json = to_json(record)
    assert (as_json["outcome"], as_json["message_id"], as_json["index"]) == ("accepted", "m0", 0)
    assert "text" not in as_json


def test_delivery_states_rank_forward() -> None:
    order = ["unknown", "queued", "sent", "delivered", "read"]
    assert [rank_of(s) for s in order] == sorted(rank_of(s) for s in order)
    assert len({rank_of(s) for s in order}) == len(order)
    assert rank_of("failed") == rank_of("delivered") == rank_of("expired")


def test_the_writer_process_keeps_its_undo_pages_in_memory(tmp_path: Path) -> None:
    """A trip's call is a savepoint (``Store.write``): the pages it changes are kept to
    undo it alone, and past 64 KiB SQLite spilled them to a temporary file, two system
    calls a page; the writer process keeps them in memory (``Writer.open``). A connection
    that answers queries keeps SQLite's default, which spills a large sort to a file."""
    writer = Writer(Inbox(), io.BytesIO())
    writer.open(str(tmp_path / "l.db"), False, 120.0)
    assert writer.store is not None
    assert writer.store.conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
    writer.close()
    with closing(connect(str(tmp_path / "l.db"))) as conn:
        assert conn.execute("PRAGMA temp_store").fetchone()[0] == 0  # the default
