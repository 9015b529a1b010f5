"""The ledger's writer process SIGKILLed in the middle of a journalled blast (trips under
way: claims answered or not, settles sent and not committed): the blast fails, and the
same job run again by a new ledger ends with every recipient one outcome, none sent
twice."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import anyio
import pytest

from messaging_async import OutcomeStatus, Sms, SqliteLedger
from messaging_async.testing import FakeGateway, Fault

from .test_qa_ledger import _reconcile, numbers, times_sent

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _kill_writer_at(ledger: SqliteLedger, fake: FakeGateway, mark: int) -> None:
    while len(fake.sent) < mark:  # noqa: ASYNC110 (the sandbox has no event to wait on)
        await anyio.sleep(0.001)
    writer = ledger._writer
    assert writer is not None
    os.kill(writer.pid, signal.SIGKILL)


async def test_a_writer_killed_mid_blast_resumes_and_sends_none_twice(
    tmp_path: Path, anyio_backend: str
) -> None:
    count = 1_500
    rows = [Sms(to=to, text=f"Promo {n}") for n, to in enumerate(numbers(count))]
    mark = random.Random(anyio_backend).randrange(100, count - 300)
    fake = FakeGateway()
    fake.inject(Fault.SLOW, times=None, delay=0.01)  # requests under way when it dies
    ledger = SqliteLedger(tmp_path / "l.db", writer="process")
    async with (
        ledger,
        fake.isms_client(ledger=ledger) as isms,
        anyio.create_task_group() as group,
    ):
        group.start_soon(_kill_writer_at, ledger, fake, mark)
        cut = await isms.send_sms_bulk(rows, job="j")
    sent_before = set(times_sent(fake))
    failed = [o for o in cut.outcomes if o.status is not OutcomeStatus.ACCEPTED]
    assert failed
    assert {o.status for o in failed} == {OutcomeStatus.NOT_SENT}
    assert all("LedgerError" in str(o.reason) for o in failed)
    assert len(fake.sent) < count
    ledger = SqliteLedger(tmp_path / "l.db", writer="process")
    async with ledger, fake.isms_client(ledger=ledger) as isms:
        report = await isms.send_sms_bulk(rows, job="j")
        summary = await ledger.summary("j")
    statuses = _reconcile(report, summary, fake, count)
    assert statuses["accepted"] + statuses["unknown"] == count
    assert max(times_sent(fake).values()) == 1
    unknown = {o.to for o in report.outcomes if o.status is OutcomeStatus.UNKNOWN}
    assert unknown <= sent_before  # sent before the writer died, its settle lost with it
