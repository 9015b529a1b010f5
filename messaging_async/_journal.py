"""Where the bulk road and the single sends meet the ledger: at unit boundaries only.

A journalled bulk run (``job=``) opens its job, and for each unit the runner forms:
asks the ledger's ``plan`` what is already settled (those outcomes are final, marked
``from_ledger``), commits the rest as in flight (``begin_unit``) *before* the request can
leave, and commits their outcomes (``settle_unit``) shielded from cancellation, so a
Ctrl-C cannot lose an answer that came back. A SIGKILL leaves the claims in flight: the
next run decides them by the resume rules (``ledger._decide``).

Only the ``Ledger`` protocol is used here, so any store (SQLite, PostgreSQL) stands in.
The ledger package is imported lazily: it imports the webhooks package, which imports
the clients' modules.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

import anyio
from attrs import evolve

from ._accepted_settles import AcceptedSettles
from ._outcomes_seq import Accepted, Decided, expand
from ._plan import BulkPlan, Pending
from .errors import OutcomeUnknownError, ValidationError
from .models import Outcome, OutcomeStatus

if TYPE_CHECKING:
    from ._codes import CodeTable
    from .ledger import Entry, Ledger
    from .ledger._models import UnitEntries
    from .ledger._settled import Ahead

__all__ = ["Journal", "check_job", "check_key", "check_ledger", "send_keyed"]

logger = logging.getLogger("messaging_async.ledger")

_MOST_AHEAD = 8192
"""The most input positions whose settled rows a resumed run reads in one trip: 512 a
trip cost a finished job's rerun about 0.4 µs a recipient in the trips alone (a worker
thread's hop each, measured with py-spy on 50,000); 8,192 rows are about 3 MB held."""


def check_ledger(value: object) -> Ledger | None:
    """``None`` or an object with the ``Ledger`` protocol's methods."""
    from .ledger import Ledger

    if value is not None and not isinstance(value, Ledger):
        raise ValidationError(
            f"ledger must be a Ledger (SqliteLedger, say), not {type(value).__name__}",
            field="ledger",
        )
    return value


def check_job(ledger: Ledger | None, job: object) -> str | None:
    """A job name needs a ledger to be journalled in: refused before anything is read."""
    if job is None:
        return None
    if ledger is None:
        raise ValidationError(
            "job= needs a ledger: create the client with ledger=SqliteLedger(path)", field="job"
        )
    if not isinstance(job, str) or not job:
        raise ValidationError("job must be a non-empty string", field="job")
    return job


def check_key(ledger: Ledger | None, key: object) -> str | None:
    if key is None:
        return None
    if ledger is None:
        raise ValidationError(
            "key= needs a ledger: create the client with ledger=SqliteLedger(path)", field="key"
        )
    if not isinstance(key, str) or not key:
        raise ValidationError("key must be a non-empty string", field="key")
    from .ledger._models import MAX_KEY_BYTES

    if len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValidationError("key must be at most 1,024 bytes (UTF-8)", field="key")
    return key


_ENTRY: list[type[Entry]] = []  # the ledger's Entry, imported on first use (see above)


def _entry_type() -> type[Entry]:
    if not _ENTRY:
        from .ledger import Entry

        _ENTRY.append(Entry)
    return _ENTRY[0]


_ENTRY_FIELDS = (0, 1, 2, 5, 4)  # a Pending's position, to, ref, content, seqno
_AS_ENTRY = itemgetter(*_ENTRY_FIELDS)
_POSITION: Callable[[Pending[Any]], int] = itemgetter(0)
_SEQNO = itemgetter(4)  # where both a Pending and an Entry keep it
_OUTCOME_SEQNO = attrgetter("seqno")


_UNIT_ENTRIES: list[type[UnitEntries]] = []  # imported on first use too


def _unit_entries_type() -> type[UnitEntries]:
    if not _UNIT_ENTRIES:
        from .ledger._models import UnitEntries

        _UNIT_ENTRIES.append(UnitEntries)
    return _UNIT_ENTRIES[0]


def _entry(pending: Pending[Any]) -> Entry:
    """The ledger's ``Entry`` for a pending (made per recipient: built as a plain tuple)."""
    entry = _ENTRY[0] if _ENTRY else _entry_type()
    return tuple.__new__(entry, _AS_ENTRY(pending))


