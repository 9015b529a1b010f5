"""Tasks no task group owns, for work that must outlive the caller's current ``await``.

The client's stream producer and the test kit's ASGI server start theirs here: a task
group would tie their lifetime to the caller's scope, which is what they must not be.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import sniffio

__all__ = ["spawn_detached"]

_detached_tasks: set[asyncio.Task[None]] = set()  # strong references until they finish


def spawn_detached(function: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Start ``function(*args)`` in a task no task group owns (asyncio task / trio system task).

    For work that must outlive the caller's current ``await`` without tying the caller to a
    task group; ``function`` must catch its own exceptions and guard itself with a cancel
    scope that its owner cancels.
    """
    if sniffio.current_async_library() == "trio":
        import trio

        # The caller's context goes with it (a per-call deadline), as asyncio's tasks copy it.
        trio.lowlevel.spawn_system_task(function, *args, context=contextvars.copy_context())
        return
    task: asyncio.Task[None] = asyncio.get_running_loop().create_task(function(*args))  # type: ignore[arg-type]
    _detached_tasks.add(task)
    task.add_done_callback(_detached_tasks.discard)
