"""The writer process's trips run without a savepoint a call (``Store.run_trip`` with
``rerun``): a call that fails rolls the trip back and the others run again without it, so
the rows committed and every call's answer are those of the savepoint road (a worker
thread's trips), joined reports included."""

from __future__ import annotations

import io
import pickle
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from messaging_async import (
    DeliveryReport,
    DeliveryStatus,
    LedgerError,
    Sms,
    WhatsAppFile,
    WhatsAppTemplate,
    WhatsAppText,
)
from messaging_async.ledger import Entry, Plan, _lean_rows, _writer_calls
from messaging_async.ledger._batch import Call
from messaging_async.ledger._delivery import record_report
from messaging_async.ledger._owner import Owner
from messaging_async.ledger._schema import connect, migrate
from messaging_async.ledger._store import Store
from messaging_async.ledger._writer_serve import Inbox, Writer

from .conftest import OPENED, sends_rows, sms_entries

_SALT = bytes(range(16))
_OWNER = Owner("host", 4_194_000, 1.0)
_NOW = 1_800_000_000.0
_WAITING = DeliveryReport(gateway="isms", message_id="m1", status=DeliveryStatus.DELIVERED)


def _prepared(path: Path) -> Path:
    """A ledger file with a known salt and a delivery report waiting for message ``m1``."""
    conn = connect(str(path))
    migrate(conn)
    conn.execute("INSERT INTO meta (name, value) VALUES ('salt', ?)", (_SALT,))
    record_report(conn, _WAITING, _NOW - 1)
    conn.close()
    return path


def _units() -> list[list[Entry]]:
    """Four units of a fresh job; the second's text has a lone surrogate, which a ledger
    that keeps texts cannot store: that unit's claim fails, the others do not."""
    bad = [Entry(n, f"6012{n:07d}", None, Sms(to="x", text="\ud800"), None) for n in (3, 4)]
    return [sms_entries(3), bad, sms_entries(3, start=5), sms_entries(2, start=8)]


def _settled(entries: list[Entry]) -> tuple[Any, ...]:
    """``settle_accepted``'s columns for ``entries``, message ids ``m<position>``."""
    positions = [entry.position for entry in entries]
    numbers = [entry.to for entry in entries]
    return positions, numbers, [None] * len(entries), [f"m{n}" for n in positions], 2000


