"""The bulk road's moving parts: how a run's outcomes reach the caller, and how it ends.

``BaseClient._send_bulk`` / ``_stream_bulk`` (in ``_client``) drive every bulk call with
these; a run is registered as a ``LiveRun`` so ``aclose()`` can stop it from any task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ._fanout import BulkRunner, Collector, InputItems, notify
from ._outcomes_seq import Outcomes
from .errors import ClientClosedError, InputFailedError
from .models import BulkReport, Outcome

__all__ = ["LiveRun", "StreamSink", "build_report", "produce", "raise_if_interrupted"]

OnOutcome = Callable[[Outcome], object]


def build_report(collector: Collector, runner: BulkRunner[Any]) -> BulkReport:
    """The outcomes in input order, whatever order their units finished in."""
    return BulkReport(
        outcomes=Outcomes.collected(collector.outcomes, collector.compact),
        credits_used=runner.summary.credits_used,
        stopped_by=runner.summary.stopped_by,
    )


class StreamSink:
    """Calls the caller's hook and queues outcomes for the streaming consumer at once (the
    queue is unbounded, but ``ready()`` holds the runner until the consumer asks for more,
    so it holds at most what was in flight)."""

    def __init__(self, send: MemoryObjectSendStream[list[Outcome]], on_outcome: OnOutcome | None):
        self._send = send
        self._on_outcome = on_outcome
        self._wanted = anyio.Event()

    def record(self, outcomes: list[Outcome]) -> None:
        notify(self._on_outcome, outcomes)
        # A consumer that stopped listening has closed the stream; the hook has the outcomes.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._send.send_nowait(outcomes)

    async def ready(self) -> None:
        await self._wanted.wait()

    def want(self, wanted: bool) -> None:
        """The consumer is waiting for outcomes (``True``), or busy with some (``False``)."""
        if wanted:
            self._wanted.set()
        elif self._wanted.is_set():
            self._wanted = anyio.Event()


class LiveRun:
    """A bulk run in progress, so ``aclose()`` can stop it and wait for it."""

    def __init__(self, runner: BulkRunner[Any]):
        self.runner = runner
        self.scope = anyio.CancelScope()  # cancelled when a stream's consumer goes away
        self.finished = anyio.Event()
        self.error: Exception | None = None  # a bug inside a stream's producer


def raise_if_interrupted(runner: BulkRunner[Any], report: BulkReport | None) -> None:
    """A run that did not read its whole input ends in an error carrying what it did read."""
    if runner.stopped:
        raise ClientClosedError(
            "the client was closed during this bulk call; items not yet read have no outcome",
            report=report,
        )
    if runner.input_error is not None:
        name = type(runner.input_error).__name__
        raise InputFailedError(
            f"the input raised {name} mid-run; every item read before it has its outcome",
            report=report,
        ) from runner.input_error


async def produce(
    run: LiveRun,
    send: MemoryObjectSendStream[list[Outcome]],
    items: InputItems[object],
    end: Callable[[LiveRun], None],
) -> None:
    try:
        with run.scope, send:
            await run.runner.run(items)
    except Exception as exc:  # a bug: tell the consumer rather than end quietly
        run.error = exc
    finally:
        end(run)
