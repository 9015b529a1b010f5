"""The writer process's write-ahead file (``ledger._checkpoints``): not checkpointed on its
commits below ``WAL_PAGES``, but whenever it has had no frame for ``IDLE_SECONDS``, in a
thread and on a connection of its own; synced within ``SYNC_SECONDS`` of a commit; and
nothing of the file's contents lost either way."""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import anyio
import pytest

from messaging_async import SqliteLedger
from messaging_async.ledger._checkpoints import IDLE_SECONDS, SYNC_SECONDS, WAL_PAGES, WalUpkeep
from messaging_async.ledger._schema import connect
from messaging_async.ledger._writer import HEAD, frame
from messaging_async.ledger._writer_serve import Inbox, Writer

from .conftest import Clock, accepted, sms_entries


def _written(path: Path, rows: int = 2_000) -> sqlite3.Connection:
    """A WAL database whose last ``rows`` rows are in its write-ahead file only (its
    connection never checkpoints: left open, the file stays)."""
    conn = connect(str(path))
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 200,)] * rows)
    return conn


def _in_file(path: Path, query: str = "SELECT count(*) FROM t") -> int:
    """``query``'s count from the database file alone, its write-ahead file left aside (a
    copy of the file, opened as it is)."""
    copy = path.with_name("copy.db")
    copy.write_bytes(path.read_bytes())
    try:
        with closing(sqlite3.connect(copy)) as conn:
            count: int = conn.execute(query).fetchone()[0]
    finally:
        copy.unlink()
    return count


def _eventually(count: Callable[[], int], expected: int = 2_000) -> int:
    """``count()`` once it is ``expected``, or its last value after 20 s; a copy of the
    file taken mid-checkpoint, or before the table is in it, counts 0."""
    deadline, found = time.monotonic() + 20, 0
    while found != expected and time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.DatabaseError):
            found = count()
        time.sleep(0.01)
    return found


def test_an_idle_checkpoint_copies_the_write_ahead_file_into_the_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.db"
    with closing(_written(path)) as conn:
        # the table's creation is in the write-ahead file too: the file alone has no ``t``
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            _in_file(path)
        checkpoints = WalUpkeep(str(path))
        checkpoints.idle()  # returns at once: the checkpoint is the thread's
        assert _eventually(lambda: _in_file(path)) == 2_000
        checkpoints.close()
        assert checkpoints.failed is None
        conn.execute("INSERT INTO t VALUES ('after')")  # the writer goes on as before
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2_001


def test_checkpoints_never_asked_for_start_no_thread(tmp_path: Path) -> None:
    checkpoints = WalUpkeep(str(tmp_path / "l.db"))
    checkpoints.close()
    checkpoints.idle()  # after the close: nothing
    assert not [t for t in threading.enumerate() if t.name == "ledger-wal"]
    assert not (tmp_path / "l.db").exists()  # no connection was ever opened


def test_a_checkpoint_that_fails_stops_them_and_fails_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    path.write_bytes(b"not a database, " * 512)
    checkpoints = WalUpkeep(str(path))
    checkpoints.idle()
    deadline = time.monotonic() + 10
    while checkpoints.failed is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(checkpoints.failed, sqlite3.DatabaseError)
    checkpoints.idle()  # no new thread, no error
    checkpoints.close()


@contextlib.contextmanager
def _reading(inbox: Inbox) -> Iterator[int]:
    """A pipe whose frames ``inbox`` reads in a thread: its write end, to close (the
    stream's end); the thread waited for and the read end closed on leaving."""
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as stream:
        thread = threading.Thread(target=inbox.read, args=(stream,), daemon=True)
        thread.start()
        try:
            yield write_end
        finally:
            with contextlib.suppress(OSError):  # closed by the test already
                os.close(write_end)
            thread.join(timeout=10)


def test_the_inbox_says_when_no_frame_came_for_a_while_once() -> None:
    inbox = Inbox()
    idled: list[float] = []
    with _reading(inbox) as write_end:
        began = time.monotonic()
        late = frame(7, ("drop", "j"))
        timer = threading.Timer(IDLE_SECONDS * 3, os.write, (write_end, late))
        timer.start()
        taken = inbox.next(lambda: idled.append(time.monotonic()))
        timer.join()
    assert taken == (False, 7, late[HEAD.size :])
    assert len(idled) == 1  # once, however long the wait
    assert idled[0] - began >= IDLE_SECONDS * 0.9
    assert inbox.next(lambda: idled.append(0.0)) is None  # the stream's end: not idle
    assert len(idled) == 1


