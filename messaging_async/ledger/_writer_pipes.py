"""The writer process's pipes as the client's event loop uses them: written and read
without blocking it (``_writer_client.WriterProcess``), and a request waiting for its
answer."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import anyio

from ._batch import steady

__all__ = ["Waiter", "read_some", "write_all"]


async def write_all(fd: int, data: bytes, owed: list[BaseException]) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await steady(owed, anyio.wait_writable, fd)
            continue
        view = view[written:]


async def read_some(fd: int, owed: list[BaseException]) -> bytes:
    """What ``fd`` has (up to 64 KiB), once it has something; ``EOFError`` if it ended.
    All of it at once: the answers that came together are read in one call, and handed
    out by one reader (``WriterProcess._read_for``)."""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            await steady(owed, anyio.wait_readable, fd)
            continue
        if not chunk:
            raise EOFError
        return chunk


class Waiter:
    """A request sent and not answered yet: its answer once read, and the event that
    wakes it (its answer came, or it is to read next, or the writer broke).

    The event is made only when the request waits on it (another task is reading the
    answers): the usual request reads its own answer, and an event a request cost it
    1.0 µs of the event loop (timeit, asyncio)."""

    __slots__ = ("answer", "land", "wake")

    def __init__(self, land: Callable[[tuple[bool, Any]], None] | None):
        self.answer: tuple[bool, Any] | None = None
        self.land = land
        self.wake: anyio.Event | None = None

    def wake_up(self) -> None:
        """Wake the request if it waits; one that does not yet looks before it waits."""
        if self.wake is not None:
            self.wake.set()
