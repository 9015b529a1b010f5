"""What a bulk run is made of: the plan a client hands the runner, and the values it moves.

A client describes its bulk call once, as a ``BulkPlan`` (how to prepare an item, how to
group items into units, how to send a unit); the runner in ``_fanout`` and the bulk road in
``_client`` do everything else, the same way for every client and gateway.
"""

from __future__ import annotations

import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    Sequence,
)
from decimal import Decimal
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from attrs import define, frozen

from ._outcomes_seq import Accepted, Compact, expand
from ._transport import SendProgress
from .errors import GatewayError, ValidationError
from .models import Outcome, OutcomeStatus, recipient_outcome

__all__ = [
    "BulkPlan",
    "Collector",
    "InputItems",
    "OutcomeSink",
    "Pending",
    "UnitResult",
    "iterate_input",
    "new_pending",
    "notify",
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
    content: Any = None  # what the ledger fingerprints (journalled runs only)

    def outcome(self, status: OutcomeStatus, reason: str) -> Outcome:
        return recipient_outcome(self, status, reason)


def new_pending(position: int, to: str, ref: Any, message: M, content: Any = None) -> Pending[M]:
    """``Pending(position, to, ref, message, content=content)`` without its generated
    ``__new__`` (a Python function): the hot paths build one per recipient, and
    ``tuple.__new__`` costs 126 ns against its 267 (measured, Python 3.11). The fields'
    order is checked at import below."""
    return _new_tuple(Pending, (position, to, ref, message, None, content))


_new_tuple = tuple.__new__
if Pending._fields != ("position", "to", "ref", "message", "seqno", "content"):
    raise ImportError("Pending's fields changed: update new_pending")  # pragma: no cover


@define
class RunSummary:
    """What a bulk run adds up as it goes: the gateway's credits, the fatal answer."""

    credits_used: Decimal | None = None
    stopped_by: GatewayError | None = None

    def add_credits(self, credits: Decimal | None) -> None:
        if credits is not None:
            self.credits_used = (self.credits_used or Decimal(0)) + credits


def one_unit(pending: Pending[Any]) -> int:
    """The unit key of a plan whose units never split by content."""
    return 0


@frozen
class UnitResult:
    """What one unit's request produced: an outcome per recipient, in unit order.

    ``fatal`` stops the rest of the run; with ``scoped`` it stops only the messages that
    share this unit's stop scope (a WhatsApp template that does not exist, say).
    ``accepted``, when set, is the unit's outcomes in their compact form (every recipient
    accepted; ``outcomes`` is then empty): a report keeps it as it is (see
    ``_outcomes_seq``), and ``settled()`` builds the outcomes for everyone else (a hook, a
    stream, the ledger, a single send) with ``raws``, the answer already parsed: the
    answer is parsed again only when a report's outcome is read.
    """

    outcomes: list[Outcome]
    credits_used: Decimal | None = None
    fatal: GatewayError | None = None
    scoped: bool = False
    accepted: Accepted | None = None
    raws: Sequence[Any] | None = None

    def settled(self) -> list[Outcome]:
        """The unit's outcomes as ``Outcome`` objects, whichever form they came in."""
        return self.outcomes if self.accepted is None else expand(self.accepted, self.raws)


@frozen
class BulkPlan(Generic[M]):
    """One bulk call, as a client describes it to the runner.

    ``prepare(index, item)`` validates one input item into a ``Pending`` (raising for a bad
    one); ``unit_key`` groups pendings that may share a request (units never mix keys);
    ``send_unit`` sends one unit of at most ``unit_size``; ``concurrency`` units run at
    once; ``stop_scope`` names what a scoped fatal answer stops (``None``: nothing).
    ``what`` names the input argument in errors (``messages``, ``numbers``).

    For a journalled run (``job=``): ``gateway`` names the ledger's gateway; ``same_text``
    is the one text of a call that sends it to many numbers (else each item is its own
    content); ``reseq(pending, seqno)`` rebuilds a pending to go with a recorded seqno
    (``None``: the gateway has no idempotency key a resend could reuse);
    ``expect_reports`` is false where the endpoint sends no delivery report;
    ``keeps_content``: ``prepare`` puts each item in its pending's ``content`` already,
    so a journalled run keeps nothing aside for the ledger's fingerprint.
    """

    prepare: Callable[[int, object], Pending[M]]
    send_unit: Callable[[list[Pending[M]], SendProgress], Awaitable[UnitResult]]
    unit_size: int
    concurrency: int
    unit_key: Callable[[Pending[M]], Hashable] | None = None
    stop_scope: Callable[[Pending[M]], Hashable | None] | None = None
    what: str = "messages"
    gateway: str = ""
    same_text: str | None = None
    reseq: Callable[[Pending[M], str], Pending[M]] | None = None
    expect_reports: bool = True
    keeps_content: bool = False


class OutcomeSink(Protocol):
    def record(self, outcomes: list[Outcome]) -> None:
        """Take outcomes at once, without waiting; called even while being cancelled, so
        every outcome reaches the caller however the run ends."""

    async def ready(self) -> None:
        """Return when the caller wants more: the runner starts no unit before. A stream
        waits here for its consumer, so a consumer that stops asking stops the sending."""


class Collector:
    """Keeps every outcome for a ``BulkReport`` and calls the caller's ``on_outcome`` hook.

    Units accepted whole, and the recipients of a resumed job the ledger decided, are kept
    compact (``compact``) unless a hook must see each outcome: the report builds their
    outcomes when they are read."""

    def __init__(self, on_outcome: Callable[[Outcome], object] | None = None):
        self.outcomes: list[Outcome] = []
        self.compact: list[Compact] = []
        self._on_outcome = on_outcome

    def record(self, outcomes: list[Outcome]) -> None:
        self.outcomes.extend(outcomes)
        notify(self._on_outcome, outcomes)

    def record_compact(
        self,
        unit: Compact,
        raws: Sequence[Any] | None = None,
        built: list[Outcome] | None = None,
    ) -> None:
        """Take a compact unit (accepted whole, or decided by the ledger), as it is when
        nothing needs its outcomes now; ``raws``: an accepted unit's answer as its request
        parsed it, so a hook's outcomes are built without parsing that answer a second
        time; ``built``: its outcomes where the runner built them already, so a hook gets
        those."""
        if self._on_outcome is None:
            self.compact.append(unit)
        else:
            self.record(built if built is not None else expand(unit, raws))

    async def ready(self) -> None:
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
