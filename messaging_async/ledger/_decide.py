"""The resume rules, as one pure function: given what the ledger holds for a recipient,
what becomes of it now. No storage here, so every rule is testable on its own and a
second store (PostgreSQL) applies exactly the same ones.
"""

from __future__ import annotations

from typing import NamedTuple

from attrs import evolve

from ..models import Outcome, OutcomeStatus, new_outcome
from ._models import IN_FLIGHT, Entry

__all__ = ["SEQNO_MEMORY", "Decision", "Recorded", "decide", "outcome_of", "recorded"]

SEQNO_MEMORY = 23 * 3600.0
"""How long a recorded seqno is trusted to make a resend harmless: sms.com.my remembers
seqnos for 24 hours; an hour is kept back for clocks and the time a resend takes."""

REF_REPEATED = "rejected: this ref appears more than once in the job; only the first is sent"
INPUT_CHANGED = (
    "rejected: input changed — this recipient's number or message differs from what the "
    "job recorded for it; nothing was sent (use a new job to send the new content)"
)
LEFT_IN_FLIGHT = (
    "in flight when an earlier run stopped: it may have reached the gateway, which has no "
    "idempotency key for it, so it is not sent again"
)
BEING_SENT = "being sent right now by another live process under the same key"


class Recorded(NamedTuple):
    """A recipient's row, as far as the rules need it."""

    fingerprint: bytes | None
    state: str
    code: int | None
    reason: str | None
    message_id: str | None
    request_id: str | None
    seqno: str | None
    run: int | None
    position: int | None
    began_at: float | None


class Decision(NamedTuple):
    """Send ``entry`` (possibly with a recorded seqno), or report ``outcome`` as it is.

    ``mark_unknown`` asks the store to record the outcome (a dead run's in-flight
    recipient becoming ``unknown``).
    """

    entry: Entry | None
    outcome: Outcome | None = None
    mark_unknown: bool = False


def decide(
    entry: Entry,
    fingerprint: bytes,
    row: Recorded | None,
    *,
    run: int,
    now: float,
    resend_unknown: bool,
    owner_alive: bool = False,
) -> Decision:
    """The rules of a resumed job (see ``Ledger.plan``), for one recipient.

    ``run`` is the run asking; ``owner_alive`` whether the run that left ``row`` in flight
    is still alive (always false for a job: its run holds the job alone).
    """
    if row is None or row.fingerprint is None:
        return Decision(entry)  # never claimed, or only counted (not_sent before any claim)
    if row.run == run and (row.state == IN_FLIGHT or row.position != entry.position):
        return Decision(None, entry.outcome(OutcomeStatus.REJECTED, REF_REPEATED))
    if row.fingerprint != fingerprint:
        return Decision(None, entry.outcome(OutcomeStatus.REJECTED, INPUT_CHANGED))
    if row.state == IN_FLIGHT and owner_alive:
        return Decision(None, entry.outcome(OutcomeStatus.UNKNOWN, BEING_SENT))
    if row.state == OutcomeStatus.NOT_SENT:
        return Decision(entry)
    if row.state in (IN_FLIGHT, OutcomeStatus.UNKNOWN):
        return _maybe_again(entry, row, now=now, resend_unknown=resend_unknown)
    return Decision(None, recorded(entry, row))


def _maybe_again(entry: Entry, row: Recorded, *, now: float, resend_unknown: bool) -> Decision:
    """A recipient that may have left: sent again only where that cannot deliver twice
    (its seqno is still remembered by the gateway), or where the caller accepts the risk."""
    key_alive = (
        row.seqno is not None and row.began_at is not None and now - row.began_at < SEQNO_MEMORY
    )
    if key_alive:
        return Decision(entry._replace(seqno=row.seqno))
    if resend_unknown:
        return Decision(entry)
    if row.state == IN_FLIGHT:
        unknown = entry.outcome(OutcomeStatus.UNKNOWN, LEFT_IN_FLIGHT)
        return Decision(None, evolve(unknown, seqno=row.seqno), mark_unknown=True)
    return Decision(None, recorded(entry, row))


_STATUSES = {status.value: status for status in OutcomeStatus}


def recorded(entry: Entry, row: Recorded) -> Outcome:
    """The outcome the ledger holds, for this run's input position and ref."""
    return outcome_of(entry, *row[1:7])


def outcome_of(
    entry: Entry,
    state: str,
    code: int | None,
    reason: str | None,
    message_id: str | None,
    request_id: str | None,
    seqno: str | None,
    from_ledger: bool = False,
) -> Outcome:
    """An outcome from a row's columns (``Recorded``'s, from ``state`` to ``seqno``).

    Built by ``new_outcome``: one is made per resumed recipient."""
    status = _STATUSES[state]
    return new_outcome(
        entry.to,
        status,
        entry.position,
        message_id,
        code,
        reason,
        entry.ref,
        request_id,
        seqno,
        None,
        None,
        from_ledger,
    )