def _reports(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM reports ORDER BY id").fetchall()
    finally:
        conn.close()


def _by_writer(path: Path) -> list[Any]:
    """In one trip through the writer process's ``Writer``, as its parent sends them: three
    units' claims, a settle of a job not open (it fails: the trip is run again), the
    fourth unit's claim, the first unit's settle; each call's answer (its error's type)."""
    writer = Writer(Inbox(), io.BytesIO())
    writer.open(str(path), True, 120.0)
    assert writer.store is not None
    writer.now = _NOW
    writer.store.open_job("j", "isms", _OWNER)
    units = _units()
    ops = [_writer_calls.plan_and_begin("j", unit, False, True)[:2] for unit in units]
    ops.insert(3, _writer_calls.settle_accepted("not-open", *_settled(units[0]))[:2])
    ops.append(_writer_calls.settle_accepted("j", *_settled(units[0]))[:2])
    trip = pickle.loads(pickle.dumps(("trip", _NOW, ops)))  # noqa: S301 (ours)
    answers = writer.answer(trip)
    writer.close()
    return [(result, error if error is None else type(error)) for result, error in answers]


def _by_thread(path: Path) -> list[Any]:
    """The same calls in one trip of ``Store.run_trip`` with a savepoint a call, as a
    worker thread runs them."""
    conn = connect(str(path))
    store = Store(conn, store_text=True, lease_seconds=120.0, clock=lambda: _NOW)
    store.open_job("j", "isms", _OWNER)
    units = _units()
    calls: list[Call[Any]] = [Call(store.plan_and_begin, ("j", u, False, True)) for u in units]
    calls.insert(3, Call(store.settle_accepted, ("not-open", *_settled(units[0]))))
    calls.append(Call(store.settle_accepted, ("j", *_settled(units[0]))))
    store.run_trip(calls)
    conn.close()
    plans = [call.result for call in calls]
    assert [len(plan.send) for plan in plans if plan is not None] == [3, 3, 2]
    return [(None, call.error if call.error is None else type(call.error)) for call in calls]


def test_a_failing_call_among_good_ones_writes_what_savepoints_write(
    tmp_path: Path, entries_made: list[int]
) -> None:
    by_writer = _by_writer(_prepared(tmp_path / "writer.db"))
    failed = [(None, None), (None, UnicodeEncodeError), (None, None), (None, LedgerError)]
    assert by_writer == [*failed, (None, None), (None, None)]
    # the units run again took the columns road again: their job's plan was put back
    assert entries_made == []
    assert by_writer == _by_thread(_prepared(tmp_path / "thread.db"))
    rows = sends_rows(tmp_path / "writer.db")
    assert rows == sends_rows(tmp_path / "thread.db")
    assert [row[2] for row in rows] == [f"p:{n:010d}" for n in (0, 1, 2, 5, 6, 7, 8, 9)]
    reports = _reports(tmp_path / "writer.db")
    assert reports == _reports(tmp_path / "thread.db")
    assert [row[-1] for row in reports] == [1]  # joined to m1's send, by the call run again


def _store(path: Path, lease: float = 60.0, now: list[float] | None = None) -> Store:
    conn = connect(str(path))
    OPENED.append(conn)
    migrate(conn)
    at = now or [_NOW]
    store = Store(conn, store_text=False, lease_seconds=lease, clock=lambda: at[0])
    store.open_job("j", "isms", _OWNER)
    return store


def _meta(store: Store) -> list[str]:
    return [row[0] for row in store.conn.execute("SELECT name FROM meta WHERE name != 'salt'")]


def test_a_call_that_fails_only_when_run_again_is_left_out_too(tmp_path: Path) -> None:
    now = [_NOW]
    store = _store(tmp_path / "l.db", now=now)
    tries: list[int] = []

    def flaky() -> None:  # fails the second time only (a disk that filled up, say)
        with store.write() as conn:
            tries.append(1)
            conn.execute("INSERT INTO meta (name, value) VALUES ('flaky', x'00')")
            if len(tries) > 1:
                raise OSError("full")

    def failing() -> None:
        with store.write() as conn:
            conn.execute("INSERT INTO meta (name, value) VALUES ('half-done', x'00')")
            raise RuntimeError("boom")

    now[0] += 30  # the trip renews the job's lease: undone, and made again
    calls: list[Call[Any]] = [
        Call(flaky, ()),
        Call(store.begin_unit, ("j", sms_entries(2), True)),
        Call(failing, ()),
        Call(store.begin_unit, ("j", sms_entries(2, start=2), True)),
    ]
    store.run_trip(calls, rerun=True)
    assert [type(call.error) for call in calls] == [OSError, type(None), RuntimeError, type(None)]
    assert len(tries) == 2
    assert _meta(store) == []
    found = store.conn.execute("SELECT position, state FROM sends ORDER BY position")
    assert found.fetchall() == [(n, "in_flight") for n in range(4)]
    lease = store.conn.execute("SELECT lease_until FROM runs").fetchone()
    assert lease == (now[0] + 60,)
    assert not store._in_trip
    assert not store._renewed
    assert isinstance(store.conn, sqlite3.Connection)
    assert not store.conn.in_transaction


class _NoSecondBegin:
    """A connection whose ``BEGIN IMMEDIATE`` fails after the first (another process
    holds the file past the timeout, say)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.begun = conn, 0

    def execute(self, statement: str, *args: Any) -> Any:
        if statement == "BEGIN IMMEDIATE":
            self.begun += 1
            if self.begun > 1:
                raise sqlite3.OperationalError("database is locked")
        return self.conn.execute(statement, *args)

    def executemany(self, statement: str, rows: Any) -> Any:
        return self.conn.executemany(statement, rows)

    def close(self) -> None:
        self.conn.close()


def test_a_trip_that_cannot_begin_again_fails_whole_and_leaves_nothing_open(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path / "l.db")
    conn = store.conn
    assert isinstance(conn, sqlite3.Connection)
    store.conn = _NoSecondBegin(conn)

    def failing() -> None:
        raise RuntimeError("boom")

    calls: list[Call[Any]] = [Call(store.begin_unit, ("j", sms_entries(2), True))]
    calls.append(Call(failing, ()))
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.run_trip(calls, rerun=True)
    assert not conn.in_transaction
    assert not store._in_trip
    assert not store._rerun
    assert conn.execute("SELECT count(*) FROM sends").fetchone() == (0,)


def _claimed_alone(path: Path, units: list[list[Entry]], store_text: bool) -> list[Any]:
    """Each unit in a trip of its own, through ``Store.plan_and_begin`` of its entries, as
    a worker thread claims them: their plans' sizes (an error's type)."""
    conn = connect(str(path))
    store = Store(conn, store_text=store_text, lease_seconds=120.0, clock=lambda: _NOW)
    store.open_job("j", "isms", _OWNER)
    sizes: list[Any] = []
    for unit in units:
        call: Call[Plan] = Call(store.plan_and_begin, ("j", unit, False, True))
        store.run_trip([call])
        plan = call.result
        sizes.append(type(call.error) if plan is None else len(plan.send))
    conn.close()
    return sizes


def _claimed_together(path: Path, trips: list[list[list[Entry]]], store_text: bool) -> list[Any]:
    """The units in ``trips`` through the writer process's ``Writer``, as its parent sends
    them: their plans' sizes (an error's type)."""
    writer = Writer(Inbox(), io.BytesIO())
    writer.open(str(path), store_text, 120.0)
    assert writer.store is not None
    writer.now = _NOW
    writer.store.open_job("j", "isms", _OWNER)
    sizes: list[Any] = []
    for units in trips:
        sent = [_writer_calls.plan_and_begin("j", unit, False, True) for unit in units]
        trip = ("trip", _NOW, [(op, args) for op, args, _ in sent])
        answers = writer.answer(pickle.loads(pickle.dumps(trip)))  # noqa: S301 (ours)
        for (_, _, read), (answer, error) in zip(sent, answers, strict=True):
            assert read is not None
            sizes.append(type(error) if error is not None else len(read(answer).send))
    writer.close()
    return sizes


@pytest.mark.parametrize("store_text", [False, True])
def test_a_trips_units_claimed_together_are_the_units_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_text: bool
) -> None:
    """Texts of every kind, seqnos in some rows and not others, a unit longer than one
    statement, WhatsApp and plain-text contents (canonical forms): each trip's units are
    written by one ``claim_columns``, the rows those of each unit claimed alone."""
    texts = [
        Entry(n, f"6012{n:07d}", None, Sms(to=f"6012{n:07d}", text=text), None)
        for n, text in enumerate(["plain", "a \x1f b", "é 中文 😀 \u2028", "", "a NUL \x00"])
    ]
    seqnos = sms_entries(5, start=10, seqnos=True)
    seqnos[2] = seqnos[2]._replace(seqno=None)
    kinds: list[object] = [
        WhatsAppText(to="60130000020", text="hello \x1f there"),
        WhatsAppTemplate(to="60130000021", template_code="otp", params={"code": 1234}),
        "a plain text",
    ]
    mixed = [Entry(400 + i, f"60130000{400 + i}", None, c, None) for i, c in enumerate(kinds)]
    file = WhatsAppFile(to="60130000410", url="https://example.invalid/a.pdf", file_name="a")
    trips = [
        [texts, sms_entries(0, start=5), seqnos, sms_entries(250, start=100, text="long {n}")],
        [mixed, [Entry(410, "60130000410", None, file, None)]],
    ]
    written: list[int] = []
    claim_columns = _lean_rows.claim_columns

    def counted(conn: Any, head: Any, unit: _lean_rows.Claims, *args: Any) -> None:
        written.append(len(unit.positions))
        claim_columns(conn, head, unit, *args)

    monkeypatch.setattr(_lean_rows, "claim_columns", counted)
    together = _claimed_together(_prepared(tmp_path / "together.db"), trips, store_text)
    assert written == [260, 4]  # a trip's units, one write
    units = [unit for trip in trips for unit in trip]
    assert together == _claimed_alone(_prepared(tmp_path / "alone.db"), units, store_text)
    assert together == [5, 0, 5, 250, 3, 1]
    rows = sends_rows(tmp_path / "together.db")
    assert len(rows) == 264
    assert rows == sends_rows(tmp_path / "alone.db")


def test_units_claimed_together_fall_back_to_each_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trip whose units cannot all be claimed straight from their columns (one keyed by
    ref, one whose text a ledger that keeps texts cannot store, a resumed job's) is
    claimed a unit at a time, each answered as it would be alone."""
    refs = sms_entries(2, start=10, refs=True)
    bad = sms_entries(250, start=100)  # its first statements written, its last failing
    bad[-1] = bad[-1]._replace(content=Sms(to="x", text="\ud800"))
    again = sms_entries(2, start=1)  # planned already: read, and rejected as repeats
    trips = [[sms_entries(3), refs, sms_entries(2, start=20)], [bad, sms_entries(2, start=400)]]
    trips.append([again, sms_entries(2, start=410)])
    together = _claimed_together(_prepared(tmp_path / "together.db"), trips, True)
    units = [unit for trip in trips for unit in trip]
    assert together == _claimed_alone(_prepared(tmp_path / "alone.db"), units, True)
    assert together == [3, 2, 2, UnicodeEncodeError, 2, 0, 2]
    assert len(sends_rows(tmp_path / "together.db")) == 3 + 2 + 2 + 2 + 2 + 2
    assert sends_rows(tmp_path / "together.db") == sends_rows(tmp_path / "alone.db")


def test_a_trip_that_fails_whole_answers_each_unit_of_its_claims() -> None:
    """Units claimed together are answered each when their trip fails whole (here: a
    writer never opened), one answer a unit, as the parent counts them."""
    writer = Writer(Inbox(), io.BytesIO())
    units = [sms_entries(2), sms_entries(2, start=2), sms_entries(1, start=4)]
    ops = [_writer_calls.plan_and_begin("j", unit, False, True)[:2] for unit in units]
    ops.insert(2, _writer_calls.settle_accepted("j", *_settled(units[0]))[:2])
    answers = writer.answer(pickle.loads(pickle.dumps(("trip", _NOW, ops))))  # noqa: S301
    assert [type(error) for _, error in answers] == [LedgerError] * 4
