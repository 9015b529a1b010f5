"""Which async library runs here, asked cheaply where it is asked for every unit or
callback.

anyio's own answer (``sniffio.current_async_library()``, or a ``RunVar``'s look-up of the
loop's token) costs a call or two of Python each time; these read what sniffio and
asyncio keep, in C.
"""

from __future__ import annotations

from asyncio import AbstractEventLoop, _get_running_loop

from sniffio import current_async_library_cvar, thread_local

__all__ = ["asyncio_loop"]


def asyncio_loop() -> AbstractEventLoop | None:
    """The running asyncio loop, where asyncio is what runs here; else ``None``.

    sniffio's own tests, the cheap way: nothing but asyncio named in its thread-local or
    context variable, and an asyncio loop running. A loop running is not enough: trio may
    run in an asyncio loop's thread, as its guest (``trio.lowlevel.start_guest_run``) or
    in a ``trio.run`` a coroutine calls, the loop still running, and trio (as trio-asyncio
    would) names itself there."""
    if thread_local.name or current_async_library_cvar.get() not in (None, "asyncio"):
        return None
    return _get_running_loop()