def test_the_inbox_does_not_call_idle_while_frames_wait() -> None:
    inbox = Inbox()
    with _reading(inbox) as write_end:
        os.write(write_end, frame(1, ("drop", "j")) + frame(2, ("drop", "j"), urgent=True))
    idled: list[int] = []
    assert inbox.next(lambda: idled.append(1)) == (True, 2, frame(2, ("drop", "j"))[HEAD.size :])
    assert inbox.next(lambda: idled.append(1)) is not None
    assert idled == []


def test_the_writer_process_checkpoints_itself_only_past_wal_pages(tmp_path: Path) -> None:
    """Its commits no longer checkpoint every 1,000 pages (SQLite's default): a blast's
    claims waited for those; its own connection's bound is ``WAL_PAGES``, and the idle
    writer checkpoints the rest. A connection in the caller's process keeps the default."""
    writer = Writer(Inbox(), io.BytesIO())
    writer.open(str(tmp_path / "l.db"), False, 120.0)
    assert writer.store is not None
    assert writer.store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_PAGES
    writer.close()
    with closing(connect(str(tmp_path / "l.db"))) as conn:
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1_000


_SENT = (
    "SELECT count(*) FROM sends WHERE state = 'accepted'"
    " AND job = (SELECT id FROM jobs WHERE name = 'j')"
)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_idle_writer_process_has_checkpointed_its_jobs_rows(
    tmp_path: Path, clock: Clock
) -> None:
    """A job written by the writer process, then a pause: its rows are in the database
    file while the ledger is still open (before, they waited for 1,000 pages of the
    write-ahead file, or for the ledger's close); and the ledger's close leaves no
    write-ahead file behind, the checkpoints' connection closed first."""
    path = tmp_path / "l.db"
    async with SqliteLedger(path, clock=clock, writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        for unit in range(10):
            plan = await ledger.plan_and_begin_unit("j", sms_entries(50, start=unit * 50))
            await ledger.settle_unit("j", accepted(list(plan.send)))
        deadline = time.monotonic() + 20
        found = 0
        while found < 500 and time.monotonic() < deadline:
            await anyio.sleep(IDLE_SECONDS)
            with contextlib.suppress(sqlite3.DatabaseError):  # no table yet, or a copy
                found = _in_file(path, _SENT)  # taken mid-checkpoint: again
        assert found == 500
        await ledger.close_job("j")
    assert not path.with_name("l.db-wal").exists()


def test_commits_are_synced_soon_and_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``wrote`` (each answered frame) has the write-ahead file synced within
    ``SYNC_SECONDS``: the commits of a blast reach the disk without waiting for a
    checkpoint (a power cut loses no more than before); many commits, one sync."""
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", synced.append)
    path = tmp_path / "l.db"
    with closing(_written(path)):
        upkeep = WalUpkeep(str(path))
        for _ in range(100):
            upkeep.wrote()
        assert _eventually(lambda: len(synced), 1) == 1
        time.sleep(SYNC_SECONDS * 3)
        assert len(synced) == 1  # the hundred commits went together
        upkeep.wrote()
        assert _eventually(lambda: len(synced), 2) == 2
        # a sync is no checkpoint: the database file itself still has nothing
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            _in_file(path)
        upkeep.close()
    assert upkeep.failed is None


def test_the_writer_has_each_answered_frame_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", synced.append)
    writer = Writer(Inbox(), io.BytesIO())
    writer.open(str(tmp_path / "l.db"), False, 120.0)
    writer.reply(1, (True, None))
    assert _eventually(lambda: len(synced), 1) == 1
    writer.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(("writer", "pages"), [("process", WAL_PAGES), ("thread", 1_000)])
async def test_this_process_leaves_checkpoints_to_a_writer_process(
    tmp_path: Path, clock: Clock, writer: str, pages: int
) -> None:
    """A job's close commits in the caller's process: at a blast's end it found the
    blast's write-ahead file past 1,000 pages and checkpointed it all there, the blast
    waiting for it. Once a writer process runs (and checkpoints when idle), this
    process's connection defers to it up to ``WAL_PAGES``; in threads, SQLite's default."""
    async with SqliteLedger(tmp_path / "l.db", clock=clock, writer=writer) as ledger:  # type: ignore[arg-type]
        await ledger.open_job("j", gateway="isms")
        assert ledger._store is not None
        assert ledger._store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == pages
        await ledger.close_job("j")
