"""What every gateway client shares: settings checks, lifecycle, and the one bulk road.

Every bulk method (``send_*`` and ``stream_*``, both gateways) describes its call as a
``BulkPlan`` and hands it to ``BaseClient._send_bulk`` / ``_stream_bulk``: run-level rules
(how input failure and ``aclose()`` end a run, what the caller receives) live here once.

A client owns one transport (one connection pool) and nothing else that is tied to a task,
so it may be opened in one task and closed in another (pytest fixtures, app lifespans).
``stream_…`` methods run their producer as a detached task, never inside the async
generator the caller iterates: a consumer that breaks out early, is cancelled by an outer
``move_on_after``, or lets the generator be finalised in another task, never has to exit a
cancel scope it did not enter (PEP 789). The generator cancels its producer on the way out.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any, Self

import anyio
import httpx
from anyio.streams.memory import MemoryObjectSendStream

from ._fanout import (
    BulkPlan,
    BulkRunner,
    Collector,
    InputItems,
    Pending,
    UnitResult,
    interrupted,
    iterate_input,
    notify,
    spawn_detached,
)
from ._transport import Answer, SendProgress, Transport, make_timeout
from .errors import (
    ClientClosedError,
    InputFailedError,
    MessagingError,
    OutcomeUnknownError,
    TransportError,
    UnexpectedAnswerError,
    UnreachableError,
    ValidationError,
)
from .models import BulkReport, Outcome, OutcomeStatus
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


async def send_single(
    pending: Pending[Any], send_unit: Callable[[list[Pending[Any]], SendProgress], Any]
) -> Outcome:
    """The single-send contract every client keeps: the accepted outcome, or the typed error
    (with the recipient's outcome on ``error.outcome``). Whatever went wrong, the error is a
    ``MessagingError``: a failure after the request may have left is ``OutcomeUnknownError``.
    """
    progress = SendProgress()
    try:
        result: UnitResult = await send_unit([pending], progress)
    except TransportError as exc:
        unknown = isinstance(exc, OutcomeUnknownError)
        status = OutcomeStatus.UNKNOWN if unknown else OutcomeStatus.NOT_SENT
        exc.outcome = pending.outcome(status, str(exc))
        raise
    except MessagingError:
        raise
    except Exception as exc:  # an answer no parser foresaw, say: the bulk road's rule
        (outcome,) = interrupted([pending], progress, exc)
        unknown = outcome.status is OutcomeStatus.UNKNOWN
        error = OutcomeUnknownError if unknown else UnreachableError
        raise error(outcome.reason or "", outcome=outcome) from exc
    return accepted_or_raise(result.outcomes[0])


def unreadable_answer(unit: list[Pending[Any]], answer: Answer, note: str) -> list[Outcome]:
    """Outcomes for a body the contract does not describe: a 2xx may mean sent (``unknown``),
    a 3xx/4xx is the server refusing the request (``rejected``)."""
    status = OutcomeStatus.UNKNOWN if 200 <= answer.status < 300 else OutcomeStatus.REJECTED
    reason = f"{note} (HTTP {answer.status})"
    return [pending.outcome(status, reason) for pending in unit]


def accepted_or_raise(outcome: Outcome) -> Outcome:
    if outcome.status is OutcomeStatus.ACCEPTED:
        return outcome
    if outcome.status is OutcomeStatus.REJECTED:
        error = outcome.error or UnexpectedAnswerError(outcome.reason or "the gateway refused")
        error.outcome = outcome
        raise error
    if outcome.status is OutcomeStatus.UNKNOWN:
        raise OutcomeUnknownError(outcome.reason or "no usable answer", outcome=outcome)
    raise UnreachableError(outcome.reason or "not sent", outcome=outcome)


class _StreamSink:
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


class _LiveRun:
    """A bulk run in progress, so ``aclose()`` can stop it and wait for it."""

    def __init__(self, runner: BulkRunner[Any]):
        self.runner = runner
        self.scope = anyio.CancelScope()  # cancelled when a stream's consumer goes away
        self.finished = anyio.Event()
        self.error: Exception | None = None  # a bug inside a stream's producer


class BaseClient:
    """Lifecycle (``async with`` / ``aclose``) and the one bulk road of the gateway clients."""

    _transport: Transport

    def __init__(
        self,
        *,
        username: str,
        password: str,
        max_concurrency: int,
        retry: RetryPolicy | None,
        default_country: str | None,
    ) -> None:
        """The settings every client checks the same way, before any other."""
        self._live_runs: list[_LiveRun] = []
        self._closing = False
        self._username = check_credential(username, "username")
        self._password = check_credential(password, "password")
        self._max_concurrency = check_concurrency(max_concurrency)
        self._retry = check_retry(retry)
        self._calling_code = default_calling_code(default_country)

    def _open_transport(
        self,
        timeout: float | httpx.Timeout | None,
        transport: httpx.AsyncBaseTransport | None,
        pool_size: int,
        http_backend: str,
    ) -> None:
        self._transport = Transport(
            retry=self._retry,
            timeout=make_timeout(timeout),
            max_connections=pool_size,
            transport=transport,
            http_backend=http_backend,
        )

    async def __aenter__(self) -> Self:
        self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client; once this returns, no request leaves.

        Bulk runs and streams still going (in any task) stop reading input: what they read
        and did not send is ``not_sent``, and they raise ``ClientClosedError``. Requests
        already out are given their answer (bounded by the timeout), so their outcomes are
        honest; a cancelled ``aclose()`` cuts them short (``unknown``).
        """
        self._closing = True
        self._transport.stop_sending()
        live = list(self._live_runs)
        for run in live:
            run.runner.stop()
        try:
            for run in live:
                await run.finished.wait()
        finally:
            with anyio.CancelScope(shield=True):  # cancelled: cut the runs short, at once
                for run in live:
                    run.scope.cancel()
                    await run.finished.wait()
            await self._transport.aclose()

    def _ensure_open(self) -> None:
        if self._closing or self._transport.closed:
            raise MessagingError(f"this {type(self).__name__} is closed; create a new one")

    async def _send_bulk(
        self,
        plan: BulkPlan[Any],
        items: Iterable[object] | AsyncIterable[object],
        on_outcome: OnOutcome | None,
    ) -> BulkReport:
        """The one bulk road every ``send_*`` bulk method takes: run ``plan`` over ``items``
        and return every outcome, in input order."""
        self._ensure_open()
        read = iterate_input(items, what=plan.what)
        collector = Collector(on_outcome)
        run = self._start(BulkRunner(plan, collector))
        try:
            with run.scope:
                await run.runner.run(read)
        finally:
            self._end(run)
        report = build_report(collector, run.runner)
        _raise_if_interrupted(run.runner, report)
        return report

    def _stream_bulk(
        self,
        plan: BulkPlan[Any],
        items: Iterable[object] | AsyncIterable[object],
        on_outcome: OnOutcome | None,
    ) -> AsyncIterator[Outcome]:
        """The same road for every ``stream_*`` method; a bad argument raises at the call."""
        read = iterate_input(items, what=plan.what)
        return self._stream(plan, read, on_outcome)

    async def _stream(
        self,
        plan: BulkPlan[Any],
        items: InputItems[object],
        on_outcome: OnOutcome | None,
    ) -> AsyncIterator[Outcome]:
        """Run a bulk call in a detached producer and yield outcomes as units finish.

        The producer starts a unit only while this consumer waits for outcomes, so a
        consumer that stops iterating (``break``, even with the generator still referenced)
        stops the sending: only requests already out finish.
        """
        self._ensure_open()
        send, receive = anyio.create_memory_object_stream[list[Outcome]](math.inf)
        sink = _StreamSink(send, on_outcome)
        run = self._start(BulkRunner(plan, sink))
        spawn_detached(_produce, run, send, items, self._end)
        try:
            with receive:
                while True:
                    sink.want(receive.statistics().current_buffer_used == 0)
                    try:
                        batch = await receive.receive()
                    except anyio.EndOfStream:
                        break
                    finally:
                        sink.want(False)
                    for outcome in batch:
                        yield outcome
            if run.error is not None:
                raise run.error
            _raise_if_interrupted(run.runner, None)
        finally:
            run.scope.cancel()
            # The producer, cancelled, accounts for what it had in flight at once; waiting
            # for it means every on_outcome call has happened when the caller's loop ends.
            with anyio.CancelScope(shield=True):
                await run.finished.wait()

    def _start(self, runner: BulkRunner[Any]) -> _LiveRun:
        run = _LiveRun(runner)
        self._live_runs.append(run)
        return run

    def _end(self, run: _LiveRun) -> None:
        self._live_runs.remove(run)
        run.finished.set()


def _raise_if_interrupted(runner: BulkRunner[Any], report: BulkReport | None) -> None:
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


async def _produce(
    run: _LiveRun,
    send: MemoryObjectSendStream[list[Outcome]],
    items: InputItems[object],
    end: Callable[[_LiveRun], None],
) -> None:
    try:
        with run.scope, send:
            await run.runner.run(items)
    except Exception as exc:  # a bug: tell the consumer rather than end quietly
        run.error = exc
    finally:
        end(run)
