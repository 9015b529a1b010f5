"""Running a handler or a body read within a deadline, arming the deadline only when the
coroutine actually waits.

``anyio.move_on_after`` costs about 9.5 µs per request on asyncio (measured: a cancel scope,
reading the clock, a timer handle armed and cancelled, three look-ups of the running
library), a third of what the receiver spent on a delivery report, while most handlers
(put the event on a queue, update a dict) and most bodies (already in the server's buffer)
finish without ever suspending, and a deadline can only interrupt a coroutine where it
suspends. So the coroutine is entered in a cancel scope with no deadline (about 6 µs:
the scope must be entered before the coroutine runs, so that any scope it opens nests
inside it) and its first step runs there; only if it suspends is the deadline set, with
the time the first step took deducted, so it still counts from the call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

import anyio
from sniffio import current_async_library_cvar, thread_local

__all__ = ["run_within"]

T = TypeVar("T")


async def run_within(
    coro: Coroutine[Any, Any, T], seconds: float | None, started: float
) -> tuple[bool, T | None]:
    """Run ``coro`` to its end: ``(True, its value)``, or ``(False, None)`` when it was
    cancelled ``seconds`` after ``started`` (a ``time.perf_counter()`` reading; ``None``:
    never). Its exceptions, and a cancellation from outside, propagate as they would from
    ``await coro``."""
    if seconds is None:
        return True, await coro
    with _cancel_scope() as scope:
        try:
            suspended = coro.send(None)
        except StopIteration as stop:
            return True, stop.value
        left = seconds - (time.perf_counter() - started)
        scope.deadline = anyio.current_time() + left
        return True, await _Resumed(coro, suspended)
    return False, None  # only the deadline leaves the block without returning


_asyncio_scope: type[anyio.CancelScope] | None = None  # the class anyio uses on asyncio


def _cancel_scope() -> anyio.CancelScope:
    """``anyio.CancelScope()``, without its look-up of the running library on asyncio.

    ``anyio.CancelScope()`` asks sniffio which library runs on every call; under uvicorn
    that look-up (mostly ``asyncio.current_task()``) was 13 % of the receiver's process CPU
    (py-spy), about as much as the scope itself. So sniffio's own answer is found the cheap
    way (nothing named in ``thread_local`` or the context variable, as trio-asyncio would;
    an asyncio loop running), and on asyncio the scope is made from the class anyio made
    it from the first time.
    """
    global _asyncio_scope
    if thread_local.name is None and current_async_library_cvar.get() is None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return anyio.CancelScope()
        if _asyncio_scope is None:
            scope = anyio.CancelScope()
            _asyncio_scope = type(scope)
            return scope
        return _asyncio_scope()
    return anyio.CancelScope()


class _Resumed:
    """Awaiting this continues a coroutine that has already run to its first suspension:
    what ``await coro`` would have done from there (PEP 380's delegation), handing the
    event loop what the coroutine waits on and the loop's answers (values, exceptions
    such as a cancellation) back to it."""

    __slots__ = ("_coro", "_suspended")

    def __init__(self, coro: Coroutine[Any, Any, Any], suspended: Any):
        self._coro = coro
        self._suspended = suspended

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waiting_on = self._coro, self._suspended
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
