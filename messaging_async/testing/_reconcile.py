"""The one invariant checker: a bulk run's outcomes against what the sandbox recorded.

Tests, the soak and users' own tests use it, so "every recipient ends in exactly one
honest outcome" is checked the same way everywhere. Identities are checked, not only
counts: an ``accepted`` outcome must carry the number and the message id the gateway
recorded for that very message, so a swapped or truncated id fails.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from attrs import frozen

from ..models import Outcome, OutcomeStatus
from ._records import SentMessage

__all__ = ["Reconciliation", "reconcile"]

# sms.com.my's "duplicate seqno": our earlier attempt was accepted, and the gateway does not
# repeat its id (CONTRACT C1), so such an accepted outcome honestly carries none.
_ACCEPTED_WITHOUT_ID = 1718
# How many times the gateway may have recorded a message, by the outcome reported for it.
_RECORDED_TIMES = {OutcomeStatus.ACCEPTED: (1,), OutcomeStatus.UNKNOWN: (0, 1)}
_NEVER = (0,)  # rejected and not_sent: it never reached the gateway


@frozen
class Reconciliation:
    """What ``reconcile`` found. ``counts``: outcomes by status; ``unaccounted``: inputs
    read without exactly one outcome (or outcomes for no input); ``duplicates``: messages
    the gateway recorded more than once; ``mismatches``: outcomes that contradict the
    gateway's records (wrong count, number or id), one line each, no message text."""

    counts: Counter[str]
    unaccounted: int
    duplicates: int
    mismatches: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not (self.unaccounted or self.duplicates or self.mismatches)

    def check(self) -> Counter[str]:
        """The counts, or an ``AssertionError`` naming what broke."""
        if not self.ok:
            shown = "; ".join(self.mismatches[:5])
            more = f" (+{len(self.mismatches) - 5} more)" if len(self.mismatches) > 5 else ""
            raise AssertionError(
                f"unaccounted {self.unaccounted}, duplicates {self.duplicates}, "
                f"mismatches {len(self.mismatches)}: {shown}{more}"
            )
        return self.counts


def reconcile(
    batch: Sequence[Any],
    outcomes: Iterable[Outcome],
    sent: Iterable[SentMessage],
    *,
    read: int | None = None,
) -> Reconciliation:
    """Check ``outcomes`` of sending ``batch`` (of which the first ``read`` items were read;
    all by default) against ``sent``, the sandbox's records.

    Records are matched to inputs by text, so each text in ``batch`` must be unique.
    ``accepted`` ⇔ recorded exactly once, with the outcome's ``to`` and ``message_id``;
    ``unknown`` ⇔ recorded at most once (to that number); ``rejected`` / ``not_sent`` ⇔ never.
    The one accepted outcome allowed no id is sms.com.my's 1718 (a retry's "duplicate").
    """
    outcomes = list(outcomes)
    read = len(batch) if read is None else read
    records: defaultdict[str, list[SentMessage]] = defaultdict(list)
    for message in sent:
        if message.text is not None:
            records[message.text].append(message)
    per_index = Counter(outcome.index for outcome in outcomes)
    unaccounted = sum(1 for i in range(read) if per_index[i] != 1)
    unaccounted += sum(count for index, count in per_index.items() if not 0 <= index < read)
    texts = {getattr(batch[i], "text", None) for i in range(min(read, len(batch)))}
    duplicates = sum(1 for text in texts if text is not None and len(records.get(text, ())) > 1)
    mismatches: list[str] = []
    for outcome in outcomes:
        if 0 <= outcome.index < min(read, len(batch)):
            text = getattr(batch[outcome.index], "text", None)
            problem = _mismatch(outcome, records.get(text, []) if text is not None else [])
            if problem is not None:
                mismatches.append(problem)
    counts = Counter(outcome.status.value for outcome in outcomes)
    return Reconciliation(counts, unaccounted, duplicates, tuple(mismatches))


def _mismatch(outcome: Outcome, recorded: list[SentMessage]) -> str | None:
    """Why ``outcome`` contradicts ``recorded`` (the records of its message), or ``None``."""
    where = f"#{outcome.index} {outcome.status.value}"
    if len(recorded) not in _RECORDED_TIMES.get(outcome.status, _NEVER):
        return f"{where} but the gateway recorded it {len(recorded)} times"
    if not recorded:
        return None
    record = recorded[0]
    if record.to != outcome.to:
        return f"{where} to {outcome.to} but the gateway recorded it for {record.to}"
    if (
        outcome.status is OutcomeStatus.ACCEPTED
        and record.message_id != outcome.message_id
        and not (outcome.message_id is None and outcome.code == _ACCEPTED_WITHOUT_ID)
    ):
        return f"{where} with id {outcome.message_id!r}, the gateway's is {record.message_id!r}"
    return None
