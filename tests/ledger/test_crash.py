"""A real process writing units to the ledger is SIGKILLed mid-way; the ledger survives.

After the kill, on either store (SQLite, PostgreSQL): the data is intact, every unit is
all-or-nothing (claimed and settled whole), the unit that was in flight is found in flight
and becomes ``unknown``, and the job can be resumed at once because its dead owner is
detected on this host.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import psycopg
import pytest
from anyio.abc import Process
from psycopg import sql

from messaging_async import OutcomeStatus, PostgresLedger, SqliteLedger
from messaging_async.ledger import Ledger

from ..pgcluster import Cluster
from .conftest import sms_entries

pytestmark = pytest.mark.anyio

JOB = "crash"
UNIT = 50

WRITER = """
import sys, anyio
from attrs import evolve
from messaging_async import OutcomeStatus, PostgresLedger, Sms, SqliteLedger
from messaging_async.ledger import Entry

spec, units, hang_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
kind, _, where = spec.partition(":")
if kind == "sqlite":
    opened = SqliteLedger(where)
else:
    dsn, _, schema = where.rpartition("|")
    opened = PostgresLedger(dsn, schema=schema)

async def main():
    async with opened as ledger:
        await ledger.open_job("crash", gateway="isms")
        for unit in range(units):
            entries = [
                Entry(n, f"6012{n:07d}", None, Sms(to=f"6012{n:07d}", text=f"Hi {n}"))
                for n in range(unit * 50, unit * 50 + 50)
            ]
            await ledger.begin_unit("crash", entries)
            print("began", unit, flush=True)
            if unit == hang_at:
                await anyio.sleep(3600)  # waiting for the gateway's answer
            outcomes = [
                evolve(e.outcome(OutcomeStatus.ACCEPTED, "ok"), message_id=f"m{e.position}")
                for e in entries
            ]
            await ledger.settle_unit("crash", outcomes)
            print("settled", unit, flush=True)

anyio.run(main)
"""


class Store:
    """One store the crash tests cover: how the writer opens it, how the test reads it."""

    def __init__(self, spec: str, ledger: Callable[[], Ledger], states: Callable[[], Rows]):
        self.spec, self.ledger, self._states = spec, ledger, states

    def states_by_unit(self) -> dict[int, Counter[str]]:
        units: dict[int, Counter[str]] = {}
        for position, state in self._states():
            units.setdefault(position // UNIT, Counter())[state] += 1
        return units


Rows = list[tuple[int, str]]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        return Store(f"sqlite:{path}", lambda: SqliteLedger(path), lambda: _sqlite_rows(path))
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    dsn, schema = cluster.dsn(), "t_" + uuid.uuid4().hex[:16]

    def rows() -> Rows:
        with psycopg.connect(dsn) as conn:
            query = sql.SQL("SELECT position, state FROM {}.sends").format(sql.Identifier(schema))
            return [(int(p), str(s)) for p, s in conn.execute(query)]

    return Store(f"postgres:{dsn}|{schema}", lambda: PostgresLedger(dsn, schema=schema), rows)


async def _run_until(store: Store, *, units: int, hang_at: int, kill_after: str) -> list[str]:
    """Start the writer, SIGKILL it once it printed ``kill_after``; returns what it printed."""
    command = [sys.executable, "-c", WRITER, store.spec, str(units), str(hang_at)]
    lines: list[str] = []
    async with await anyio.open_process(command) as process:
        try:
            with anyio.fail_after(120):
                await _read_until(process, lines, kill_after)
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
    assert process.returncode == -signal.SIGKILL
    return lines


async def _read_until(process: Process, lines: list[str], wanted: str) -> None:
    assert process.stdout is not None
    buffer = b""
    while wanted not in lines:
        buffer += await process.stdout.receive()
        *complete, buffer = buffer.split(b"\n")
        lines.extend(line.decode() for line in complete)


def _sqlite_rows(path: Path) -> Rows:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT position, state FROM sends").fetchall()
    conn.close()
    return rows


async def test_a_killed_writer_leaves_its_in_flight_unit_in_flight(store: Store) -> None:
    await _run_until(store, units=20, hang_at=7, kill_after="began 7")

    units = store.states_by_unit()
    assert sorted(units) == list(range(8))
    assert all(units[u] == Counter(accepted=UNIT) for u in range(7))
    assert units[7] == Counter(in_flight=UNIT)

    entries = sms_entries(20 * UNIT)
    async with store.ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")  # no wait: the dead owner is seen at once
        plan = await ledger.plan(JOB, entries)
    statuses = Counter(outcome.status for outcome in plan.outcomes)
    assert statuses == {OutcomeStatus.ACCEPTED: 7 * UNIT, OutcomeStatus.UNKNOWN: UNIT}
    assert [e.position for e in plan.send] == list(range(8 * UNIT, 20 * UNIT))


@pytest.mark.parametrize("kill_after", ["settled 3", "began 9", "settled 15"])
async def test_a_writer_killed_at_full_speed_leaves_whole_units(
    store: Store, kill_after: str
) -> None:
    """Killed while writing as fast as it can: each unit is claimed and settled whole."""
    lines = await _run_until(store, units=4000, hang_at=-1, kill_after=kill_after)

    settled = {int(line.split()[1]) for line in lines if line.startswith("settled")}
    units = store.states_by_unit()
    for unit, states in units.items():
        assert sum(states.values()) == UNIT, f"unit {unit} is partly written: {states}"
        assert len(states) == 1, f"unit {unit} is partly settled: {states}"
    assert all(units[unit] == Counter(accepted=UNIT) for unit in settled)
    assert sum(1 for states in units.values() if "in_flight" in states) <= 1

    async with store.ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        summary = await ledger.summary(JOB)
    assert summary.total == UNIT * len(units)
