"""What every gateway client shares: settings checks, lifecycle, and the bulk plumbing.

A client owns one transport (one connection pool). Opened with ``async with``, it also
owns a task group: ``stream_…`` methods run their producer there rather than inside the
async generator the caller iterates, so a consumer that stops early — or lets the
generator be finalised in another task — never exits a cancel scope it did not enter.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ._fanout import BulkRunner, Collector, notify
from ._transport import Transport
from .errors import MessagingError, ValidationError
from .models import BulkReport, Outcome
from .phone import calling_code
from .retry import RetryPolicy

OnOutcome = Callable[[Outcome], object]

MAX_CONCURRENCY_LIMIT = 1000


def check_credential(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be a non-empty string", field=field)
    return value


def check_concurrency(value: object, field: str = "max_concurrency") -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_CONCURRENCY_LIMIT
    ):
        raise ValidationError(
            f"{field} must be an int from 1 to {MAX_CONCURRENCY_LIMIT}", field=field
        )
    return value


def check_retry(value: object) -> RetryPolicy:
    if value is None:
        return RetryPolicy()
    if not isinstance(value, RetryPolicy):
        raise ValidationError("retry must be a RetryPolicy", field="retry")
    return value


def default_calling_code(country: str | None) -> str | None:
    return None if country is None else calling_code(country)


def build_report(collector: Collector, runner: BulkRunner[Any]) -> BulkReport:
    """The outcomes in input order, whatever order their units finished in."""
    outcomes = sorted(collector.outcomes, key=lambda outcome: outcome.index)
    return BulkReport(
        outcomes=tuple(outcomes),
        credits_used=runner.summary.credits_used,
        stopped_by=runner.summary.stopped_by,
    )


class _StreamSink:
    """Records outcomes for the caller's hook and sends them to the streaming consumer."""

    def __init__(self, send: MemoryObjectSendStream[list[Outcome]], on_outcome: OnOutcome | None):
        self._send = send
        self._on_outcome = on_outcome

    def record(self, outcomes: list[Outcome]) -> None:
        notify(self._on_outcome, outcomes)

    async def deliver(self, outcomes: list[Outcome]) -> None:
        # A consumer that stopped listening has closed the stream; the hook has the outcomes.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._send.send(outcomes)


class BaseClient:
    """Lifecycle (``async with`` / ``aclose``) and streaming for the gateway clients."""

    _transport: Transport

    def __init__(self) -> None:
        self._tasks: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._ensure_open()
        tasks = anyio.create_task_group()
        await tasks.__aenter__()
        self._tasks = tasks
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        tasks, self._tasks = self._tasks, None
        try:
            if tasks is not None:
                tasks.cancel_scope.cancel()  # streams still running belong to this client
                return await tasks.__aexit__(exc_type, exc, traceback)
            return None
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; the client cannot send afterwards."""
        await self._transport.aclose()

    def _ensure_open(self) -> None:
        if self._transport.closed:
            raise MessagingError(f"this {type(self).__name__} is closed; create a new one")

    async def _stream(
        self,
        make_runner: Callable[[_StreamSink], BulkRunner[Any]],
        items: AsyncIterator[object],
        on_outcome: OnOutcome | None,
    ) -> AsyncIterator[Outcome]:
        """Run a bulk call in the client's task group and yield outcomes as units finish."""
        self._ensure_open()
        if self._tasks is None:
            raise MessagingError(
                f"streaming needs the client opened with `async with {type(self).__name__}(…)`"
            )
        send, receive = anyio.create_memory_object_stream[list[Outcome] | Exception](8)
        scope = anyio.CancelScope()
        runner = make_runner(_StreamSink(send, on_outcome))
        self._tasks.start_soon(_produce, scope, send, runner, items)
        try:
            with receive:
                async for batch in receive:
                    if isinstance(batch, Exception):
                        raise batch
                    for outcome in batch:
                        yield outcome
        finally:
            scope.cancel()  # synchronous: safe wherever the generator is finalised


async def _produce(
    scope: anyio.CancelScope,
    send: MemoryObjectSendStream[list[Outcome] | Exception],
    runner: BulkRunner[Any],
    items: AsyncIterator[object],
) -> None:
    with scope, send:
        try:
            await runner.run(items)
        except Exception as exc:  # the caller's input failed, or a bug: tell the consumer
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(exc)
