"""Which ``Batcher`` a ledger's call joins: one per store (or writer lane) per event loop.

A batcher's events and limiter belong to the loop that made them, and one ledger may
serve several loops (threads, trio beside asyncio), so each loop keeps its own
(``_BATCHERS``); ``LoopBatchers`` finds this loop's, quickly on asyncio, and lets a closed
ledger's go (``ThreadedLedger``).
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from anyio.lowlevel import RunVar

from .._library import asyncio_loop
from ._batch import Batcher
from ._store import Store
from ._writer_client import Lane

__all__ = ["LoopBatchers"]

_BATCHERS: RunVar[dict[Any, Batcher]] = RunVar("messaging_async ledger batchers")
"""Each event loop's batchers, one per open store (and writer lane)."""


class LoopBatchers:
    """One ledger's way to this event loop's batchers (``call``), and their letting go
    (``forget``)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: tuple[weakref.ref[Any], dict[Any, Batcher]] | None = None
        """The last asyncio loop to call, and its batchers (``current``)."""

    def call(
        self,
        target: Store | Lane,
        function: Callable[..., Any],
        *args: Any,
        checkpoint: bool = True,
    ) -> Awaitable[Any]:
        """``function(*args)`` in the next trip of ``target``'s ``run_trip`` (``checkpoint``:
        see ``Batcher.call``): its batcher's call, to be awaited. Handed back rather than
        awaited in a coroutine of its own: each such layer was one more object a call kept
        alive while it waited, and one more frame to go down and up again when it woke (a
        unit's claim and its settle go through two)."""
        batchers = self.current()
        batcher = batchers.get(target)
        if batcher is None:
            batcher = batchers[target] = (
                Batcher(target.run_trip)
                if isinstance(target, Store)
                else Batcher(
                    target.run_trip,
                    in_thread=False,
                    under_way=target.under_way,
                    linger=target.linger,
                )
            )
        return batcher.call(function, *args, checkpoint=checkpoint)

    def current(self) -> dict[Any, Batcher]:
        """This event loop's batchers (``_BATCHERS``). The last asyncio loop's are kept at
        hand, found by its running loop (read in C): anyio's ``RunVar`` look-up asks which
        library runs and for its token, 1.8 µs a call, and a unit's claim is one call
        (timeit, asyncio). A weak reference: a loop that ended is not kept alive; another
        loop (a thread's, trio's) looks its own up as before. Only while asyncio runs
        (``asyncio_loop``): trio run in an asyncio loop's thread was handed that loop's
        batchers."""
        loop = asyncio_loop()
        last = self.last
        if loop is not None and last is not None and last[0]() is loop:
            return last[1]
        try:
            batchers = _BATCHERS.get()
        except LookupError:
            batchers = {}
            _BATCHERS.set(batchers)
        if loop is not None:
            self.last = (weakref.ref(loop), batchers)
        return batchers

    def forget(self, *targets: Any) -> None:
        """This loop's batchers of a ledger closed let go: each holds its store or lane, and
        with them the store's connection and the writer's pipes, closed but kept for as
        long as the loop runs (a long-lived loop that opens a ledger a tenant or a day).
        Another loop's are let go with that loop."""
        self.last = None
        try:
            batchers = _BATCHERS.get()
        except LookupError:
            return
        for target in targets:
            batchers.pop(target, None)
