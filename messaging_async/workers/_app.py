"""The Procrastinate side of blasts across machines: one app per database, one task
(``send_slice``) per slice of a blast, retried (by any worker) when a slice is let go.

A task's arguments are the blast's name and the slice's number: never credentials (each
worker has its own, from its environment) and never texts (the slice's recipients wait in
the database, ``ledger._blasts``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import JobRunningError

__all__ = ["TASK", "SliceReleased", "make_app", "slice_job"]

TASK = "messaging_async.send_slice"


class SliceReleased(Exception):
    """A worker shutting down let go of the rest of its slice: another worker takes it."""


def slice_job(blast: str, number: int) -> str:
    """The ledger job of one slice of ``blast`` (each slice is run as a job of its own, so
    the ledger's one-live-run rule guards every slice against two workers at once)."""
    return f"{blast}#{number:06d}"


RunSlice = Callable[[str, int], Awaitable[None]]


def make_app(dsn: str, run_slice: RunSlice | None = None, *, pool_size: int = 4) -> Any:
    """A Procrastinate ``App`` on ``dsn`` with the slice task; ``run_slice`` is what a
    worker does with a slice (a submitter, which only defers, passes none)."""
    from procrastinate import App, PsycopgConnector, RetryStrategy

    app = App(
        connector=PsycopgConnector(
            conninfo=dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"application_name": "messaging-async worker"},
        )
    )
    # Released slices and slices whose last run is not yet seen dead come back, as often as
    # it takes; any other failure is the task's (Procrastinate marks the job failed).
    retry = RetryStrategy(wait=1, retry_exceptions={SliceReleased, JobRunningError})

    async def send_slice(blast: str, slice: int) -> None:
        if run_slice is None:
            raise RuntimeError("this app only defers slices: run them with run_worker()")
        await run_slice(blast, slice)

    app.task(name=TASK, retry=retry)(send_slice)
    return app
