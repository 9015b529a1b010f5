"""Running a handler or a body read within a deadline, paying for the deadline only when
the coroutine actually waits.

Under uvicorn every request is a task of its own, and ``anyio.move_on_after`` cost about
11 µs of one (measured in a fresh task: anyio's look-up of the running library, its state
for the new task, the scope, a timer armed and cancelled), a fifth of what the receiver
spent on a delivery report. Yet most handlers (put the event on a queue, update a dict)
and most bodies (already in the server's buffer) finish without ever suspending, and a
deadline can only interrupt a coroutine where it suspends. So:

- on asyncio, the coroutine's first step runs bare (0.3 µs); only if it suspends is a
  deadline armed, with the time the first step took deducted, so it still counts from the
  call. The deadline is asyncio's own (a timer that cancels the task, as
  ``asyncio.timeout`` does, with the same ``uncancel`` bookkeeping), since a cancel scope
  entered only now would not enclose the scopes the coroutine may already have opened. As
  with anyio's scopes, the cancellation is delivered again at every later wait, so a
  handler that swallows it is still cut off;
- on any other library (trio), the coroutine runs inside an ``anyio.CancelScope`` entered
  first, its deadline set only if the coroutine suspends.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import _get_running_loop
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

import anyio
from sniffio import current_async_library_cvar, thread_local

from .._library import asyncio_loop

__all__ = ["on_asyncio", "step_within"]

T = TypeVar("T")
_FINISHED: Any = object()  # what ``next`` answers for a coroutine that has returned


def step_within(
    coro: Coroutine[Any, Any, object],
    seconds: float | None,
    started: float,
    asyncio_here: bool | None = None,
) -> Awaitable[tuple[bool, object]] | None:
    """Run ``coro`` (a handler, a body read) to its end within ``seconds`` of ``started``
    (a ``time.perf_counter()`` reading; ``None``: no deadline), its first step taken here,
    in the caller's frame: ``None`` when it finished on that step (the usual case), else
    what to await for the rest: ``(True, its value)``, or ``(False, None)`` when it was
    cancelled at its deadline. Its exceptions, and a cancellation from outside, propagate
    as they would from ``await coro``.

    No coroutine is created for the usual case, and its end raises nothing: ``next``
    with a default takes a coroutine's return without the ``StopIteration`` that ``send``
    raises (1,250 instructions, callgrind, Python 3.11). The value of a coroutine that
    finishes on its first step is dropped: one whose value is wanted leaves it elsewhere
    (``_asgi.read_body`` appends the body to a list). ``asyncio_here``: what
    ``on_asyncio()`` answered in this task already, when the caller asked it (a callback's
    body read and handler, each within a deadline, ask once: 1,600 instructions)."""
    if seconds is not None:
        if asyncio_here is None:  # asyncio_loop()'s test, inlined: its frame is 600 instructions
            asyncio_here = (
                not thread_local.name
                and current_async_library_cvar.get() in (None, "asyncio")
                and _get_running_loop() is not None
            )
        if not asyncio_here:
            return _within_scope(coro, seconds, started)  # trio: its scope comes first
    suspended = next(coro.__await__(), _FINISHED)
    if suspended is _FINISHED:
        return None
    if seconds is None:
        return _resumed_plainly(coro, suspended)
    return _resumed_within(coro, suspended, _asyncio_task(coro), seconds, started)


async def _resumed_plainly(coro: Coroutine[Any, Any, T], suspended: Any) -> tuple[bool, T]:
    return True, await _Resumed(coro, suspended, None)


async def _resumed_within(
    coro: Coroutine[Any, Any, T],
    suspended: Any,
    task: asyncio.Task[Any],
    seconds: float,
    started: float,
) -> tuple[bool, T | None]:
    """The rest of ``coro``, which suspended on its first step, within what is left of its
    ``seconds``: the deadline armed now, with the time the first step took deducted."""
    deadline = _Deadline(task, seconds - (time.perf_counter() - started))
    try:
        value = await _Resumed(coro, suspended, deadline)
    except BaseException as exc:
        if deadline.close() and isinstance(exc, asyncio.CancelledError):
            return False, None
        raise
    deadline.close()
    return True, value


async def _within_scope(
    coro: Coroutine[Any, Any, T], seconds: float, started: float
) -> tuple[bool, T | None]:
    """``step_within`` on any library: the scope is entered before the coroutine runs, so
    that any scope it opens nests inside it."""
    with anyio.CancelScope() as scope:
        try:
            suspended = coro.send(None)
        except StopIteration as stop:
            return True, stop.value
        scope.deadline = anyio.current_time() + seconds - (time.perf_counter() - started)
        return True, await _Resumed(coro, suspended, None)
    return False, None  # only the deadline leaves the block without returning


def on_asyncio() -> bool:
    """Whether this is asyncio, where a coroutine's first step may run before its deadline
    is armed (``asyncio_loop``: anyio's ``run`` names asyncio, or nothing, where sniffio
    looks; trio and its guest mode name trio there, as trio-asyncio would). The loop, not
    ``asyncio.current_task()``: on Python 3.11 that is a Python function, and
    this test ran once or twice per callback: 1,460 instructions against 270 (callgrind).
    The task is looked up only for a coroutine that waits (``_asyncio_task``)."""
    return asyncio_loop() is not None


def _asyncio_task(coro: Coroutine[Any, Any, object]) -> asyncio.Task[Any]:
    """The task a coroutine that waits on asyncio runs in: its deadline cancels it. An
    ASGI server runs every request in a task; called from a bare loop callback, which has
    none, the coroutine is closed and this refuses (anyio's scope refused there too)."""
    task = asyncio.current_task()
    if task is None:
        coro.close()
        raise RuntimeError("a deadline on asyncio needs the request to run in a task")
    return task


class _Deadline:
    """Cancels ``task`` once ``seconds`` have passed, and again each time the coroutine
    waits after that; ``close`` withdraws every cancellation it requested."""

    __slots__ = ("_cancelling", "_handle", "_requested", "_task", "expired")

    def __init__(self, task: asyncio.Task[Any], seconds: float):
        self._task = task
        self._cancelling = task.cancelling()
        self._requested = 0
        self.expired = False
        self._handle = task.get_loop().call_later(max(seconds, 0.0), self._expire)

    def _expire(self) -> None:
        self.expired = True
        self.cancel()

    def cancel(self) -> None:
        self._task.cancel()
        self._requested += 1

    def close(self) -> bool:
        """Withdraw the timer and this deadline's cancellations; whether it expired and
        no other cancellation of the task is pending (then a ``CancelledError`` was ours)."""
        self._handle.cancel()
        for _ in range(self._requested):
            self._task.uncancel()
        self._requested = 0
        return self.expired and self._task.cancelling() <= self._cancelling


class _Resumed:
    """Awaiting this continues a coroutine that has already run to its first suspension:
    what ``await coro`` would have done from there (PEP 380's delegation), handing the
    event loop what the coroutine waits on and the loop's answers (values, exceptions
    such as a cancellation) back to it. With a ``deadline`` that has expired, each new
    wait of the coroutine is cancelled too."""

    __slots__ = ("_coro", "_deadline", "_suspended")

    def __init__(self, coro: Coroutine[Any, Any, Any], suspended: Any, deadline: _Deadline | None):
        self._coro = coro
        self._suspended = suspended
        self._deadline = deadline

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waiting_on, deadline = self._coro, self._suspended, self._deadline
        while True:
            try:
                answer = yield waiting_on
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # the loop throws in (a cancellation): pass it on
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    waiting_on = coro.send(answer)
                except StopIteration as stop:
                    return stop.value
            if deadline is not None and deadline.expired:
                deadline.cancel()  # it waits again after its time ran out
