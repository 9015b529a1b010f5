"""Resuming a job without preparing again what an earlier run settled.

The runner of a resumed job asks, a window of raw input at a time (one trip, one read of
the window's rows), which recipients an earlier run settled with this very input: those
keep their recorded outcome without being validated, normalised, put in units or planned
(issue 14 asks a resume to skip settled recipients at 200,000 a second; preparing one
costs about as much as everything else it does). The rest go the usual way
(``Store.plan``), which decides them exactly as before.

"This very input" is the condition ``Store.plan`` reads a settled row's outcome by (same
fingerprint, same input position, settled by an earlier run), on the number as the
caller gave it: it must be the recorded wire number, and one that ``normalize_number``
returns unchanged whatever the client's default country, so preparing it would have
given that very number. Anything else (a number written another way, a changed text, a
ref the ledger cannot key, a row in flight or not sent) goes the usual way: "input
changed", unknowns and repeats are still said by the one rule that says them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..models import Outcome
from ..phone import normalize_number
from ._decide import outcome_of
from ._fingerprint import fingerprint
from ._models import Entry, Plan, key_of

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["skip_settled"]

Row = tuple[Any, ...]

# A row as read here: its position, then the resume rule's columns (``sql.ROW``'s, but for
# ``began_at``) and the recorded wire number; by key, the key last.
_COLUMNS = (
    "position, fingerprint, state, code, reason, message_id, request_id, seqno, run, recipient"
)
_FP, _STATE, _SEQNO_END, _RUN, _RECIPIENT = 1, 2, 8, 8, 9
_SETTLED = frozenset(("accepted", "rejected"))


def skip_settled(store: Store, job: str, entries: Sequence[Entry]) -> Plan:
    """``outcomes``: the recorded outcomes of ``entries`` an earlier run settled with this
    very input (see the module docstring), marked ``from_ledger``; ``send``: the others,
    untouched, in order.

    ``entries`` carry the caller's number as given (not yet normalised). Reads only.
    """
    run = store.run_of(job)
    if run.fresh or not entries:  # this run created the job: nothing earlier to find
        return Plan(tuple(entries), ())
    with store.lock:
        found = _rows(store, run.job_id, entries)
    rest: list[Entry] = []
    outcomes: list[Outcome] = []
    run_id, salt = run.run_id, store.salt
    for entry in entries:
        raw = found(entry)
        if (
            raw is not None
            and raw[_STATE] in _SETTLED
            and raw[0] == entry.position
            and raw[_RUN] != run_id
            and raw[_RECIPIENT] == entry.to
            and _as_sent(entry.to)
            and raw[_FP] == fingerprint(entry.to, entry.content, salt)
        ):
            state, code, reason, message_id, request_id, seqno = raw[_STATE:_SEQNO_END]
            outcomes.append(
                outcome_of(entry, state, code, reason, message_id, request_id, seqno, True)
            )
        else:
            rest.append(entry)
    return Plan(tuple(rest), tuple(outcomes))


def _rows(store: Store, job_id: int, entries: Sequence[Entry]) -> Callable[[Entry], Row | None]:
    """The entries' recorded rows, in one query, and how to find an entry's: by position
    where the entries are consecutive input positions without refs (the usual input: a
    range of the keys, and no key made per entry), else by key."""
    first, last = entries[0].position, entries[-1].position
    if last - first == len(entries) - 1 and all(
        entry.ref is None and entry.position == first + i for i, entry in enumerate(entries)
    ):
        found = store.conn.execute(  # only keys of positions: a row is found by its position
            f"SELECT {_COLUMNS} FROM sends WHERE job = ? AND key BETWEEN ? AND ?"  # noqa: S608
            " AND substr(key, 1, 2) = 'p:'",
            (job_id, key_of(None, first), key_of(None, last)),
        )
        by_position = {row[0]: row for row in found}.get
        return lambda entry: by_position(entry.position)
    keys = [key for entry in entries if (key := key_of(entry.ref, entry.position)) is not None]
    if not keys:
        return lambda entry: None
    marks = ",".join("?" * len(keys))
    found = store.conn.execute(
        f"SELECT {_COLUMNS}, key FROM sends WHERE job = ? AND key IN ({marks})",  # noqa: S608
        (job_id, *keys),
    )
    by_key = {row[-1]: row for row in found}.get
    return lambda entry: by_key(key_of(entry.ref, entry.position) or "")


def _as_sent(number: str) -> bool:
    """Whether preparing ``number`` gives it back unchanged under any default country: it
    does without one (a number needing the default country, one starting with 0, is
    refused without it), and the default country is only read for such numbers."""
    try:
        return normalize_number(number) == number
    except ValidationError:
        return False
