"""The bulk engine every client shares: lazy input, units of ≤ N, bounded concurrency.

The input is read lazily and grouped into units (an iSMS chunk of ≤ 50 recipients of one
encoding; later a single WhatsApp message). A unit is only formed when a concurrency slot
is free, so memory stays bounded by ``concurrency * unit_size`` whatever the input's size.

Each unit runs in its own task and catches its own failures, so one bad unit never cancels
its siblings. Every recipient read from the input ends in exactly one outcome, even when
the caller is cancelled: outcomes are *recorded* synchronously (so a cancelled run can
still account for what was in flight) and then *delivered* (which may wait, giving a
streaming consumer back-pressure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
)
from decimal import Decimal
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, cast

import anyio
import anyio.lowlevel
import sniffio
from anyio.abc import TaskGroup
from attrs import define, frozen

from ._transport import SendProgress
from .errors import GatewayError, OutcomeUnknownError, UnreachableError, ValidationError
from .models import Outcome, OutcomeStatus

__all__ = [
    "BulkRunner",
    "Collector",
    "InputItems",
    "OutcomeSink",
    "Pending",
    "UnitResult",
    "iterate_input",
    "spawn_detached",
]

logger = logging.getLogger("messaging_async.bulk")

M = TypeVar("M")
T = TypeVar("T")


class Pending(NamedTuple, Generic[M]):
    """A validated message waiting for its unit: its input position, wire number and payload.

    A named tuple, not an attrs class: one is made per recipient, and a tuple is built in C
    (measured: less than half the cost of a frozen attrs instance).
    """

    position: int  # in the caller's input: the outcome's ``index``
    to: str
    ref: Any
    message: M
    seqno: str | None = None  # the idempotency key it goes with, where the gateway has one

    def outcome(self, status: OutcomeStatus, reason: str) -> Outcome:
        return Outcome(
            to=self.to,
            status=status,
            index=self.position,
            ref=self.ref,
            reason=reason,
            seqno=self.seqno,
        )


@frozen
class UnitResult:
    """What one unit's request produced: an outcome per recipient, in unit order.

    ``fatal`` stops the rest of the run; with ``scoped`` it stops only the messages that
    share this unit's stop scope (a WhatsApp template that does not exist, say).
    """

    outcomes: list[Outcome]
    credits_used: Decimal | None = None
    fatal: GatewayError | None = None
    scoped: bool = False


class OutcomeSink(Protocol):
    def record(self, outcomes: list[Outcome]) -> None:
        """Take outcomes at once, without waiting; called even while being cancelled."""

    async def deliver(self, outcomes: list[Outcome]) -> None:
        """Hand recorded outcomes on; may wait for a slow consumer."""


class Collector:
    """Keeps every outcome for a ``BulkReport`` and calls the caller's ``on_outcome`` hook."""

    def __init__(self, on_outcome: Callable[[Outcome], object] | None = None):
        self.outcomes: list[Outcome] = []
        self._on_outcome = on_outcome

    def record(self, outcomes: list[Outcome]) -> None:
        self.outcomes.extend(outcomes)
        notify(self._on_outcome, outcomes)

    async def deliver(self, outcomes: list[Outcome]) -> None:
        return None


def notify(hook: Callable[[Outcome], object] | None, outcomes: list[Outcome]) -> None:
    """Call the caller's hook per outcome; its failure is logged, never lets an outcome go."""
    if hook is None:
        return
    for outcome in outcomes:
        try:
            hook(outcome)
        except Exception:
            logger.exception("on_outcome hook raised for the outcome at index %d", outcome.index)


InputItems = Iterator[T] | AsyncIterator[T]


def iterate_input(items: Iterable[T] | AsyncIterable[T], *, what: str) -> InputItems[T]:
    """An iterator over any iterable or async iterable; a lone str or object is refused.

    Plain iterables stay plain: the runner reads them with ``next()``, without a coroutine
    per recipient.
    """
    if isinstance(items, AsyncIterable):
        return aiter(items)
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise ValidationError(
            f"{what} must be an iterable or async iterable, not {type(items).__name__}",
            field=what,
        )
    return iter(items)


_detached_tasks: set[asyncio.Task[None]] = set()  # strong references until they finish


