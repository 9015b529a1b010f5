"""A real process writing units to the ledger is SIGKILLed mid-way; the ledger survives.

After the kill: the file is intact, every unit is all-or-nothing (claimed and settled
whole), the unit that was in flight is found in flight and becomes ``unknown``, and the
job can be resumed at once because its dead owner is detected on this host.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from messaging_async import OutcomeStatus, SqliteLedger

from .conftest import sms_entries

pytestmark = pytest.mark.anyio

JOB = "crash"
UNIT = 50

WRITER = """
import sys, anyio
from attrs import evolve
from messaging_async import OutcomeStatus, Sms, SqliteLedger
from messaging_async.ledger import Entry

path, units, hang_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

async def main():
    async with SqliteLedger(path) as ledger:
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


async def _run_until(path: Path, *, units: int, hang_at: int, kill_after: str) -> list[str]:
    """Start the writer, SIGKILL it once it printed ``kill_after``; returns what it printed."""
    command = [sys.executable, "-c", WRITER, str(path), str(units), str(hang_at)]
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


def _states_by_unit(path: Path) -> dict[int, Counter[str]]:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    units: dict[int, Counter[str]] = {}
    for position, state in conn.execute("SELECT position, state FROM sends"):
        units.setdefault(position // UNIT, Counter())[state] += 1
    conn.close()
    return units


async def test_a_killed_writer_leaves_its_in_flight_unit_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    await _run_until(path, units=20, hang_at=7, kill_after="began 7")

    units = _states_by_unit(path)
    assert sorted(units) == list(range(8))
    assert all(units[u] == Counter(accepted=UNIT) for u in range(7))
    assert units[7] == Counter(in_flight=UNIT)

    entries = sms_entries(20 * UNIT)
    async with SqliteLedger(path) as ledger:
        await ledger.open_job(JOB, gateway="isms")  # no wait: the dead owner is seen at once
        plan = await ledger.plan(JOB, entries)
    statuses = Counter(outcome.status for outcome in plan.outcomes)
    assert statuses == {OutcomeStatus.ACCEPTED: 7 * UNIT, OutcomeStatus.UNKNOWN: UNIT}
    assert [e.position for e in plan.send] == list(range(8 * UNIT, 20 * UNIT))


@pytest.mark.parametrize("kill_after", ["settled 3", "began 9", "settled 15"])
async def test_a_writer_killed_at_full_speed_leaves_whole_units(
    tmp_path: Path, kill_after: str
) -> None:
    """Killed while writing as fast as it can: each unit is claimed and settled whole."""
    path = tmp_path / "ledger.db"
    lines = await _run_until(path, units=4000, hang_at=-1, kill_after=kill_after)

    settled = {int(line.split()[1]) for line in lines if line.startswith("settled")}
    units = _states_by_unit(path)
    for unit, states in units.items():
        assert sum(states.values()) == UNIT, f"unit {unit} is partly written: {states}"
        assert len(states) == 1, f"unit {unit} is partly settled: {states}"
    assert all(units[unit] == Counter(accepted=UNIT) for unit in settled)
    assert sum(1 for states in units.values() if "in_flight" in states) <= 1

    async with SqliteLedger(path) as ledger:
        await ledger.open_job(JOB, gateway="isms")
        summary = await ledger.summary(JOB)
    assert summary.total == UNIT * len(units)
