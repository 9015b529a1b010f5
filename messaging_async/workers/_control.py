"""A blast's state across its slices, and stopping it: ``jobs status`` and ``jobs cancel``,
and the stop every worker obeys after a fatal answer (credits, login).

Stopping marks the blast, cancels the slices not started (Procrastinate's ``todo`` jobs:
their recipients become ``not_sent`` in the ledger at once), and slices being sent see the
mark within a second: they finish the requests in flight and settle the rest as
``not_sent``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen

from ..errors import JobRunningError
from ..ledger import JobSummary, Ledger, PostgresLedger
from ..ledger._blasts import CANCELLED, Blast, BlastStore, Input
from ..ledger._pg_schema import DEFAULT_SCHEMA
from ..models import Outcome, OutcomeStatus
from ._app import make_app, slice_job

__all__ = ["BlastStatus", "blast_status", "cancel_blast", "combine", "settle_not_sent"]


@frozen(kw_only=True)
class BlastStatus:
    """A blast counted: ``summary`` over all its slices, and its slices by state
    (``done``, ``running``, ``waiting``, ``failed``, ``cancelled``)."""

    blast: Blast
    summary: JobSummary
    slices: Mapping[str, int]


_SLICE_STATES = {"doing": "running", "todo": "waiting", "aborted": "cancelled"}


async def blast_status(dsn: str, job: str, *, schema: str = DEFAULT_SCHEMA) -> BlastStatus | None:
    """Where the blast ``job`` stands; ``None`` if no such blast was submitted."""
    async with BlastStore(dsn, schema=schema) as store:
        blast = await store.blast(job)
        if blast is None:
            return None
        states = await store.slice_states(job)
    async with PostgresLedger(dsn, schema=schema) as ledger:
        summaries = [await ledger.summary(slice_job(job, n)) for n in range(blast.slices)]
    slices: Counter[str] = Counter(dict.fromkeys(("done", "running", "waiting"), 0))
    for state, count in states.items():
        slices[_SLICE_STATES.get(state, state)] += count
    return BlastStatus(blast=blast, summary=combine(job, summaries), slices=dict(slices))


def combine(job: str, summaries: Iterable[JobSummary]) -> JobSummary:
    """One ``JobSummary`` of many (a blast's slices)."""
    outcomes: Counter[str] = Counter()
    delivery: Counter[str] = Counter()
    total = in_flight = 0
    first: list[datetime] = []
    last: list[datetime] = []
    for summary in summaries:
        total, in_flight = total + summary.total, in_flight + summary.in_flight
        outcomes.update(summary.outcomes)
        delivery.update(summary.delivery)
        first += [summary.first_activity] if summary.first_activity else []
        last += [summary.last_activity] if summary.last_activity else []
    outcomes.update(dict.fromkeys((status.value for status in OutcomeStatus), 0))
    return JobSummary(
        job=job,
        total=total,
        outcomes=dict(outcomes),
        delivery=dict(delivery),
        in_flight=in_flight,
        first_activity=min(first, default=None),
        last_activity=max(last, default=None),
    )


async def cancel_blast(dsn: str, job: str, *, schema: str = DEFAULT_SCHEMA) -> int | None:
    """Cancel the blast ``job``; returns how many slices were cancelled before they started
    (``None``: no such blast)."""
    app = make_app(dsn, pool_size=1)
    async with (
        app.open_async(),
        BlastStore(dsn, schema=schema) as store,
        PostgresLedger(dsn, schema=schema) as ledger,
    ):
        if await store.blast(job) is None:
            return None
        return await stop_blast(app, store, ledger, job, CANCELLED, "cancelled (jobs cancel)")


async def stop_blast(
    app: Any, store: BlastStore, ledger: Ledger, job: str, state: str, reason: str
) -> int:
    """Mark the blast stopped and settle its slices not started as ``not_sent``; returns
    how many slices that was. Slices being sent stop themselves (they watch the mark)."""
    await store.stop(job, state, reason)
    blast = await store.blast(job)
    assert blast is not None
    cancelled = 0
    for number, task in await store.open_slices(job):
        if task is not None and not await app.job_manager.cancel_job_by_id_async(task):
            continue  # started, or finished: its worker settles it
        inputs = await store.slice_of(job, number)
        if inputs is None:
            continue
        try:
            await settle_not_sent(ledger, blast, number, inputs, f"not sent: blast {state}")
        except JobRunningError:
            continue  # a worker is on it after all
        await store.slice_done(job, number)
        cancelled += 1
    return cancelled


async def settle_not_sent(
    ledger: Ledger, blast: Blast, number: int, inputs: Sequence[Input], reason: str
) -> None:
    """Count a slice's recipients never claimed as ``not_sent`` (the ledger leaves alone
    any that a run claimed or settled). A recipient's index is its place in its slice, as
    the worker that sends the slice numbers it."""
    start = number * blast.slice_size
    outcomes = [
        Outcome(
            to=i.number,
            status=OutcomeStatus.NOT_SENT,
            index=i.position - start,
            ref=i.position,
            reason=reason,
        )
        for i in inputs
    ]
    job = slice_job(blast.name, number)
    await ledger.open_job(job, gateway=blast.gateway)
    try:
        await ledger.settle_unit(job, outcomes)
    finally:
        await ledger.close_job(job)
