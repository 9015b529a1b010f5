"""Coalescing ledger calls: many tasks' calls, one trip (to a worker thread, or down the
writer process's pipe), one commit.

A blast has dozens of units in flight, each calling the ledger two or three times. A
trip to a worker thread costs far more than most calls' own work, and so does a commit;
so calls that arrive while a trip is under way wait for the next one, and each trip runs
its calls in one transaction (a savepoint per call: a call that fails leaves no trace and
does not undo the others). A caller resumes only after the trip's commit: a unit's claim
is on disk before its request can leave.

Pure anyio: each trip is run by its first caller, who hands the next one over; nothing
is started in the background, so it runs alike on asyncio and trio.
A call is never abandoned by its caller's cancellation: the caller waits for it to be
committed (or to fail), and is cancelled then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

__all__ = ["Batcher", "Call", "redeliver", "steady"]

T = TypeVar("T")


async def steady(owed: list[BaseException], function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``await function(*args)`` to its end (a wait that can be waited again), though
    asyncio cancel the task meanwhile. anyio's shield holds off anyio's cancellation, not
    asyncio's own (``task.cancel()``: ``asyncio.timeout``, ``wait_for``, a ``TaskGroup``),
    which left a trip unrun (its other callers waiting for ever) or a writer's answer
    half read; that one is taken here, into ``owed``, and given back by ``redeliver``."""
    while True:
        try:
            return await function(*args)
        except asyncio.CancelledError as cancelled:  # asyncio's own: anyio's is held off
            owed.append(cancelled)


def redeliver(owed: list[BaseException]) -> None:
    """The asyncio cancellations ``steady`` took, delivered again at the task's next
    await, each counted once (so ``asyncio.timeout`` still turns its own into
    ``TimeoutError``)."""
    if owed:
        task = asyncio.current_task()
        assert task is not None
        for _ in owed:
            task.uncancel()
            task.cancel()


class Call(Generic[T]):
    """One call waiting for its trip (``function(*args)``: its result, or its error)."""

    __slots__ = ("args", "error", "finished", "function", "result")

    def __init__(self, function: Callable[..., T], args: tuple[Any, ...]):
        self.function = function
        self.args = args
        self.finished = False
        self.result: T | None = None
        self.error: BaseException | None = None


class _Group:
    """The calls of one trip: ``done`` is set when the trip is over, ``turn`` when the trip
    before it is, for its first caller to run it. Two events a trip, not one a call: a
    blast's trips hold a few dozen calls, and an event costs a call about a fifth of its
    event-loop time (``benchmarks`` harness in the commit that made this, 50 callers).
    ``over``: its calls have their results (``Batcher._over``)."""

    __slots__ = ("calls", "done", "over", "turn")

    def __init__(self, event: type[anyio.Event]) -> None:
        self.calls: list[Call[Any]] = []
        self.done = event()
        self.over = False
        self.turn: anyio.Event | None = None


class Batcher:
    """Runs calls in trips of ``run_trip(calls)`` (in a worker thread, or on the loop),
    ``under_way`` trips at a time (one by default).

    Each trip is run by the first caller of its calls, so no caller runs trips for others
    for long: after its own trip it hands the next one to that trip's first caller. One
    per event loop: its events and its limiter belong to that loop.
    """

    def __init__(
        self,
        run_trip: Callable[..., Any],
        *,
        in_thread: bool = True,
        under_way: int = 1,
        linger: bool = False,
    ):
        """``run_trip``: a function run in a worker thread (``run_trip(calls)``), or,
        ``in_thread=False``, a coroutine function awaited on the loop (the writer process's
        pipes), ``run_trip(calls, over)``: it calls ``over()`` as soon as the calls have
        their results, wherever it learns them (the task that reads the writer's answer:
        the trip's callers resume a trip round the loop sooner than if the trip's own
        task, woken, finished it). ``under_way``: how many trips may be under way at once
        (the writer process answers each trip when it is committed). ``linger``: a trip's
        first caller lets the event loop go round once before it runs the trip, so that
        the calls made in that round join it (for calls nobody waits for: the writer's
        settles, answered so soon now that their trips held one unit each, a frame and
        a commit a unit)."""
        self._run_trip = run_trip
        self._in_thread = in_thread
        self._next: _Group | None = None  # the calls waiting for the next trip
        self._running = 0  # trips under way
        self._under_way = under_way
        self._linger = linger
        self._limiter = anyio.CapacityLimiter(1)
        # This loop's backend's own classes, made directly: ``anyio.CancelScope()`` and
        # ``anyio.Event()`` ask which library runs (sniffio) each time, and the scope is
        # then initialised twice; a shielded scope entered and left 3.96 -> 2.40 µs, an
        # event made 1.63 -> 0.39 µs (timeit, asyncio; trio's scope 7.1 -> 5.4 µs). A call
        # enters one scope, a trip makes one event or two.
        self._shielded = partial(type(anyio.CancelScope()), shield=True)
        self._event = type(anyio.Event())

    async def call(self, function: Callable[..., T], *args: Any, checkpoint: bool = True) -> T:
        """``function(*args)``'s result, once its trip is committed (its error raised);
        then, ``checkpoint``, a cancellation of the caller's that came meanwhile lands
        here, else at the caller's next checkpoint (the result is returned all the same:
        a caller that must know what was committed opens no shield of its own for it)."""
        call: Call[T] = Call(function, args)
        group = self._next
        if group is None:
            group = self._next = _Group(self._event)
        group.calls.append(call)
        owed: list[BaseException] = []
        with self._shielded():
            if len(group.calls) > 1:
                await steady(owed, group.done.wait)
            else:  # its first caller runs its trip: now, or when a trip under way ends
                if self._linger:
                    await steady(owed, anyio.lowlevel.checkpoint)
                if self._running >= self._under_way:
                    group.turn = self._event()
                    await steady(owed, group.turn.wait)
                await self._trip(group)
        redeliver(owed)
        if checkpoint:
            await anyio.lowlevel.checkpoint_if_cancelled()  # done: now a cancellation may land
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    async def _trip(self, group: _Group) -> None:
        """Run ``group``'s calls (this caller's among them) in one trip, then hand over."""
        self._running += 1
        self._next = None  # calls from now on wait for the trip after this one
        try:
            if self._in_thread:
                await anyio.to_thread.run_sync(self._run_trip, group.calls, limiter=self._limiter)
            else:
                await self._run_trip(group.calls, partial(self._over, group))
        except BaseException as exc:  # the trip itself failed (its commit): so did its calls
            if group.over:  # after its results came (Ctrl-C): this caller's own to raise
                raise
            for call in group.calls:
                if call.error is None:
                    call.error = exc
        finally:
            self._over(group)

    def _over(self, group: _Group) -> None:
        """``group``'s trip is over (its calls have their results, or errors): its callers
        wake, and the next trip's first caller may run it. Once a trip."""
        if group.over:
            return
        group.over = True
        for call in group.calls:
            call.finished = True
        group.done.set()
        self._running -= 1
        waiting = self._next
        if waiting is not None and waiting.turn is not None:  # its first caller's turn
            waiting.turn.set()
