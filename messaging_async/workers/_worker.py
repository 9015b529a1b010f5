"""``run_worker``: a Procrastinate worker that sends blasts' slices through the SDK.

A slice is a ledger job of its own (``slice_job``), sent with the client's ledger, so every
rule of the ledger holds per slice: recipients are claimed before their request leaves,
outcomes are committed per unit, a slice retried after its worker died resumes (iSMS
recipients left in flight are ``unknown`` and never re-sent; sms.com.my ones go again with
their seqno), and two workers can never run one slice at once.

- A fatal answer (credits, login: ``report.stopped_by``) stops the blast on every worker:
  slices not started are settled ``not_sent``; slices being sent see the mark within a
  second, finish their requests in flight and settle the rest ``not_sent``.
- SIGTERM (or SIGINT): the worker stops taking slices; each slice it is sending finishes
  its requests in flight, lets go of the rest (another worker takes the slice up where it
  stopped) and the worker exits.
- SIGKILL: the worker's heartbeat stops; after ``stalled_after`` seconds any live worker
  puts its slices back in the queue (Procrastinate's stalled-job recovery).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import anyio
import anyio.to_thread

from ..ledger import Ledger, PostgresLedger
from ..ledger._blasts import RUNNING, STOPPED, Blast, BlastStore, Input
from ..ledger._pg_schema import DEFAULT_SCHEMA
from ..models import Sms
from ._app import TASK, SliceReleased, make_app, slice_job
from ._clients import Client, ClientFactory, clients_from_environment
from ._control import settle_not_sent, stop_blast
from ._db import migrate_database

__all__ = ["run_worker"]

logger = logging.getLogger("messaging_async.workers")

WATCH_SECONDS = 1.0
"""How often a slice being sent looks whether its blast was stopped."""


async def run_worker(
    dsn: str,
    *,
    clients: ClientFactory | None = None,
    concurrency: int = 10,
    slices: int = 2,
    stalled_after: float = 30.0,
    schema: str = DEFAULT_SCHEMA,
    ready: Callable[[], None] | None = None,
) -> None:
    """Send blasts' slices until SIGTERM/SIGINT (or cancellation); asyncio only.

    ``clients``: ``(gateway, ledger) -> client`` (default: from this process's environment,
    ``concurrency`` requests in flight per gateway). ``slices``: slices sent at once.
    ``stalled_after``: seconds without a heartbeat after which a worker's slices are taken
    back. ``ready`` is called once the worker takes slices.
    """
    await anyio.to_thread.run_sync(partial(migrate_database, dsn, schema=schema))
    make_client = clients or clients_from_environment(concurrency=concurrency)
    shutting_down = asyncio.Event()
    lease = max(2 * stalled_after, 30.0)  # a dead worker elsewhere is trusted this long
    async with (
        AsyncExitStack() as stack,
        PostgresLedger(dsn, schema=schema, lease_seconds=lease) as ledger,
        BlastStore(dsn, schema=schema) as store,
    ):
        runner = _SliceRunner(store, ledger, make_client, stack, shutting_down)
        app = make_app(dsn, runner.run, pool_size=slices + 4)
        runner.app = app
        async with app.open_async():
            worker = asyncio.create_task(
                app.run_worker_async(
                    concurrency=slices,
                    install_signal_handlers=False,
                    update_heartbeat_interval=max(stalled_after / 4, 0.2),
                    stalled_worker_timeout=stalled_after,
                    fetch_job_polling_interval=1.0,
                    delete_jobs="never",
                )
            )
            recovery = asyncio.create_task(_recover_stalled(app, stalled_after))

            def stop(number: int) -> None:
                logger.warning("signal %d: finishing requests in flight, then exiting", number)
                shutting_down.set()
                worker.cancel()  # Procrastinate's graceful stop: waits for running slices

            loop = asyncio.get_running_loop()
            for number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(number, stop, number)
            try:
                if ready is not None:
                    ready()
                await worker
            except asyncio.CancelledError:
                if not shutting_down.is_set():
                    raise
            finally:
                for number in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(number)
                await _cancel_until_done(recovery)


CANCEL_AGAIN_SECONDS = 1.0
"""How long a cancelled task has to end before it is cancelled again."""


async def _cancel_until_done(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it, cancelling it again while it runs on.

    One ``cancel()`` is not enough: a cancellation that lands just as a wait inside the
    database driver ends can be swallowed (``asyncio.wait_for`` before Python 3.12 returns
    the result instead; psycopg_pool waits for a free connection that way), and the task
    goes back to its loop. Waiting for it then never returns: a SIGTERMed worker hung so
    on a loaded machine, its stalled-slice recovery back in its sleep after the
    ``cancel()``. Its error, if it ended with one, is logged.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=CANCEL_AGAIN_SECONDS)
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s ended with an error", task.get_name(), exc_info=task.exception())


async def _recover_stalled(app: Any, stalled_after: float) -> None:
    """Put back in the queue the slices of workers whose heartbeat stopped (SIGKILL, a
    machine gone): any live worker does it, repeatedly; doing it twice is harmless."""
    while True:
        await asyncio.sleep(max(stalled_after / 3, 0.5))
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                task_name=TASK, seconds_since_heartbeat=stalled_after
            )
            for job in stalled:
                logger.warning("slice %s of a stalled worker goes back to the queue", job.id)
                await app.job_manager.retry_job(job)
        except Exception:  # the next round tries again
            logger.exception("stalled-slice recovery failed")


class _SliceRunner:
    """What a worker does with one slice (``run``); one per worker, shared by its slices."""

    def __init__(
        self,
        store: BlastStore,
        ledger: Ledger,
        make_client: ClientFactory,
        stack: AsyncExitStack,
        shutting_down: asyncio.Event,
    ):
        self.store, self.ledger, self._make_client = store, ledger, make_client
        self._stack, self._shutting_down = stack, shutting_down
        self._clients: dict[str, Client] = {}
        self._opening = asyncio.Lock()
        self.app: Any = None

    async def _client(self, gateway: str) -> Client:
        """The worker's client for ``gateway``, opened on first use, shared by its slices."""
        async with self._opening:
            client = self._clients.get(gateway)
            if client is None:
                made = self._make_client(gateway, self.ledger)
                client = self._clients[gateway] = await self._stack.enter_async_context(made)
            return client

    async def run(self, name: str, number: int) -> None:
        """Send slice ``number`` of ``name``; ends with the slice done (every recipient's
        outcome final, its inputs deleted), or raises ``SliceReleased`` to hand the rest to
        another worker (Procrastinate retries the task) while this one stops."""
        blast = await self.store.blast(name)
        inputs = await self.store.slice_of(name, number)
        if blast is None or inputs is None:
            return  # done already (a duplicate task, or a retry after the slice finished)
        if blast.state != RUNNING:
            await self._close(blast, number, inputs)
            return
        if self._shutting_down.is_set():
            raise SliceReleased(f"slice {number} of {name}: this worker is stopping")
        fed = await self._send(blast, number, inputs)
        if fed < len(inputs):
            blast = await self.store.blast(name) or blast
            if blast.state == RUNNING:  # this worker is stopping: another one goes on
                raise SliceReleased(f"slice {number} of {name}: released at {fed}")
            await self._close(blast, number, inputs[fed:])
            return
        await self.store.slice_done(name, number)

    async def _send(self, blast: Blast, number: int, inputs: Sequence[Input]) -> int:
        """Send the slice until done, the blast stopped or the worker stopping; returns how
        many of its recipients were handed to the client."""
        client = await self._client(blast.gateway)
        stopped = asyncio.Event()
        fed = 0

        async def feed() -> AsyncIterator[Sms]:
            nonlocal fed
            for row in inputs:
                if stopped.is_set() or self._shutting_down.is_set():
                    return
                fed += 1
                yield Sms(to=row.number, text=row.text, ref=row.position)

        watcher = asyncio.create_task(self._watch(blast.name, stopped))
        try:
            report = await client.send_sms_bulk(feed(), job=slice_job(blast.name, number))
        finally:
            await _cancel_until_done(watcher)
        if report.stopped_by is not None:
            reason = f"stopped by the gateway's answer: {report.stopped_by}"
            logger.error("blast %s: %s", blast.name, reason)
            await stop_blast(self.app, self.store, self.ledger, blast.name, STOPPED, reason)
        return fed

    async def _watch(self, name: str, stopped: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            blast = await self.store.blast(name)
            if blast is None or blast.state != RUNNING:
                stopped.set()
                return

    async def _close(self, blast: Blast, number: int, rest: Sequence[Input]) -> None:
        """A stopped blast's slice: what was not sent is ``not_sent``, and the slice done."""
        await settle_not_sent(self.ledger, blast, number, rest, f"not sent: blast {blast.state}")
        await self.store.slice_done(blast.name, number)
