"""Coalescing ledger calls: many tasks' calls, one trip to a worker thread, one commit.

A blast has dozens of units in flight, each calling the ledger two or three times. A
trip to a worker thread costs far more than most calls' own work, and so does a commit;
so calls that arrive while a trip is under way wait for the next one, and each trip runs
its calls in one transaction (a savepoint per call: a call that fails leaves no trace and
does not undo the others). A caller resumes only after the trip's commit: a unit's claim
is on disk before its request can leave.

Pure anyio: the first caller of a quiet ledger drives the trips (``flush``) until no call
is waiting; nothing is started in the background, so it runs alike on asyncio and trio.
A call is never abandoned by its caller's cancellation: the caller waits for it to be
committed (or to fail), and is cancelled then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

__all__ = ["Batcher", "Call"]

T = TypeVar("T")


class Call(Generic[T]):
    """One call waiting for its trip; ``wake`` is set when it is done, or when its caller
    is to run the next trip."""

    __slots__ = ("args", "error", "finished", "function", "result", "wake")

    def __init__(self, function: Callable[..., T], args: tuple[Any, ...]):
        self.function = function
        self.args = args
        self.wake = anyio.Event()
        self.finished = False
        self.result: T | None = None
        self.error: BaseException | None = None


class Batcher:
    """Runs calls in trips of ``run_trip(calls)`` in a worker thread, one trip at a time.

    Each trip is run by the caller of its oldest call, so no caller runs trips for others
    for long: after its own trip it hands the next one to the oldest caller waiting. One
    per event loop: its events and its limiter belong to that loop.
    """

    def __init__(self, run_trip: Callable[[list[Call[Any]]], None]):
        self._run_trip = run_trip
        self._waiting: list[Call[Any]] = []
        self._flushing = False
        self._limiter = anyio.CapacityLimiter(1)

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        call: Call[T] = Call(function, args)
        self._waiting.append(call)
        with anyio.CancelScope(shield=True):
            if self._flushing:
                await call.wake.wait()
            if not call.finished:  # nobody was running trips, or the last one handed over
                await self._trip()
        await anyio.lowlevel.checkpoint_if_cancelled()  # done: now a cancellation may land
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    async def _trip(self) -> None:
        """Run every waiting call (this caller's among them) in one trip, then hand over."""
        self._flushing = True
        trip, self._waiting = self._waiting, []
        try:
            await anyio.to_thread.run_sync(self._run_trip, trip, limiter=self._limiter)
        except BaseException as exc:  # the trip itself failed (its commit): so did its calls
            for call in trip:
                if call.error is None:
                    call.error = exc
        finally:
            for call in trip:
                call.finished = True
                call.wake.set()
            if self._waiting:
                self._waiting[0].wake.set()  # its caller runs the next trip
            else:
                self._flushing = False
