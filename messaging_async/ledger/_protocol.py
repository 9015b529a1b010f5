"""``Ledger``: what the bulk runner, the single sends and the webhook receiver call.

Any store with these semantics can stand in (``SqliteLedger`` here; a PostgreSQL one
shares the same contract tests). The runner calls it at unit boundaries only:

1. ``open_job(job, gateway=…)`` once per run — refused while another live run holds it;
2. per unit of candidates: ``plan`` (what is settled, changed, left in flight, to send),
   then ``begin_unit`` with what it will send (committed *before* the request leaves),
   then ``settle_unit`` with the outcomes;
3. ``close_job(job)``.

Single sends with ``key=`` use ``claim_key`` / ``settle_key``; the webhook receiver
``record_report`` / ``record_inbound``.

A unit, as the runner would journal it (``Entry`` per candidate: position, wire number,
ref, the ``Sms`` / WhatsApp message / text, seqno)::

    plan = await ledger.plan(job, entries, resend_unknown=resend_unknown)
    report(plan.outcomes)                       # settled, changed, left in flight: final
    if plan.send:                               # seqnos of plan.send are the ones to use
        await ledger.begin_unit(job, plan.send)   # on disk before the request leaves
        outcomes = await send(plan.send)
        await ledger.settle_unit(job, outcomes)   # shielded: it must land when cancelled

Outcomes of recipients never claimed (invalid input, not sent when the run ended) may be
settled too: they are counted, and claim nothing for a later run.

A store may also offer ``plan_and_begin_unit(job, entries, *, resend_unknown,
expect_reports) -> Plan``: ``plan``, then ``begin_unit(job, plan.send)`` if it is not
empty, in one round trip. It is optional (not part of the protocol); the runner uses it
where it exists (``SqliteLedger``, ``PostgresLedger``: one thread trip fewer per unit
before its request can leave). A store whose ``plan_and_begin_unit`` is whole (shielded
within, and returning its plan though its caller was cancelled meanwhile, the
cancellation left to the caller's next checkpoint) says so with a true
``plan_and_begin_whole``: the runner then opens no shield of its own around it.

Optional too: ``settle_accepted(job, indices, numbers, refs, message_ids, code)``: the
same as ``settle_unit`` of the outcomes of a unit every recipient of which the gateway
accepted with one ``code`` (``accepted``, no reason, request id or seqno, not
``from_ledger``), given as columns in unit order, so that no ``Outcome`` need be made for
it; one call may carry several such units, one after the other, when they share the code
(the runner gathers the units whose answers came while the last call was under way; each
column is then a ``Sequence`` that joins the units' own as it is read); the
runner uses it for such a unit (an iSMS chunk accepted whole) where it exists
(``SqliteLedger`` writes the rows from the columns, in its writer process by default;
``PostgresLedger`` makes the outcomes in its worker thread and settles them).

Optional too: ``read_ahead(job, first, count)``, for a resumed job: the rows an earlier
run settled at those input positions, as an object like ``_settled.Ahead``, or ``None``
for a job this run created. Its ``found_in(first, stop)`` says whether it holds any row
of those positions; ``find(position, to, ref, content)`` returns, for the raw item (the
number as the caller wrote it), its row if it was settled with this very input, else
``None``; ``compact(numbers, rows)`` makes what ``find`` returned, in input order, the
``_outcomes_seq.Decided`` run a report keeps (the outcomes built when it is read). It
only reads; a store without it has every recipient prepared and planned (``_settled``
says when an outcome may be read so).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from ..models import Outcome, OutcomeStatus
from ..webhooks.events import DeliveryReport, WhatsAppInbound
from ._models import Entry, JobSummary, LedgerRecord, Plan
from ._owner import Owner

__all__ = ["Ledger"]


@runtime_checkable
class Ledger(Protocol):
    """A store the SDK journals into; opened and closed with ``async with``."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def open_job(self, job: str, *, gateway: str, owner: Owner | None = None) -> None:
        """Hold ``job`` for this run; ``JobRunningError`` while another live run holds it.
        ``gateway`` (``isms``, ``whatsapp``, ``smscommy``) must be the job's from its start."""

    async def renew_job(self, job: str) -> None:
        """Extend this run's lease (each unit written does it too)."""

    async def close_job(self, job: str) -> None:
        """Let go of ``job``; a later run resumes it."""

    async def plan(
        self, job: str, entries: Sequence[Entry], *, resend_unknown: bool = False
    ) -> Plan:
        """Decide, in one read, what becomes of a unit's candidates (see ``Plan``)."""

    async def begin_unit(
        self, job: str, entries: Sequence[Entry], *, expect_reports: bool = True
    ) -> None:
        """Commit ``entries`` as in flight, with their seqnos, in one transaction."""

    async def settle_unit(self, job: str, outcomes: Sequence[Outcome]) -> None:
        """Commit a unit's outcomes in one transaction."""

    async def claim_key(
        self,
        key: str,
        entry: Entry,
        *,
        gateway: str,
        resend_unknown: bool = False,
        owner: Owner | None = None,
    ) -> Plan:
        """For an idempotent single send: claim ``key`` (``Plan.send`` holds the entry) or
        say what became of it (``Plan.outcomes``: the recorded outcome, ``rejected`` if the
        content differs, ``unknown`` if it may have left — the caller raises
        ``OutcomeUnknownError``)."""

    async def settle_key(self, key: str, outcome: Outcome, *, owner: Owner | None = None) -> None:
        """Commit a keyed single send's outcome (``owner``: the claim's, this process by
        default)."""

    async def record_report(self, report: DeliveryReport) -> bool:
        """Record a delivery report and join it to its send; True if it joined one now."""

    async def record_inbound(self, event: WhatsAppInbound) -> None:
        """Note an inbound WhatsApp message: its sender's 24-hour window opens."""

    async def whatsapp_window_open(self, number: str) -> bool:
        """Whether ``number`` wrote to us in the last 24 hours."""

    async def summary(self, job: str) -> JobSummary:
        """A job's outcomes and delivery states, counted."""

    def records(
        self, job: str, *, delivery: str | None = None, outcome: OutcomeStatus | str | None = None
    ) -> AsyncIterator[LedgerRecord]:
        """A job's recipients, filtered by delivery state and/or outcome."""

    async def find(self, *, message_id: str, gateway: str) -> tuple[LedgerRecord, ...]:
        """The sends a gateway message id belongs to."""
