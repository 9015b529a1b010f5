"""What every gateway client shares: lifecycle and the one bulk road (settings checks: ``_checks``).

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
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
import httpx

from ._call import SINGLE_SEND_TIMEOUT, call_options, check_call_timeout
from ._checks import (
    check_concurrency,
    check_credential,
    check_http_backend,
    check_transport,
    default_calling_code,
)
from ._checks import check_retry as check_retry  # imported from here by _traffic
from ._checks import check_timeout as check_timeout
from ._detached import spawn_detached
from ._fanout import (
    BulkPlan,
    BulkRunner,
    Collector,
    InputItems,
    Pending,
    UnitResult,
    interrupted,
    iterate_input,
)
from ._journal import Journal, check_job, check_key, check_ledger, send_keyed
from ._observe import Observer
from ._options import Traffic
from ._road import LiveRun, StreamSink, build_report, produce, raise_if_interrupted
from ._road import OnOutcome as OnOutcome  # the clients' hook type, defined with the road
from ._stream import BulkStream
from ._traffic import TrafficOptions
from ._transport import Answer, SendProgress, Transport
from .errors import (
    MessagingError,
    OutcomeUnknownError,
    TransportError,
    UnexpectedAnswerError,
    UnreachableError,
    ValidationError,
)
from .models import BulkReport, Outcome, OutcomeStatus
from .retry import RetryPolicy

if TYPE_CHECKING:
    from ._codes import CodeTable
    from .ledger import Ledger


async def send_single(
    pending: Pending[Any], send_unit: Callable[[list[Pending[Any]], SendProgress], Any]
) -> Outcome:
    """The single-send contract every client keeps: the accepted outcome, or the typed error
    (with the recipient's outcome on ``error.outcome``). Whatever went wrong, the error is a
    ``MessagingError``: a failure after the request may have left is ``OutcomeUnknownError``.
    """
    progress = SendProgress(recipients=1)
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
    return accepted_or_raise(result.settled()[0])


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


class BaseClient(TrafficOptions):
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
        ledger: Ledger | None = None,
    ) -> None:
        """The settings every client checks the same way, before any other."""
        self._ledger = check_ledger(ledger)
        self._live_runs: list[LiveRun] = []
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
        http_backend: str,
        keepalive_expiry: object,
        traffic: Traffic,
        gateway: str,
    ) -> None:
        """``gateway`` names the client to hooks (``isms``, ``smscommy``)."""
        self._timeout = check_timeout(timeout)
        checked_transport = check_transport(transport)
        backend = check_http_backend(http_backend)
        self._transport = Transport(
            retry=self._retry,
            timeout=self._timeout,
            max_connections=traffic.max_connections,
            transport=checked_transport,
            http_backend=backend,
            keepalive_expiry=keepalive_expiry,
            network=traffic.network,
            single_send_capacity=traffic.single_send_capacity,
            rate_limit=traffic.rate_limit,
            observer=Observer(gateway, traffic.hooks),
        )

    def _lookup(self, timeout: object) -> contextlib.AbstractContextManager[object]:
        """A look-up's call: in the single-send lane, bounded by ``timeout`` if given."""
        return call_options(check_call_timeout(timeout), single=True)

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

    def _journal(self, plan: BulkPlan[Any], job: object, resend_unknown: object) -> Journal | None:
        """The run's journal when ``job=`` is given (it needs the client's ledger)."""
        name = check_job(self._ledger, job)
        if not isinstance(resend_unknown, bool):
            raise ValidationError("resend_unknown must be True or False", field="resend_unknown")
        if name is None or self._ledger is None:
            return None
        return Journal(self._ledger, name, plan, resend_unknown=resend_unknown)

    def _check_key(self, key: object) -> str | None:
        return check_key(self._ledger, key)

    async def _keyed(
        self,
        key: str | None,
        gateway: str,
        pending: Pending[Any],
        send_unit: Callable[[list[Pending[Any]], SendProgress], Any],
        timeout: object = None,
        reseq: Callable[[Pending[Any], str], Pending[Any]] | None = None,
        codes: CodeTable | None = None,
    ) -> Outcome:
        """A single send, idempotent under ``key`` when one is given (``codes``: the
        gateway's, for a recorded refusal's typed error); in the single-send lane,
        within the call's ``timeout`` (seconds for the whole call, failover and retries
        included; ``SINGLE_SEND_TIMEOUT`` by default), telling hooks its outcome."""
        seconds = check_call_timeout(timeout)
        observer = self._transport.observer
        with call_options(SINGLE_SEND_TIMEOUT if seconds is None else seconds, single=True):
            try:
                if key is None or self._ledger is None:
                    outcome = await send_single(pending, send_unit)
                else:
                    send = partial(send_single, send_unit=send_unit)
                    outcome = await send_keyed(
                        self._ledger, key, gateway, pending, send, reseq=reseq, codes=codes
                    )
            except MessagingError as exc:
                failed = getattr(exc, "outcome", None)
                if isinstance(failed, Outcome):
                    observer.outcomes([failed])
                raise
        observer.outcomes([outcome])
        return outcome

    async def _send_bulk(
        self,
        plan: BulkPlan[Any],
        items: Iterable[object] | AsyncIterable[object],
        on_outcome: OnOutcome | None,
        job: str | None = None,
        resend_unknown: bool = False,
        timeout: object = None,
    ) -> BulkReport:
        """The one bulk road every ``send_*`` bulk method takes: run ``plan`` over ``items``
        and return every outcome, in input order; journalled in the ledger under ``job``.
        ``timeout``: seconds for the whole call; what has not left by then is ``not_sent``."""
        self._ensure_open()
        seconds = check_call_timeout(timeout)
        plan = self._paced(plan)
        journal = self._journal(plan, job, resend_unknown)
        read = iterate_input(items, what=plan.what)
        collector = Collector(self._observed(on_outcome))
        if journal is not None:
            await journal.open()
        run = self._start(BulkRunner(plan, collector, journal))
        try:
            with run.scope, call_options(seconds):
                await run.runner.run(read)
        finally:
            self._end(run)
        report = build_report(collector, run.runner)
        raise_if_interrupted(run.runner, report)
        return report

    def _stream_bulk(
        self,
        plan: BulkPlan[Any],
        items: Iterable[object] | AsyncIterable[object],
        on_outcome: OnOutcome | None,
        job: str | None = None,
        resend_unknown: bool = False,
        timeout: object = None,
    ) -> BulkStream:
        """The same road for every ``stream_*`` method; a bad argument raises at the call."""
        seconds = check_call_timeout(timeout)
        plan = self._paced(plan)
        journal = self._journal(plan, job, resend_unknown)
        read = iterate_input(items, what=plan.what)
        return BulkStream(self._stream(plan, read, on_outcome, journal, seconds))

    async def _stream(
        self,
        plan: BulkPlan[Any],
        items: InputItems[object],
        on_outcome: OnOutcome | None,
        journal: Journal | None,
        timeout: float | None = None,
    ) -> AsyncGenerator[Outcome, None]:
        """Run a bulk call in a detached producer and yield outcomes as units finish.

        The producer starts a unit only while this consumer waits for outcomes, so a
        consumer that stops iterating (``break``, even with the generator still referenced)
        stops the sending: only requests already out finish.
        """
        self._ensure_open()
        if journal is not None:
            await journal.open()
        send, receive = anyio.create_memory_object_stream[list[Outcome]](math.inf)
        sink = StreamSink(send, self._observed(on_outcome))
        run = self._start(BulkRunner(plan, sink, journal))
        with call_options(timeout):  # the producer's requests keep the call's deadline
            spawn_detached(produce, run, send, items, self._end)
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
            raise_if_interrupted(run.runner, None)
        finally:
            run.scope.cancel()
            # The producer, cancelled, accounts for what it had in flight at once; waiting
            # for it means every on_outcome call has happened when the caller's loop ends.
            with anyio.CancelScope(shield=True):
                await run.finished.wait()

    def _start(self, runner: BulkRunner[Any]) -> LiveRun:
        run = LiveRun(runner)
        self._live_runs.append(run)
        return run

    def _end(self, run: LiveRun) -> None:
        self._live_runs.remove(run)
        run.finished.set()
