"""Issue 14 acceptance: crash tests over real sockets. A journalled blast runs as a
subprocess against the sandbox served on 127.0.0.1, is SIGKILLed at random moments, then
resumed until done; the ledger is reconciled with what the sandbox recorded."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio

from messaging_async import OutcomeStatus, SqliteLedger
from messaging_async.ledger import LedgerRecord
from messaging_async.testing import FakeGateway, Fault

from ._journalled_blast import JOB, recipients

SCRIPT = Path(__file__).with_name("_journalled_blast.py")
KILLS = 11  # per gateway; at least 10 of them land on a live run: 20 or more in all
START_TIMEOUT = 60.0  # seconds for a run to open its ledger (a loaded machine is slow)
RUN_TIMEOUT = 120.0


def read_records(path: Path) -> list[LedgerRecord]:
    async def read() -> list[LedgerRecord]:
        async with SqliteLedger(path) as ledger:
            return [record async for record in ledger.records(JOB)]

    return anyio.run(read)


def start(gateway: str, url: str, path: Path, count: int) -> subprocess.Popen[str]:
    root = str(Path(__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    command = [sys.executable, str(SCRIPT), gateway, url, str(path), str(count)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)  # noqa: S603
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    line = process.stdout.readline()
    assert line.strip() == "ready", line
    assert time.monotonic() < deadline
    return process


def crash_and_resume(
    gateway: str, fake: FakeGateway, url: str, path: Path, count: int, delay: float
) -> tuple[int, set[str]]:
    """Kill ``KILLS`` runs at random moments, then resume until done. Returns the kills
    and the recipients left in flight by a killed run."""
    fake.inject(Fault.SLOW, times=None, delay=delay)  # processed, then answered late
    rng = random.Random(14)
    kills, in_flight = 0, set[str]()
    for _ in range(KILLS):
        process = start(gateway, url, path, count)
        time.sleep(rng.uniform(0.05, 0.4))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(RUN_TIMEOUT)
        assert process.stdout is not None
        process.stdout.close()
        in_flight |= {r.recipient for r in read_records(path) if r.outcome is None}
    fake.clear_faults()
    process = start(gateway, url, path, count)
    out, _ = process.communicate(timeout=RUN_TIMEOUT)
    assert process.returncode == 0, out
    assert out.startswith("done")
    return kills, in_flight


def test_isms_blast_killed_and_resumed(sandbox: tuple[FakeGateway, str], tmp_path: Path) -> None:
    fake, url = sandbox
    count = 2000
    kills, in_flight = crash_and_resume("isms", fake, url, tmp_path / "l.db", count, 0.25)
    records = read_records(tmp_path / "l.db")
    sent = Counter(message.to for message in fake.sent)
    everyone = {sms.to for sms in recipients(count)}
    assert kills >= KILLS - 1
    assert max(sent.values()) == 1  # no recipient recorded twice by the gateway
    assert len(records) == count
    assert {r.recipient for r in records} == everyone  # one final outcome each
    by_status: dict[OutcomeStatus | None, set[str]] = {}
    for record in records:
        by_status.setdefault(record.outcome, set()).add(record.recipient)
    assert set(by_status) <= {OutcomeStatus.ACCEPTED, OutcomeStatus.UNKNOWN}
    assert by_status.get(OutcomeStatus.UNKNOWN, set()) <= in_flight
    assert by_status[OutcomeStatus.ACCEPTED] <= set(sent)
    assert set(sent) - by_status[OutcomeStatus.ACCEPTED] <= in_flight  # sent, answer lost


def test_smscommy_blast_killed_and_resumed(
    sandbox: tuple[FakeGateway, str], tmp_path: Path
) -> None:
    fake, url = sandbox
    count = 200
    kills, in_flight = crash_and_resume("smscommy", fake, url, tmp_path / "l.db", count, 0.1)
    records = read_records(tmp_path / "l.db")
    sent = Counter(message.to for message in fake.sent)
    assert kills >= KILLS - 1
    assert in_flight  # some were left in flight: the resend with their seqno was tested
    assert sent == Counter({sms.to: 1 for sms in recipients(count)})  # all exactly once
    assert len(records) == count
    assert all(r.outcome is OutcomeStatus.ACCEPTED for r in records)
