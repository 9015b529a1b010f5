"""The bulk runner's units run on a few long-lived tasks instead of one new task each.

Why: starting a task through an anyio task group builds a ``TaskHandle``, a cancel scope
and an event and enters and leaves that scope: in a py-spy profile of a bulk SMS blast on
aiohttp (c50, GC off) the spawn and its scope took about a tenth of the SDK's CPU, while
handing a unit to a task already waiting is a deque append and one event. The runner's
concurrency limit still decides when a unit may start; the pool only decides which task
runs it, starting a new one when none is free.

Every queued unit has a task on its way to it (woken or started for it), so none waits for
another unit to finish; a task that finishes one may take the next first, and the task
woken for it then finds the queue empty and waits again.

A unit handed over is in ``_queued`` until a task takes it, and a task takes it and starts
running it with no ``await`` in between: if the run is cancelled first, ``left()`` gives
back every unit no task took, for the runner to account for (``not_sent``: none of them
was sent). Nothing is ever dropped in between.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

__all__ = ["UnitPool"]

U = TypeVar("U")


class UnitPool(Generic[U]):
    """Runs ``run(unit, token)`` for each unit handed to ``submit``, on tasks of ``tasks``
    that wait for the next unit between two. ``close()`` lets them end once nothing is
    queued; the task group then exits as it did with one task per unit."""

    def __init__(self, tasks: TaskGroup, run: Callable[[U, object], Awaitable[None]]):
        self._tasks = tasks
        self._run = run
        self._queued: deque[tuple[U, object]] = deque()
        self._idle: list[anyio.Event] = []  # one per task waiting for a unit
        self._closed = False

    def submit(self, unit: U, token: object) -> None:
        """Queue ``unit``; wake a waiting task, or start one when none waits."""
        self._queued.append((unit, token))
        if self._idle:
            self._idle.pop().set()
        else:
            self._tasks.start_soon(self._work)

    def close(self) -> None:
        """No more units: the waiting tasks end, the busy ones once the queue is empty."""
        self._closed = True
        for idle in self._idle:
            idle.set()
        self._idle.clear()

    def left(self) -> list[U]:
        """The units no task took (the run was cancelled before): none of them was sent."""
        left = [unit for unit, _ in self._queued]
        self._queued.clear()
        return left

    async def _work(self) -> None:
        queued = self._queued
        while True:
            while queued:  # taken and started with no await between; not held here while
                # it runs, so the run can let go of its unit before it ends
                await self._run(*queued.popleft())
            if self._closed:
                return
            woken = anyio.Event()
            self._idle.append(woken)
            await woken.wait()