def spawn_detached(function: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Start ``function(*args)`` in a task no task group owns (asyncio task / trio system task).

    For work that must outlive the caller's current ``await`` without tying the caller to a
    task group; ``function`` must catch its own exceptions and guard itself with a cancel
    scope that its owner cancels.
    """
    if sniffio.current_async_library() == "trio":
        import trio

        trio.lowlevel.spawn_system_task(function, *args)
        return
    task: asyncio.Task[None] = asyncio.get_running_loop().create_task(function(*args))  # type: ignore[arg-type]
    _detached_tasks.add(task)
    task.add_done_callback(_detached_tasks.discard)


# The runner reads plain iterables without awaiting; it yields to the event loop at least
# this often, so a long run of input that sends nothing cannot starve other tasks.
_CHECKPOINT_EVERY = 256


@frozen
class _Full:
    """The unit under ``key`` is full: send it."""

    key: Hashable


@define
class _Summary:
    credits_used: Decimal | None = None
    stopped_by: GatewayError | None = None

    def add_credits(self, credits: Decimal | None) -> None:
        if credits is not None:
            self.credits_used = (self.credits_used or Decimal(0)) + credits


class BulkRunner(Generic[M]):
    """Runs one bulk call from input to outcomes; see the module docstring for the guarantees."""

    def __init__(
        self,
        *,
        prepare: Callable[[int, object], Pending[M]],
        unit_key: Callable[[Pending[M]], Hashable],
        unit_size: int,
        send_unit: Callable[[list[Pending[M]], SendProgress], Awaitable[UnitResult]],
        concurrency: int,
        sink: OutcomeSink,
        stop_scope: Callable[[Pending[M]], Hashable | None] | None = None,
    ):
        """``stop_scope`` names what a scoped fatal answer stops (``None``: nothing); units
        never mix scopes."""
        self._stop_scope = stop_scope
        self._scoped_stops: dict[Hashable, GatewayError] = {}
        self._prepare = prepare
        self._unit_key = unit_key
        self._unit_size = unit_size
        self._send_unit = send_unit
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._sink = sink
        self.summary = _Summary()

    async def run(self, items: InputItems[object]) -> None:
        """Send everything ``items`` yields; returns when every recipient has an outcome.

        An exception from ``items`` itself (the caller's CSV reader, say) lets the units in
        flight finish, marks those still forming ``not_sent``, and is re-raised as it is.
        """
        forming: dict[Hashable, list[Pending[M]]] = {}
        input_error: Exception | None = None
        next_now = items.__next__ if isinstance(items, Iterator) else None
        later = cast(AsyncIterator[object], items)
        try:
            async with anyio.create_task_group() as tasks:
                index = 0
                while True:
                    try:
                        item = next_now() if next_now is not None else await anext(later)
                    except (StopIteration, StopAsyncIteration):
                        break
                    except Exception as exc:
                        input_error = exc
                        break
                    step = self._take(index, item, forming)
                    index += 1
                    if step is not None:
                        await self._follow(step, tasks, forming)
                    if index % _CHECKPOINT_EVERY == 0:
                        await anyio.lowlevel.checkpoint()  # input that never fills a unit
                while forming and input_error is None:
                    await self._dispatch(tasks, forming, next(iter(forming)))
        finally:
            for unit in forming.values():
                self._sink.record(_all(unit, OutcomeStatus.NOT_SENT, "the bulk call ended first"))
        if input_error is not None:
            raise input_error

    def _take(
        self, index: int, item: object, forming: dict[Hashable, list[Pending[M]]]
    ) -> _Full | Outcome | None:
        """Validate ``item`` and put it in its unit. Synchronous: it runs once per recipient.

        Returns what the caller must await: a unit that is now full, or the outcome of an
        item that goes no further (invalid, or stopped by an earlier fatal answer).
        """
        try:
            pending = self._prepare(index, item)
        except ValidationError as exc:
            return _invalid(index, item, exc)
        if self.summary.stopped_by is not None or self._scoped_stops:  # rare: skip the call
            stop = self._stop_for(pending)
            if stop is not None:
                return pending.outcome(OutcomeStatus.NOT_SENT, _stop_reason(stop))
        key = self._unit_key(pending)
        unit = forming.get(key)
        if unit is None:
            unit = forming[key] = []
        unit.append(pending)
        return _Full(key) if len(unit) >= self._unit_size else None

    async def _follow(
        self,
        step: _Full | Outcome,
        tasks: TaskGroup,
        forming: dict[Hashable, list[Pending[M]]],
    ) -> None:
        if isinstance(step, _Full):
            await self._dispatch(tasks, forming, step.key)
        else:
            await self._emit([step])

    async def _dispatch(
        self, tasks: TaskGroup, forming: dict[Hashable, list[Pending[M]]], key: Hashable
    ) -> None:
        """Wait for a slot, then start the unit; it stays in ``forming`` until it has one."""
        token = object()
        try:  # a free slot is taken without a trip through the scheduler
            self._limiter.acquire_on_behalf_of_nowait(token)
        except anyio.WouldBlock:
            await self._limiter.acquire_on_behalf_of(token)
        unit = forming.pop(key)
        tasks.start_soon(self._run_unit, unit, token)

    async def _run_unit(self, unit: list[Pending[M]], token: object) -> None:
        progress = SendProgress(recipients=len(unit))
        recorded = False
        try:
            outcomes = await self._outcomes_of(unit, progress)
            self._sink.record(outcomes)
            recorded = True
            await self._sink.deliver(outcomes)
        except BaseException as exc:
            if not recorded:
                self._sink.record(self._interrupted(unit, progress, exc))
            if not isinstance(exc, Exception):
                raise  # cancellation: the caller is going away
            logger.exception("a bulk unit of %d failed inside the SDK", len(unit))
        finally:
            self._limiter.release_on_behalf_of(token)

    async def _outcomes_of(self, unit: list[Pending[M]], progress: SendProgress) -> list[Outcome]:
        stop = self._stop_for(unit[0])
        if stop is not None:
            return _all(unit, OutcomeStatus.NOT_SENT, _stop_reason(stop))
        try:
            result = await self._send_unit(unit, progress)
        except UnreachableError as exc:
            return _all(unit, OutcomeStatus.NOT_SENT, str(exc))
        except OutcomeUnknownError as exc:
            return _all(unit, OutcomeStatus.UNKNOWN, str(exc))
        self.summary.add_credits(result.credits_used)
        if result.fatal is not None:
            self._stop(unit[0], result)
        return result.outcomes

    def _stop(self, pending: Pending[M], result: UnitResult) -> None:
        assert result.fatal is not None
        if result.scoped and self._stop_scope is not None:
            scope = self._stop_scope(pending)
            if scope is not None and scope not in self._scoped_stops:
                self._scoped_stops[scope] = result.fatal
                logger.warning("bulk run stopped for %r: %s", scope, result.fatal)
        elif self.summary.stopped_by is None:
            self.summary.stopped_by = result.fatal
            logger.warning("bulk run stopped: %s", result.fatal)

    def _stop_for(self, pending: Pending[M]) -> GatewayError | None:
        """The fatal answer that stops ``pending``, if one came already."""
        if self.summary.stopped_by is not None:
            return self.summary.stopped_by
        if self._scoped_stops and self._stop_scope is not None:
            return self._scoped_stops.get(self._stop_scope(pending))
        return None

    async def _emit(self, outcomes: list[Outcome]) -> None:
        self._sink.record(outcomes)
        await self._sink.deliver(outcomes)

    @staticmethod
    def _interrupted(
        unit: list[Pending[M]], progress: SendProgress, exc: BaseException
    ) -> list[Outcome]:
        cause = "cancelled" if not isinstance(exc, Exception) else f"SDK error {type(exc).__name__}"
        if progress.may_have_left:
            return _all(unit, OutcomeStatus.UNKNOWN, f"{cause} after the request may have left")
        return _all(unit, OutcomeStatus.NOT_SENT, f"{cause} before the request left")


def _stop_reason(stop: GatewayError) -> str:
    return f"not sent: stopped at an earlier fatal answer ({stop})"


def _all(unit: list[Pending[Any]], status: OutcomeStatus, reason: str) -> list[Outcome]:
    return [pending.outcome(status, reason) for pending in unit]


def _invalid(index: int, item: object, error: ValidationError) -> Outcome:
    """A ``rejected`` outcome for input that failed validation: nothing was sent."""
    to = getattr(item, "to", "")
    return Outcome(
        to=to if isinstance(to, str) else "",
        status=OutcomeStatus.REJECTED,
        index=index,
        ref=getattr(item, "ref", None),
        reason=f"invalid input: {error}",
    )
