"""The bulk engine every client shares: lazy input, units of ≤ N, bounded concurrency.

The input is read lazily and grouped into units (an iSMS chunk of ≤ 50 recipients of one
encoding; later a single WhatsApp message). A unit is only formed when a concurrency slot
is free, so memory stays bounded by ``concurrency * unit_size`` whatever the input's size.

Each unit runs on a pooled task (``_unit_pool``) and catches its own failures; an item
that cannot be prepared is its ``rejected`` outcome: one bad item or unit never cancels
its siblings. Every recipient read from the input ends in exactly one outcome, even when the
caller is cancelled, the client is closed or the input raises: outcomes are *recorded*
synchronously, so a cancelled run can still account for what was in flight. Units start
only when the sink is ``ready()``: a stream's consumer paces the sending.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import anyio
import anyio.lowlevel
from attrs import frozen

from ._outcomes_seq import Compact, expand
from ._plan import (
    BulkPlan,
    Collector,
    InputItems,
    OutcomeSink,
    Pending,
    RunSummary,
    UnitResult,
    iterate_input,
    notify,
    one_unit,
)
from ._settle import all_outcomes, interrupted, invalid_outcome, settle_unit, stop_reason
from ._transport import SendProgress
from ._unit_pool import UnitPool
from .errors import GatewayError, ValidationError
from .models import Outcome, OutcomeStatus

__all__ = [
    "BulkPlan",
    "BulkRunner",
    "Collector",
    "InputItems",
    "OutcomeSink",
    "Pending",
    "UnitResult",
    "interrupted",
    "iterate_input",
    "notify",
    "settle_unit",
]

if TYPE_CHECKING:
    from ._journal import Journal

logger = logging.getLogger("messaging_async.bulk")

M = TypeVar("M")


_Pool = UnitPool[list[Pending[Any]]]

# The runner reads plain iterables without awaiting; it yields to the event loop at least
# this often, so a long run of input that sends nothing cannot starve other tasks.
_CHECKPOINT_EVERY = 256

# A resumed job's input is offered to the ledger this many items at a time (one trip and
# one read each; within SQLite's 999 parameters a statement).
_RESUME_WINDOW = 512


@frozen
class _Full:
    """The unit under ``key`` is full: send it."""

    key: Hashable


class BulkRunner(Generic[M]):
    """Runs one bulk call from input to outcomes; see the module docstring for the guarantees."""

    def __init__(self, plan: BulkPlan[M], sink: OutcomeSink, journal: Journal | None = None):
        self._journal = journal
        self._stop_scope = plan.stop_scope
        self._scoped_stops: dict[Hashable, GatewayError] = {}
        self._prepare = plan.prepare if journal is None else journal.wrap(plan.prepare)
        self._unit_key = plan.unit_key or one_unit
        self._unit_size = plan.unit_size
        self._send_unit = plan.send_unit
        self._limiter = anyio.CapacityLimiter(plan.concurrency)
        self._sink = sink
        # A sink that keeps compact units as they are (a report's ``Collector``): units
        # accepted whole, and the recipients a resumed job's ledger decided (no tracked
        # object per recipient kept to the end of the run); a journalled run builds a
        # unit's outcomes only for a ledger without ``settle_accepted``. Any other sink
        # (a stream) is handed the outcomes.
        keep = getattr(sink, "record_compact", None)
        self._keep_compact: (
            Callable[[Compact, Sequence[Any] | None, list[Outcome] | None], None] | None
        ) = keep
        self._feeding = anyio.CancelScope()  # reading input and starting units; ``stop()``
        self.summary = RunSummary()
        self.stopped = False
        self._fed = False
        self.input_error: Exception | None = None

    def stop(self) -> None:
        """Read no more input and start no more units; units already sending finish.

        What was read and not yet sent ends ``not_sent``; ``stopped`` tells the caller."""
        if not self._fed:  # once all input is read and sent, closing loses nothing
            self.stopped = True
            self._feeding.cancel()

    async def run(self, items: InputItems[object]) -> None:
        """Send everything ``items`` yields; returns when every recipient read has an outcome.

        An exception from ``items`` itself (the caller's CSV reader, say) lets the units in
        flight finish, marks those still forming ``not_sent`` and is kept in ``input_error``
        for the caller to raise with the report.
        """
        forming: dict[Hashable, list[Pending[M]]] = {}
        pool: UnitPool[list[Pending[M]]] | None = None
        try:
            async with anyio.create_task_group() as tasks:
                pool = UnitPool(tasks, self._run_unit)
                try:
                    with self._feeding:
                        await self._feed(items, pool, forming)
                    self._fed = True
                finally:
                    pool.close()
        finally:
            reason = self._unsent_reason()
            for unit in [*forming.values(), *(pool.left() if pool is not None else ())]:
                self._record(all_outcomes(unit, OutcomeStatus.NOT_SENT, reason))
            if self._journal is not None:
                await self._journal.close()

    def _record(self, outcomes: list[Outcome]) -> None:
        """Hand outcomes to the caller; a journalled run also counts them in its job."""
        self._sink.record(outcomes)
        if self._journal is not None:
            self._journal.note(outcomes)

    async def _feed(
        self,
        items: InputItems[object],
        pool: _Pool,
        forming: dict[Hashable, list[Pending[M]]],
    ) -> None:
        next_now = items.__next__ if isinstance(items, Iterator) else None
        later = cast(AsyncIterator[object], items)
        index = 0
        if self._journal is not None and self._journal.resuming:
            index = await self._feed_resumed(next_now, later, pool, forming)
            if self.input_error is not None:
                return
        while index >= 0:  # -1: the input is over
            try:
                item = next_now() if next_now is not None else await anext(later)
            except (StopIteration, StopAsyncIteration):
                break
            except Exception as exc:
                self.input_error = exc
                return
            step = self._take(index, item, forming)
            index += 1
            if step is not None:
                await self._follow(step, pool, forming)
            if index % _CHECKPOINT_EVERY == 0:
                await anyio.lowlevel.checkpoint()  # input that never fills a unit
        while forming:
            await self._dispatch(pool, forming, next(iter(forming)))

    async def _feed_resumed(
        self,
        next_now: Callable[[], object] | None,
        later: AsyncIterator[object],
        pool: _Pool,
        forming: dict[Hashable, list[Pending[M]]],
    ) -> int:
        """A resumed job's input, read as ever one item at a time: the journal reads, a
        window of positions ahead in one trip, what an earlier run settled there, and an
        item settled with this very input takes its recorded outcome at once; only the
        rest is prepared and sent. Returns where the usual reading takes over (once a
        window has nothing settled), -1 at the end of the input."""
        journal = self._journal
        assert journal is not None
        index = 0
        try:  # what the ledger decided is recorded a window at a time, however this ends
            while journal.resuming:
                if index % _RESUME_WINDOW == 0:
                    await self._record_decided(journal, wait=True)
                    await journal.look_ahead(index, _RESUME_WINDOW)
                    if not journal.resuming:
                        break
                try:
                    item = next_now() if next_now is not None else await anext(later)
                except (StopIteration, StopAsyncIteration):
                    return -1
                except Exception as exc:
                    self.input_error = exc
                    return -1
                if journal.settled(index, item):
                    index += 1
                    continue
                step = self._take(index, item, forming)
                index += 1
                if step is not None:
                    await self._follow(step, pool, forming)
            return index
        finally:
            await self._record_decided(journal, wait=False)

    async def _record_decided(self, journal: Journal, *, wait: bool) -> None:
        """Hand what the ledger decided since the last time to the caller, once it wants
        more (``wait``: a stream's consumer paces a resume too; not while the run ends):
        kept compact by a report, built as outcomes for a stream or a hook."""
        decided = journal.decided()
        if decided is None:
            return
        if wait:
            try:
                await self._sink.ready()
            except BaseException:
                self._keep(decided)  # cancelled while waiting: they still reach the caller
                raise
        self._keep(decided)

    def _keep(self, unit: Compact) -> None:
        if self._keep_compact is not None:
            self._keep_compact(unit, None, None)
        else:
            self._sink.record(expand(unit))

    def _unsent_reason(self) -> str:
        if self.stopped:
            return "not sent: the client was closed before it was sent"
        if self.input_error is not None:
            name = type(self.input_error).__name__
            return f"not sent: the input raised {name} before its request was made"
        return "not sent: the bulk call ended first"

    def _take(
        self, index: int, item: object, forming: dict[Hashable, list[Pending[M]]]
    ) -> _Full | Outcome | None:
        """Validate ``item`` and put it in its unit. Synchronous: it runs once per recipient.

        Returns what the caller must await: a unit that is now full, or the outcome of an
        item that goes no further (invalid, or stopped by an earlier fatal answer). Any
        exception while preparing an item is that item's ``rejected`` outcome.
        """
        try:
            pending = self._prepare(index, item)
        except ValidationError as exc:
            return invalid_outcome(index, item, f"invalid input: {exc}")
        except Exception as exc:  # a value nobody checked for: this item's outcome only
            logger.warning("bulk item %d could not be prepared: %s", index, type(exc).__name__)
            return invalid_outcome(
                index, item, f"invalid input: preparing it raised {type(exc).__name__}"
            )
        stopped = self.summary.stopped_by is not None or self._scoped_stops
        if stopped and self._journal is None:  # rare: skip the call (journalled: the ledger
            # may hold an outcome for it, so its unit asks the ledger first)
            stop = self._stop_for(pending)
            if stop is not None:
                return pending.outcome(OutcomeStatus.NOT_SENT, stop_reason(stop))
        key = self._unit_key(pending)
        unit = forming.get(key)
        if unit is None:
            unit = forming[key] = []
        unit.append(pending)
        return _Full(key) if len(unit) >= self._unit_size else None

    async def _follow(
        self,
        step: _Full | Outcome,
        pool: _Pool,
        forming: dict[Hashable, list[Pending[M]]],
    ) -> None:
        if isinstance(step, _Full):
            await self._dispatch(pool, forming, step.key)
        else:
            try:
                await self._sink.ready()
            finally:  # cancelled or closed while waiting, the item still has its outcome
                self._record([step])

    async def _dispatch(
        self,
        pool: _Pool,
        forming: dict[Hashable, list[Pending[M]]],
        key: Hashable,
    ) -> None:
        """Wait for the caller to want more and for a slot, then start the unit; it stays in
        ``forming`` until it has one."""
        await self._sink.ready()
        token = object()
        try:  # a free slot is taken without a trip through the scheduler
            self._limiter.acquire_on_behalf_of_nowait(token)
        except anyio.WouldBlock:
            await self._limiter.acquire_on_behalf_of(token)
        unit = forming.pop(key)
        pool.submit(unit, token)

    async def _run_unit(self, unit: list[Pending[M]], token: object) -> None:
        progress = SendProgress()
        claimed = False  # journalled: the unit's sendable part is in flight in the ledger
        recorded = False
        slot = True  # the unit holds its concurrency slot
        size = len(unit)
        try:
            if self._journal is not None:
                unit, decided = await self._journal.claim(unit)
                claimed = True
                if decided:
                    self._sink.record(decided)
                if not unit:
                    return
            size = progress.recipients = len(unit)  # what the request carries (rate limit)
            result = await self._outcomes_of(unit, progress)
            accepted = result.accepted  # the unit accepted whole, in its compact form
            try:  # the sink takes the outcomes, then calls the hooks: a hook's KeyboardInterrupt
                # (an Exception never leaves ``notify``) must not give them a second outcome
                if accepted is not None and self._keep_compact is not None:
                    # Kept compact (_outcomes_seq), built only for a hook; a journal whose
                    # ledger settles it compact needs no outcomes either.
                    journal = self._journal
                    build = journal is not None and not journal.settles_compact
                    outcomes = result.settled() if build else []
                    self._keep_compact(accepted, result.raws, outcomes or None)
                else:
                    outcomes = result.settled()
                    self._sink.record(outcomes)
            except BaseException as exc:  # an Exception: the SDK's, before the sink took them
                recorded = not isinstance(exc, Exception)
                raise
            recorded = True
            if self._journal is not None:
                # Its request is over: the slot goes to the next unit while these outcomes
                # wait for their commit (the ledger's trip), which can take longer.
                slot = False
                self._limiter.release_on_behalf_of(token)
                # Nor are its pendings and its answer kept while they wait: they would be
                # what a young collection finds alive, and moves on to the old generation
                # (a full collection of the whole heap, ~30 ms, fell in a 50,000 blast
                # for it; the pool holds no reference to a unit it runs).
                unit = []
                del result
                if accepted is not None and self._journal.settles_compact:
                    await self._journal.settle_accepted(accepted)
                else:
                    await self._journal.settle(outcomes)
        except BaseException as exc:
            if not recorded:
                outcomes = interrupted(unit, progress, exc)
                self._sink.record(outcomes)
                if claimed:
                    await self._settle_interrupted(outcomes)
                elif self._journal is not None:
                    self._journal.note(outcomes)
            if not isinstance(exc, Exception):
                raise  # cancellation: the caller is going away
            logger.exception("a bulk unit of %d failed inside the SDK", size)
        finally:
            if slot:
                self._limiter.release_on_behalf_of(token)

    async def _settle_interrupted(self, outcomes: list[Outcome]) -> None:
        """Commit a cut-short unit's outcomes; a ledger that fails here leaves them in
        flight, which the next run treats as the crash it then looks like."""
        assert self._journal is not None
        try:
            await self._journal.settle(outcomes)
        except Exception:
            logger.exception("the ledger could not record a unit cut short")

    async def _outcomes_of(self, unit: list[Pending[M]], progress: SendProgress) -> UnitResult:
        stop = self._stop_for(unit[0])
        if stop is not None:
            return UnitResult(all_outcomes(unit, OutcomeStatus.NOT_SENT, stop_reason(stop)))
        result = await settle_unit(self._send_unit, unit, progress)
        self.summary.add_credits(result.credits_used)
        if result.fatal is not None:
            self._stop(unit[0], result)
        return result

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