def _from_ledger(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Mark outcomes the ledger decided. They are new objects, made by the store for this
    one call and seen by nobody else yet, so they are marked in place: ``evolve`` would
    cost more than the rest of a resumed recipient's way through the SDK."""
    for outcome in outcomes:
        object.__setattr__(outcome, "from_ledger", True)
    return list(outcomes)


class Journal:
    """One bulk run's journal: the ledger, the job, and the plan's journalling hooks."""

    def __init__(
        self, ledger: Ledger, job: str, plan: BulkPlan[Any], *, resend_unknown: bool
    ) -> None:
        self.ledger = ledger
        self.job = job
        self._gateway = plan.gateway
        self._same_text = plan.same_text
        self._kept = plan.keeps_content  # the pendings carry their item (``wrap``)
        self._reseq = plan.reseq
        self._expect_reports = plan.expect_reports
        self._resend_unknown = resend_unknown
        # Optional (see ``ledger._protocol``): plan and begin_unit in one round trip.
        self._plan_and_begin = getattr(ledger, "plan_and_begin_unit", None)
        # ... whole: it returns its plan though its caller was cancelled meanwhile
        self._whole = getattr(ledger, "plan_and_begin_whole", False) is True
        # Optional too: a unit accepted whole settled from its columns, no outcome made;
        # units whose answers came together, together (``_accepted_settles``).
        settle_accepted = getattr(ledger, "settle_accepted", None)
        self._accepted = None if settle_accepted is None else AcceptedSettles(settle_accepted, job)
        self.settles_compact = settle_accepted is not None
        """Whether ``settle_accepted`` needs no ``Outcome`` built (read by the runner)."""
        # Optional too: a resumed job's settled rows, read ahead of its input.
        self._read_ahead: Callable[[str, int, int], Awaitable[Ahead | None]] | None = getattr(
            ledger, "read_ahead", None
        )
        self.resuming = self._read_ahead is not None
        """Whether the runner should ask the ledger ahead of its input (``look_ahead``):
        until a range of positions has nothing an earlier run settled. An attribute, not
        a property: the runner reads it once per item of a resumed job."""
        self._ahead: Ahead | None = None
        self._ahead_from = self._ahead_to = 0  # the positions ``_ahead`` was read for
        # What ``settled`` took since ``decided`` was last asked: numbers and rows, and
        # the way the ledger that read them makes them a ``Decided`` run.
        self._numbers: list[str] = []
        self._rows: list[tuple[Any, ...]] = []
        self._compact: Callable[[list[str], list[tuple[Any, ...]]], Decided] | None = None
        self._loose: list[Outcome] = []  # outcomes of recipients no unit claimed, to count
        self._contents: dict[int, object] = {}  # prepared items not claimed yet (``wrap``)
        self._opened = False

    def wrap(self, prepare: Callable[[int, object], Pending[Any]]) -> Callable[..., Any]:
        """``prepare``, also keeping what the ledger fingerprints: each item, by its
        position, until its unit is claimed (``_entries``); with one text for every item,
        or a plan whose pendings carry their item (``keeps_content``), nothing per item.

        Kept aside rather than in a copy of the pending: a dict entry instead of a tuple of
        six a recipient, one object fewer for the cyclic GC to count and walk (the event
        loop's side of a journalled blast, callgrind: see RESULTS.md, third pass (GIL))."""
        if self._same_text is not None or self._kept:
            return prepare
        contents = self._contents

        def prepare_journalled(index: int, item: object) -> Pending[Any]:
            pending = prepare(index, item)
            contents[pending[0]] = item
            return pending

        return prepare_journalled

    async def open(self) -> None:
        """Hold the job for this run (``JobRunningError`` while another live run holds it)."""
        await self.ledger.open_job(self.job, gateway=self._gateway)
        self._opened = True

    async def close(self) -> None:
        """Count what no unit claimed, and let go of the job; shielded: a cancelled run
        still leaves its ledger consistent."""
        if not self._opened:
            return
        with anyio.CancelScope(shield=True):
            try:
                await self._flush()
            finally:
                self._opened = False
                await self.ledger.close_job(self.job)

    async def look_ahead(self, first: int, count: int) -> None:
        """Have the rows an earlier run settled at input positions ``first`` … ``first +
        count - 1`` at hand, for ``settled`` to answer from; none there (or a new job, or
        a ledger that fails here): stop asking, the usual way decides everything.

        Once a range held settled rows, the next trip reads four times as far (up to
        ``_MOST_AHEAD`` positions): a settled job's trips are few, a new job still pays
        one trip of ``count``. Only the ledger is read further, never the input: positions
        not read yet are claimed by no one (one run per job), so reading them early finds
        the same rows."""
        ahead = self._ahead
        if ahead is None or not self._ahead_from <= first < first + count <= self._ahead_to:
            span = min(max(count, 4 * (self._ahead_to - self._ahead_from)), _MOST_AHEAD)
            read, self._ahead = self._read_ahead, None
            try:
                if read is not None:
                    self._ahead = await read(self.job, first, max(span, count))
            except Exception:  # the usual way asks the ledger again, and deals with it
                logger.warning(
                    "the ledger could not read a resumed job's settled rows", exc_info=True
                )
            self._ahead_from, self._ahead_to = first, first + max(span, count)
            ahead = self._ahead
            if ahead is not None:
                self._compact = ahead.compact
        if ahead is None or not ahead.found_in(first, first + count):
            self._read_ahead = self._ahead = None
            self.resuming = False

    def settled(self, position: int, item: object) -> bool:
        """Whether an earlier run settled the raw ``item`` at ``position`` with this very
        input (``ledger._settled``): then its recorded outcome is kept for ``decided``;
        else prepare it.

        An item with a caller's seqno is always prepared: preparing it checks that no two
        messages of the call share one, so skipping it would let a later one through."""
        ahead = self._ahead
        if ahead is None:
            return False
        if self._same_text is not None:  # the items are numbers; one text for all
            to, row = item, ahead.find(position, item, None, self._same_text)
        else:
            try:
                if getattr(item, "seqno", None) is not None:
                    return False
                to = item.to  # type: ignore[attr-defined]
                row = ahead.find(position, to, item.ref, item)  # type: ignore[attr-defined]
            except Exception:  # no message at all, say: preparing it says what is wrong
                logger.debug("a bulk item the ledger could not compare", exc_info=True)
                return False
        if row is None:
            return False
        self._numbers.append(to)  # type: ignore[arg-type]  # ``find`` took it: a str
        self._rows.append(row)
        return True

    def decided(self) -> Decided | None:
        """What ``settled`` kept since this was last asked, as one ``Decided`` run (the
        report keeps it so; ``_outcomes_seq.expand`` makes its outcomes), or ``None``."""
        if not self._rows:
            return None
        assert self._compact is not None  # rows are only found through an ``Ahead``
        numbers, rows, self._numbers, self._rows = self._numbers, self._rows, [], []
        return self._compact(numbers, rows)

    def note(self, outcomes: Sequence[Outcome]) -> None:
        """Outcomes decided without a unit (invalid input, not sent): counted later."""
        self._loose.extend(o for o in outcomes if not o.from_ledger)

    async def claim(self, unit: list[Pending[Any]]) -> tuple[list[Pending[Any]], list[Outcome]]:
        """What of ``unit`` to send (committed as in flight), and the outcomes the ledger
        decided for the rest. Shielded: a claim is written whole, and known to be (by the
        store's own one-trip call where it is whole, ``plan_and_begin_whole``)."""
        entries = self._entries(unit)
        resend, reports = self._resend_unknown, self._expect_reports
        one_trip = self._plan_and_begin  # the store's one-trip form of the two
        if one_trip is not None and self._whole:  # shielded within, and answers whole
            plan = await one_trip(self.job, entries, resend_unknown=resend, expect_reports=reports)
            return self._pendings(unit, plan.send), _from_ledger(plan.outcomes)
        with anyio.CancelScope(shield=True):
            if one_trip is not None:
                plan = await one_trip(
                    self.job, entries, resend_unknown=resend, expect_reports=reports
                )
                return self._pendings(unit, plan.send), _from_ledger(plan.outcomes)
            plan = await self.ledger.plan(self.job, entries, resend_unknown=resend)
            send = self._pendings(unit, plan.send)
            if send:  # plan.send: the entries as they go (with any recorded seqno)
                await self.ledger.begin_unit(self.job, plan.send, expect_reports=reports)
        return send, _from_ledger(plan.outcomes)

    def _entries(self, unit: list[Pending[Any]]) -> UnitEntries:
        """The unit's entries, read from its pendings as columns when a store asks for
        them (``UnitEntries.of_rows``: one ``zip``, in C; no ``Entry`` a recipient unless
        the store reads them one by one, and no column kept through the claim's wait),
        their content the item each pending carries (``keeps_content``), the one text of
        them all, or what ``wrap`` kept (and lets go of here)."""
        unit_entries = _UNIT_ENTRIES[0] if _UNIT_ENTRIES else _unit_entries_type()
        contents: Sequence[object] | None = None  # the pendings' own (``keeps_content``)
        if self._same_text is not None:
            contents = (self._same_text,) * len(unit)
        elif not self._kept:
            contents = tuple(map(self._contents.pop, map(_POSITION, unit)))
        return unit_entries.of_rows(unit, _ENTRY_FIELDS, contents)

    def _pendings(self, unit: list[Pending[Any]], send: Sequence[Entry]) -> list[Pending[Any]]:
        """The unit's pendings the plan says to send, each with the seqno it must carry."""
        if len(send) == len(unit) and (
            self._reseq is None or list(map(_SEQNO, send)) == list(map(_SEQNO, unit))
        ):  # the usual case: all of it, as it is (a recorded seqno matters only with reseq)
            return unit
        by_position = {p.position: p for p in unit}
        pendings = []
        for entry in send:
            pending = by_position[entry.position]
            if entry.seqno is not None and entry.seqno != pending.seqno and self._reseq:
                pending = self._reseq(pending, entry.seqno)
            pendings.append(pending)
        return pendings

    async def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Commit a unit's outcomes (and any loose ones), shielded from cancellation."""
        with anyio.CancelScope(shield=True):
            await self.ledger.settle_unit(self.job, self._journalled(outcomes))
            await self._flush()

    async def settle_accepted(self, unit: Accepted) -> None:
        """Have a unit the gateway accepted whole committed, from its compact form where
        the store takes it so (``settles_compact``: with the other units that wait for
        theirs, and this returns at once if another task is writing them; ``close``
        writes what is left), else as its outcomes; and any loose outcomes; shielded
        from cancellation."""
        if self._accepted is not None:
            await self._accepted.add(unit)  # shielded where it writes
            if self._loose:
                with anyio.CancelScope(shield=True):
                    await self._flush()
            return
        with anyio.CancelScope(shield=True):
            await self.ledger.settle_unit(self.job, self._journalled(expand(unit)))
            await self._flush()

    async def _flush(self) -> None:
        if self._accepted is not None:
            await self._accepted.flush()
        if self._loose:
            loose, self._loose = self._loose, []
            await self.ledger.settle_unit(self.job, self._journalled(loose))

    def _journalled(self, outcomes: Sequence[Outcome]) -> Sequence[Outcome]:
        """A seqno is only kept where a resend could reuse it: an sms.com.my NoDR batch's
        seqno covers its whole batch, so one number resent with it would read as accepted."""
        if self._reseq is not None:
            return outcomes
        seqnos = list(map(_OUTCOME_SEQNO, outcomes))
        if seqnos.count(None) == len(seqnos):  # iSMS: none has one (counted in C)
            return outcomes
        return [o if o.seqno is None else evolve(o, seqno=None) for o in outcomes]


async def send_keyed(
    ledger: Ledger,
    key: str,
    gateway: str,
    pending: Pending[Any],
    send: Callable[[Pending[Any]], Awaitable[Outcome]],
    *,
    reseq: Callable[[Pending[Any], str], Pending[Any]] | None = None,
    resend_unknown: bool = False,
    codes: CodeTable | None = None,
) -> Outcome:
    """An idempotent single send: a key already accepted returns its recorded outcome
    without sending; one that may have left raises ``OutcomeUnknownError``; one refused
    raises the typed error of its recorded code (``codes``, the gateway's table) again;
    otherwise the send is claimed, made, and its outcome (or error's outcome) committed."""
    from ._client import accepted_or_raise
    from .ledger._decide import INPUT_CHANGED

    with anyio.CancelScope(shield=True):
        plan = await ledger.claim_key(
            key, _entry(pending), gateway=gateway, resend_unknown=resend_unknown
        )
    if not plan.send:
        (outcome,) = _from_ledger(plan.outcomes)
        if outcome.status is OutcomeStatus.UNKNOWN:
            raise OutcomeUnknownError(outcome.reason or "it may have been sent", outcome=outcome)
        if outcome.reason == INPUT_CHANGED:  # the caller's mistake: no gateway said a word
            raise ValidationError(
                f"key {key!r} was already used for another message (another number or "
                "text): nothing was sent; a new message needs a new key",
                field="key",
            )
        if outcome.status is OutcomeStatus.REJECTED and outcome.code is not None and codes:
            raise codes.replayed(outcome)  # the typed error the first attempt raised
        return accepted_or_raise(outcome)
    (entry,) = plan.send
    if entry.seqno is not None and entry.seqno != pending.seqno and reseq is not None:
        pending = reseq(pending, entry.seqno)
    try:
        outcome = await send(pending)
    except BaseException as exc:
        failed = getattr(exc, "outcome", None)
        if not isinstance(failed, Outcome):  # cancelled, or no outcome: it may have left
            reason = "the send ended without an answer; it may have been sent"
            failed = pending.outcome(OutcomeStatus.UNKNOWN, reason)
        with anyio.CancelScope(shield=True):
            await ledger.settle_key(key, failed)
        raise
    with anyio.CancelScope(shield=True):
        await ledger.settle_key(key, outcome)
    return outcome
