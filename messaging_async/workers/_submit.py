"""``submit_blast``: a blast's recipients into the database, one Procrastinate task per slice.

Memory stays bounded whatever the input's size: one slice at a time is read, staged and
deferred, in one transaction (the database is migrated first, if it needs it). Submitting
the same job again after an interruption goes on where it stopped (the input must be the
same, in the same order: the ledger rejects any recipient whose content changed);
submitting a job that was submitted whole does nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from functools import partial
from typing import Any

import anyio.to_thread

from .._fanout import iterate_input
from ..errors import ValidationError
from ..ledger._blasts import Blast, BlastStore, Input
from ..ledger._pg_schema import DEFAULT_SCHEMA
from ..models import Sms
from ._app import TASK, make_app, slice_job
from ._db import migrate_database

__all__ = ["GATEWAYS", "submit_blast"]

GATEWAYS = ("isms", "smscommy")


async def submit_blast(
    dsn: str,
    job: str,
    messages: Iterable[Sms] | AsyncIterable[Sms],
    *,
    gateway: str = "isms",
    slice_size: int = 1000,
    schema: str = DEFAULT_SCHEMA,
) -> Blast:
    """Stage ``messages`` as the blast ``job`` and defer its slices; returns the blast.

    Each ``Sms`` is one recipient, in order; its position in ``messages`` is its identity
    in the job. Workers (``run_worker``) send the slices.
    """
    if gateway not in GATEWAYS:
        raise ValidationError(f"gateway must be one of {', '.join(GATEWAYS)}", field="gateway")
    if not job or "#" in job:
        raise ValidationError("a blast needs a name without '#'", field="job")
    if slice_size < 1:
        raise ValidationError("slice_size must be at least 1", field="slice_size")
    items = iterate_input(messages, what="messages")
    await anyio.to_thread.run_sync(partial(migrate_database, dsn, schema=schema))
    app = make_app(dsn, pool_size=1)
    task = app.tasks[TASK]
    async with app.open_async(), BlastStore(dsn, schema=schema) as store:
        blast = await store.create(job, gateway, slice_size)
        if blast.submitted:
            return blast
        number, staged = await store.staged(job)
        slice_size = blast.slice_size  # an interrupted submission's, whatever asked now
        position, chunk = 0, []
        async for message in _each(items):
            if not isinstance(message, Sms):
                raise ValidationError("a blast's messages must be Sms", field="messages")
            if position >= staged:
                chunk.append(Input(position, message.to, message.text))
            position += 1
            if len(chunk) == slice_size:
                await _stage(store, task, job, number, chunk)
                number, chunk = number + 1, []
        if chunk:
            await _stage(store, task, job, number, chunk)
        return await store.finish_submission(job)


async def _each(items: Any) -> Any:
    if hasattr(items, "__anext__"):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _stage(store: BlastStore, task: Any, job: str, number: int, chunk: list[Input]) -> None:
    async def defer(connection: Any) -> int:
        deferrer = task.configure(connection=connection, queueing_lock=slice_job(job, number))
        return int(await deferrer.defer_async(blast=job, slice=number))

    await store.stage_slice(job, number, chunk[0].position, chunk, defer)
