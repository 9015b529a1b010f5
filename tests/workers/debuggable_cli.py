"""``messaging-async`` as the worker tests run it, able to say where it hangs.

A worker that does not exit after SIGTERM leaves nothing to read but "timed out". Run as
this script instead of the console script, the same command line answers two signals on
its stderr, so the test can put the worker's stacks in its failure message:

- SIGUSR1: every thread's Python stack (``faulthandler``, from C: it answers even when
  the event loop is stuck inside a call that never returns).
- SIGUSR2: every asyncio task's chain of awaits, innermost last. A lost wake-up leaves
  the loop idle in ``select`` — the thread stacks then show only the loop — and a task
  waiting for an event nobody will set; only the task chains show which one.
"""

from __future__ import annotations

import asyncio
import faulthandler
import signal
import sys
from types import FrameType
from typing import Any

from messaging_async.cli import main


def _frame_of(awaitable: Any) -> FrameType | None:
    for name in ("cr_frame", "gi_frame", "ag_frame"):
        frame = getattr(awaitable, name, None)
        if frame is not None:
            return frame  # type: ignore[no-any-return]
    return None


def _awaited_by(awaitable: Any) -> Any:
    for name in ("cr_await", "gi_yieldfrom", "ag_await"):
        inner = getattr(awaitable, name, None)
        if inner is not None:
            return inner
    return None


def await_chain(task: asyncio.Task[Any]) -> list[str]:
    """Where ``task`` waits: each coroutine (or generator) it awaits through, then what the
    innermost one waits on (a future, an event's waiter). ``Task.get_stack`` gives only
    the outermost frame of a suspended task, which rarely says why it waits."""
    lines = []
    awaitable: Any = task.get_coro()
    while awaitable is not None:
        frame = _frame_of(awaitable)
        if frame is None:
            lines.append(f"    waits on {awaitable!r}"[:300])
            break
        code = frame.f_code
        lines.append(f'    File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        awaitable = _awaited_by(awaitable)
    return lines


def dump_tasks(signum: int, frame: FrameType | None) -> None:
    """SIGUSR2: the await chain of every task of the loop running in this (main) thread."""
    try:
        tasks = asyncio.all_tasks(asyncio.get_running_loop())
    except RuntimeError:
        tasks = set()
    lines = [f"--- {len(tasks)} asyncio tasks:"]
    for task in tasks:
        lines += [f"  {task.get_name()} (done: {task.done()})", *await_chain(task)]
    lines.append("--- end of tasks\n")
    sys.stderr.write("\n".join(lines))
    sys.stderr.flush()


if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGUSR2, dump_tasks)
    sys.exit(main(sys.argv[1:]))
