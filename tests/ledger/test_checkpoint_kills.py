"""A real SIGKILL while the writer process's idle checkpoint (``ledger._checkpoints``)
copies a blast's write-ahead file into the database: of the writer process itself, or of
its parent (whose writer then ends, the checkpoint under way finished first). Either way
the reopened file is intact, every row the blast committed is in it, and the job resumed
sends nothing twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import pytest

from messaging_async import OutcomeStatus, Sms, SqliteLedger
from messaging_async.testing import FakeGateway

from .test_writer_process import ROOT, _gone

pytestmark = pytest.mark.anyio

SMS = 30_000
"""Enough for a write-ahead file of ~2,500 pages, whose checkpoint takes ~15-20 ms here."""

_BLAST = textwrap.dedent(
    """
    import sys, time, anyio
    from messaging_async import Sms, SqliteLedger
    from messaging_async.testing import FakeGateway

    async def main():
        async with SqliteLedger(sys.argv[1], writer="process") as ledger:
            await ledger.open_job("warm-up", gateway="isms")  # the writer process started
            await ledger.close_job("warm-up")
            print(ledger._writer.pid, flush=True)
            async with FakeGateway().isms_client(ledger=ledger) as isms:
                smses = [Sms(to=f"6012{i:07d}", text=f"Hi {i}") for i in range(int(sys.argv[2]))]
                await isms.send_sms_bulk(smses, job="j")
            time.sleep(600)

    anyio.run(main)
    """
)


WAL_BYTES = 8_000_000
"""The write-ahead file's size past which the blast is nearly done (~10 MB at its end)."""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _smses() -> list[Sms]:
    return [Sms(to=f"6012{i:07d}", text=f"Hi {i}") for i in range(SMS)]


def _blast_then_kill(path: Path, victim: str) -> tuple[int, int]:
    """A blast of ``SMS`` in a child process, then ``victim`` (``"writer"`` or
    ``"parent"``) SIGKILLed as soon as the database file grows (the idle checkpoint's
    first pages), and the parent killed too: the writer process's pid and the database
    file's size at the kill."""
    parent = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", _BLAST, str(path), str(SMS)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert parent.stdout is not None
        writer = int(parent.stdout.readline())
        wal, deadline = path.with_name("l.db-wal"), time.monotonic() + 60
        while _size(wal) < WAL_BYTES and time.monotonic() < deadline:
            time.sleep(0.001)  # the blast under way
        before = path.stat().st_size
        while path.stat().st_size == before and time.monotonic() < deadline:
            pass  # a busy wait: the checkpoint copies its ~5 MB in ~15-20 ms
        os.kill(writer if victim == "writer" else parent.pid, signal.SIGKILL)
        size = path.stat().st_size
    finally:
        parent.kill()
        parent.wait(60)
        assert parent.stdout is not None
        parent.stdout.close()
    assert _gone(writer)
    return writer, size


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("victim", ["writer", "parent"])
async def test_a_kill_during_an_idle_checkpoint_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, victim: str
) -> None:
    path = tmp_path / "l.db"
    _, size = _blast_then_kill(path, victim)
    if victim == "parent":  # its writer ended as a parent's does: the file checkpointed whole
        assert not path.with_name("l.db-wal").exists()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    fake = FakeGateway()
    async with SqliteLedger(path) as ledger:
        async with fake.isms_client(ledger=ledger) as isms:
            report = await isms.send_sms_bulk(_smses(), job="j")
        summary = await ledger.summary("j")
    assert fake.sent == []  # every recipient was accepted before the kill: none sent again
    assert summary.outcomes[OutcomeStatus.ACCEPTED] == SMS
    assert report.counts["accepted"] == SMS  # from the ledger
    assert size < path.stat().st_size or victim == "parent"  # the kill came mid-copy
