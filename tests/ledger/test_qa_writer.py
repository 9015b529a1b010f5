"""The SQLite ledger's writer process under attack: jobs opened at once, cancellations,
children killed, loops in threads; each test here failed before the fix it came with."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import anyio
import pytest

from messaging_async import SqliteLedger
from messaging_async.ledger._writer_client import WriterProcess

from .conftest import Clock, accepted, sms_entries
from .test_writer_process import _gone

pytestmark = pytest.mark.anyio


async def test_jobs_opened_at_once_share_one_writer(tmp_path: Path, clock: Clock) -> None:
    """Two blasts started together on a fresh ledger: both open a job before either has
    a writer; each must not start its own (the first job's run would be told to a child
    the ledger forgot, and its units refused as "not open")."""
    started: list[WriterProcess] = []
    original = SqliteLedger._start_writer

    def spy(self: SqliteLedger) -> WriterProcess | None:
        writer = original(self)
        if writer is not None:
            started.append(writer)
        return writer

    ledger = SqliteLedger(tmp_path / "l.db", clock=clock, writer="process")
    ledger._start_writer = partial(spy, ledger)  # type: ignore[method-assign]
    async with ledger:
        async with anyio.create_task_group() as tasks:
            for job in ("a", "b", "c"):
                tasks.start_soon(partial(ledger.open_job, job, gateway="isms"))
        for n, job in enumerate(("a", "b", "c")):
            entries = sms_entries(2, start=2 * n)
            await ledger.begin_unit(job, entries)
            await ledger.settle_unit(job, accepted(entries))
        assert len(started) == 1
        for job in ("a", "b", "c"):
            assert (await ledger.summary(job)).total == 2
    assert all(_gone(writer.pid) for writer in started)
