"""A statement that fails with ``SQLITE_INTERRUPT`` (or ``SQLITE_FULL``, ``SQLITE_IOERR``,
``SQLITE_NOMEM``) may make SQLite roll the whole transaction back itself, savepoints and
all: a trip's calls before it are undone with it, and the statements after it would each
be committed on its own. The writer process's trips (``rerun``) run the others again; a
thread's (a savepoint a call) fail whole; neither commits what it answers as failed, nor
answers as done what it did not commit."""

from __future__ import annotations

import io
import pickle
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from messaging_async.ledger import _lean_rows, _writer_calls
from messaging_async.ledger._batch import Call
from messaging_async.ledger._db import Connection
from messaging_async.ledger._owner import Owner
from messaging_async.ledger._schema import connect, migrate
from messaging_async.ledger._store import Store
from messaging_async.ledger._writer_serve import Inbox, Writer

from .conftest import OPENED, sms_entries

_OWNER = Owner("host", 4_194_000, 1.0)
_NOW = 1_800_000_000.0


@contextmanager
def _interrupted(conn: Connection) -> Iterator[None]:
    """Every statement run inside interrupted (``SQLITE_INTERRUPT``): SQLite rolls the
    transaction of an ``INSERT`` interrupted back whole."""
    assert isinstance(conn, sqlite3.Connection)
    conn.set_progress_handler(lambda: 1, 1)
    try:
        yield
    finally:
        conn.set_progress_handler(None, 1)


def _store(path: Path) -> Store:
    conn = connect(str(path))
    OPENED.append(conn)
    migrate(conn)
    store = Store(conn, store_text=False, lease_seconds=60.0, clock=lambda: _NOW)
    store.open_job("j", "isms", _OWNER)
    return store


def _positions(store: Store) -> list[int]:
    found = store.conn.execute("SELECT position FROM sends ORDER BY position")
    return [row[0] for row in found]


def _trip(store: Store) -> list[Call[Any]]:
    def interrupted() -> None:
        with store.write() as conn, _interrupted(conn):
            conn.execute("INSERT INTO meta (name, value) VALUES ('x', x'00')")

    return [
        Call(store.begin_unit, ("j", sms_entries(2), True)),
        Call(interrupted, ()),
        Call(store.begin_unit, ("j", sms_entries(2, start=2), True)),
    ]


def test_a_writer_process_trip_runs_its_other_calls_again(tmp_path: Path) -> None:
    store = _store(tmp_path / "l.db")
    calls = _trip(store)
    store.run_trip(calls, rerun=True)  # raised "cannot rollback - no transaction is active"
    assert [str(call.error) for call in calls] == ["None", "interrupted", "None"]
    assert _positions(store) == [0, 1, 2, 3]
    assert not store._in_trip
    assert not store._rerun
    assert not store._renewed


def test_a_threads_trip_fails_whole_with_the_calls_error(tmp_path: Path) -> None:
    store = _store(tmp_path / "l.db")
    calls = _trip(store)
    # the third call was committed on its own, the first answered done and undone, and
    # the trip failed with "cannot commit - no transaction is active"
    with pytest.raises(sqlite3.OperationalError, match=r"^interrupted$"):
        store.run_trip(calls)
    assert _positions(store) == []
    assert not store._in_trip
    assert not store._renewed
    assert isinstance(store.conn, sqlite3.Connection)
    assert not store.conn.in_transaction


def test_units_claimed_together_leave_the_trip_to_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The units of a claims call written together are interrupted: the call fails (each
    unit so), and the trip's other call, undone with it, runs again. They were claimed
    each alone in savepoints that, with no transaction open, committed each; the trip
    failed "cannot commit", its begun unit undone, every unit answered failed though
    claimed."""
    path = tmp_path / "l.db"
    with closing(connect(str(path))) as conn:
        migrate(conn)
    writer = Writer(Inbox(), io.BytesIO())
    writer.open(str(path), False, 60.0)
    assert writer.store is not None
    writer.now = _NOW
    writer.store.open_job("j", "isms", _OWNER)
    claim_columns = _lean_rows.claim_columns

    def interrupted_together(conn: Any, head: Any, unit: _lean_rows.Claims, *args: Any) -> None:
        if len(unit.positions) < 3:
            claim_columns(conn, head, unit, *args)
            return
        with _interrupted(conn):
            claim_columns(conn, head, unit, *args)

    monkeypatch.setattr(_lean_rows, "claim_columns", interrupted_together)
    units = [sms_entries(2), sms_entries(1, start=2), sms_entries(1, start=3)]
    ops = [_writer_calls.begin_unit("j", sms_entries(1, start=9), True)[:2]]
    ops += [_writer_calls.plan_and_begin("j", unit, False, True)[:2] for unit in units]
    answers = writer.answer(pickle.loads(pickle.dumps(("trip", _NOW, ops))))  # noqa: S301
    assert [str(error) for _, error in answers] == ["None", *["interrupted"] * 3]
    assert _positions(writer.store) == [9]
    writer.close()
