"""A journalled blast cut short in every form, on both writer modes, after the claim
became "whole" (``plan_and_begin_whole``: the journal opens no shield of its own around
a unit's claim, the cancellation landing at the unit's next checkpoint instead)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from messaging_async import OutcomeStatus, Sms, SqliteLedger
from messaging_async.ledger import Plan
from messaging_async.ledger._threaded import ThreadedLedger
from messaging_async.testing import FakeGateway, Fault

from .test_qa_ledger import _reconcile, numbers, times_sent

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _cut_at(fake: FakeGateway, mark: int, cut: Callable[[], None]) -> None:
    while len(fake.sent) < mark:  # noqa: ASYNC110 (the sandbox has no event to wait on)
        await anyio.sleep(0.001)
    cut()


async def _cut_run(form: str, send: Any, rows: list[Any], fake: FakeGateway, mark: int) -> bool:
    """One run of ``send(rows, job="j")`` cut once the gateway holds ``mark`` messages:
    by an anyio cancel scope, by asyncio's own ``task.cancel()``, or by ``asyncio.timeout``
    (rescheduled to now). Whether it was cut."""
    if form == "scope":
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(_cut_at, fake, mark, scope.cancel)
                await send(rows, job="j")
                group.cancel_scope.cancel()
        return scope.cancelled_caught
    if form == "task":
        task = asyncio.ensure_future(send(rows, job="j"))
        watch = asyncio.ensure_future(_cut_at(fake, mark, task.cancel))
        try:
            await task
        except asyncio.CancelledError:
            return True
        finally:
            watch.cancel()
        return False
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(None) as timeout:
            watch = asyncio.ensure_future(
                _cut_at(fake, mark, lambda: timeout.reschedule(loop.time()))
            )
            try:
                await send(rows, job="j")
            finally:
                watch.cancel()
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize("writer", ["process", "thread"])
@pytest.mark.parametrize("form", ["scope", "task", "timeout"])
async def test_a_blast_cut_in_any_form_leaves_nothing_in_flight_and_sends_once(
    tmp_path: Path, writer: str, form: str, anyio_backend: str
) -> None:
    """Cut at three points, then run to its end: after each cut nothing is left in flight
    (every claimed unit settled: not sent, or unknown if its request may have left);
    at the end every recipient has one outcome, an accepted one sent exactly once."""
    if form != "scope" and anyio_backend != "asyncio":
        pytest.skip("asyncio's own cancellation")
    count = 1_200
    rows = [Sms(to=to, text=f"Promo {n}") for n, to in enumerate(numbers(count))]
    marks = sorted(random.Random(f"{writer}{form}").sample(range(1, count), 3))
    fake = FakeGateway()
    fake.inject(Fault.SLOW, times=None, delay=0.02)  # recorded at once, answered later
    cut = 0
    ledger = SqliteLedger(tmp_path / "l.db", writer=writer)  # type: ignore[arg-type]
    async with ledger, fake.isms_client(ledger=ledger) as isms:
        for mark in marks:
            cut += await _cut_run(form, isms.send_sms_bulk, rows, fake, mark)
            assert (await ledger.summary("j")).in_flight == 0
        report = await isms.send_sms_bulk(rows, job="j")
        summary = await ledger.summary("j")
    assert cut == len(marks)
    statuses = _reconcile(report, summary, fake, count)
    assert statuses["accepted"] + statuses["unknown"] == count


class _Overridden(SqliteLedger):
    """A subclass whose ``plan_and_begin_unit`` awaits more after the claim: not whole."""

    async def plan_and_begin_unit(self, *args: Any, **kwargs: Any) -> Plan:
        plan = await super().plan_and_begin_unit(*args, **kwargs)
        await anyio.lowlevel.checkpoint()  # the journal's shield holds the cancellation off
        return plan


def _cancel_within_the_first_claim(
    monkeypatch: pytest.MonkeyPatch, scope: anyio.CancelScope
) -> list[bool]:
    """Cancel ``scope`` from inside the first claim's trip (in its worker thread, or where
    the writer process's frame is made), the claim committed all the same."""
    fired: list[bool] = []
    original = ThreadedLedger._unit
    loop_thread = threading.current_thread()

    def cancel() -> None:
        if not fired:
            fired.append(True)
            if threading.current_thread() is loop_thread:
                scope.cancel()
            else:
                anyio.from_thread.run_sync(scope.cancel)

    def unit(self: Any, local: Any, remote: Any, *args: Any, checkpoint: bool = True) -> Any:
        if getattr(local, "__name__", None) != "plan_and_begin":  # not a claim
            return original(self, local, remote, *args, checkpoint=checkpoint)

        def cancelling(function: Any) -> Any:
            def call(*call_args: Any) -> Any:
                cancel()
                return function(*call_args)

            return call

        return original(self, cancelling(local), cancelling(remote), *args, checkpoint=checkpoint)

    monkeypatch.setattr(ThreadedLedger, "_unit", unit)
    return fired


@pytest.mark.parametrize("writer", ["process", "thread"])
@pytest.mark.parametrize("kind", [SqliteLedger, _Overridden])
async def test_a_unit_claimed_under_a_cancellation_is_settled_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str, kind: type[SqliteLedger]
) -> None:
    """Cancelled while its claim is being committed: the claim is committed, its caller
    gets the plan (``plan_and_begin_whole``) or the journal's own shield holds the
    cancellation off (a subclass's override); either way the unit is not sent and is
    settled ``not_sent`` by the time the run returns, nothing left in flight; a resume
    sends it once. (A claim lost to its caller is still settled at the run's close, as
    an outcome noted: this checks the end, not which of the two ways got there.)"""
    rows = [Sms(to=to, text="Hi") for to in numbers(120)]
    fake = FakeGateway()
    ledger = kind(tmp_path / "l.db", writer=writer)  # type: ignore[arg-type]
    assert ledger.plan_and_begin_whole is (kind is SqliteLedger)
    async with ledger, fake.isms_client(ledger=ledger, max_concurrency=1) as isms:
        with anyio.CancelScope() as scope:
            fired = _cancel_within_the_first_claim(monkeypatch, scope)
            await isms.send_sms_bulk(rows, job="j")
        monkeypatch.undo()
        assert fired
        assert scope.cancelled_caught
        assert fake.sent == []
        summary = await ledger.summary("j")
        assert summary.in_flight == 0
        claimed = {status: n for status, n in summary.outcomes.items() if n}
        assert claimed == {OutcomeStatus.NOT_SENT: summary.total}  # units claimed: settled
        assert summary.total >= 50
        report = await isms.send_sms_bulk(rows, job="j")
    assert report.all_accepted
    assert times_sent(fake) == Counter(numbers(120))
