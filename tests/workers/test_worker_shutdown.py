"""A SIGTERMed worker exits even when one of its own tasks swallows the cancellation.

On a loaded machine a worker once hung after SIGTERM: its stalled-slice recovery, cancelled
once, was back in its sleep (a cancellation that lands as a wait inside the database driver
ends can be lost: ``asyncio.wait_for`` before Python 3.12 then returns the result), and the
worker waited for that task for ever. Here the recovery's query swallows its first
cancellation the same way, every time, instead of once in a few hundred runs.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import anyio
import pytest
from procrastinate.manager import JobManager

from messaging_async.workers import run_worker


async def test_a_worker_exits_after_sigterm_when_a_cancellation_is_swallowed(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    querying = asyncio.Event()
    swallowed: list[int] = []

    async def get_stalled_jobs(self: JobManager, **kwargs: Any) -> list[Any]:
        querying.set()
        try:
            await asyncio.sleep(3600)  # the query, still waiting when the worker stops
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed.append(1)  # lost, as asyncio.wait_for loses it when its wait ends
        return []

    monkeypatch.setattr(JobManager, "get_stalled_jobs", get_stalled_jobs)
    worker = asyncio.create_task(run_worker(pg_dsn, stalled_after=0.5))
    try:
        with anyio.fail_after(60):
            await querying.wait()  # the worker's signal handlers are in place by now
        signal.raise_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            await worker
    finally:
        worker.cancel()
    assert swallowed == [1]
