"""The calls a ``WriterProcess`` is sent (``_writer_client``), as plain columns.

Each encoder turns a ``Ledger`` call into ``(op, args, read)``: what ``_writer.OPS`` runs
in the child, and what reads its answer back into the caller's objects.

Refs are sent as plain values: a ``str`` or ``int`` subclass (an enum, say) as the plain
value that keys the same, anything the ledger cannot key as ``nan`` (refused the same;
the outcome the child decides for it gets the caller's ref back here), so no class of the
caller's need be importable in the child. Numbers, texts, seqnos, reasons, ids and job
names go as ``str`` too, and codes as ``int``, whatever subclass the caller gave (a
phone-number class of its ``__main__``, say): SQLite binds a subclass as the plain value,
and the child, which cannot import the class, would fail to read the frame. Those are
made plain by the frame's pickler (``dumps``), which meets them anyway, not by a pass
over each column.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable, Sequence
from functools import partial
from operator import attrgetter
from typing import Any

from attrs import evolve

from ..models import Outcome, OutcomeStatus
from ._batch import Call
from ._fingerprint import content_forms
from ._models import Entry, Plan, UnitEntries, all_none, key_of
from ._writer import EntryColumns

__all__ = [
    "Encoded",
    "begin_unit",
    "dumps",
    "memo_pays",
    "picklable",
    "plan",
    "plan_and_begin",
    "settle",
    "settle_accepted",
]

Encoded = tuple[str, tuple[Any, ...], Callable[[Any], Any] | None]
"""A call as sent: its op, its arguments, and what reads its answer (``None``: as is)."""

_SETTLED = attrgetter(
    "index", "to", "status", "code", "reason", "message_id", "request_id", "seqno", "ref"
)  # what ``_writer.Settled`` reads
_PLAIN = (type(None), str, int)
_REFUSED = math.nan  # a ref ``key_of`` refuses, as it refuses the caller's


class _Frames(pickle.Pickler):
    """The pickler of the frames sent to the child: a ``str`` or ``int`` of a caller's
    subclass (an enum, a class of its ``__main__``) pickled as its plain value, the one
    SQLite binds it as; ``OutcomeStatus``, ours, as it is. ``reducer_override`` is only
    asked about objects of other than the built-in types, so the usual frame (plain
    values, tuples, lists) costs nothing more. In place of a ``set`` of the types of
    every value a unit sends: a unit of 50 SMS encoded and pickled in a claim trip of 8
    units, 15.3 -> 11.8 µs; settled, 8.5 -> 6.9 µs (timeit, alternated with the sets)."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is not OutcomeStatus:
            if isinstance(obj, str):
                return str, (str.__str__(obj),)  # the characters, not what __str__ says
            if isinstance(obj, int):
                return int, (int.__index__(obj),)
        return NotImplemented


def dumps(message: object, *, memo: bool = True) -> bytes:
    """``message`` pickled to be sent to the child (``_Frames``); ``memo=False``: in
    ``pickle``'s fast mode, each object pickled where it is met, however often (see
    ``memo_pays``)."""
    buffer = io.BytesIO()
    frames = _Frames(buffer, pickle.HIGHEST_PROTOCOL)
    frames.fast = not memo
    frames.dump(message)
    return buffer.getvalue()


_CLAIMS = frozenset({"plan", "plan_and_begin", "begin"})  # their columns: ``_columns``


def memo_pays(ops: Sequence[tuple[str, Any]]) -> bool:
    """Whether a trip's frame is worth pickling with the memo: where a claim's unit sends
    one text object for its recipients (its first and last, as a caller's ``Sms(to=n,
    text=t)`` for each number sends it), which the memo sends once a frame, not once a
    recipient (16 times the bytes for a 160-character text, and the child's unpickling
    3.0 -> 15.2 µs for 400 recipients). Else nothing in a frame is met twice that the
    memo would spare (numbers, ids, positions; a plan's one text reaches the encoders
    as a canonical form made per recipient), and its table, filled with every ``str``
    and cleared after each frame, only costs: a claim trip of 8 units of 50 SMS 31.2 ->
    22.9 µs, a settle trip 30.3 -> 20.2 µs (timeit); the harness's event loop ~900
    instructions a message less (callgrind, RESULTS.md, claimcut2). Frames hold nothing
    cyclic, which fast mode cannot pickle (a caller's value that were cyclic would fail
    its own call alone: ``picklable``)."""
    for op, args in ops:
        if op in _CLAIMS:
            forms = args[1][3]
            if len(forms) > 1 and forms[0] is forms[-1]:
                return True
    return False


def picklable(
    sent: list[tuple[Call[Any], Callable[[Any], Any] | None]],
    ops: list[tuple[str, Any]],
    memo: bool,
) -> tuple[list[tuple[Call[Any], Callable[[Any], Any] | None]], list[tuple[str, Any]]]:
    """The calls of a trip whose ops pickle (``memo`` as the trip's frame: a cyclic value
    pickles with the memo, not without), and their ops; each other call failed with its
    own error, as SQLite's binding fails it in a thread (a savepoint a call), not the
    trip's other calls with it. Only when the trip's frame would not pickle."""
    kept: list[tuple[Call[Any], Callable[[Any], Any] | None]] = []
    kept_ops = []
    for (call, read), op in zip(sent, ops, strict=True):
        try:
            dumps(op, memo=memo)
        except Exception as refused:
            call.error = refused
            continue
        kept.append((call, read))
        kept_ops.append(op)
    return kept, kept_ops


def _plain_ref(ref: Any) -> Any:
    """A value of a plain type that ``key_of`` keys as it keys ``ref`` (see above)."""
    key = key_of(ref, 0)
    if key is None:
        return _REFUSED
    return key[2:] if key[0] == "s" else int(key[2:])


def _plain_refs(refs: Sequence[Any]) -> tuple[Sequence[Any], bool]:
    """``refs`` as sent, and whether any was changed (rare: their types checked in C).
    A blast's refs are all ``None`` most often: counted so first, no object made (1.2 ->
    0.16 µs a unit of 50, timeit)."""
    if all_none(refs) or set(map(type, refs)).issubset(_PLAIN):
        return refs, False
    return [ref if type(ref) in _PLAIN else _plain_ref(ref) for ref in refs], True


def _columns(entries: Sequence[Entry]) -> tuple[EntryColumns, bool]:
    """``entries`` as the columns sent, and whether a ref was changed (``_plain_refs``).

    The runner's ``UnitEntries`` are columns already (no ``Entry`` made); other entries
    are read by one ``zip``. This runs on the event loop for every unit."""
    if not entries:
        return ((), (), (), (), (), False), False
    read: tuple[Sequence[Any], ...] = (
        entries.columns if isinstance(entries, UnitEntries) else tuple(zip(*entries, strict=True))
    )
    positions, numbers, given, contents, seqnos = read
    refs, changed = _plain_refs(given)
    forms, texts = content_forms(contents)  # the usual unit (``Sms`` only): its texts
    return (positions, numbers, refs, forms, seqnos, texts), changed


def _plan_of(entries: Sequence[Entry], refs_changed: bool, answer: Any) -> Plan:
    """The child's plan, in the caller's entries (``_writer._plan_reply``)."""
    if answer is None:  # all of them, as given (the runner's ``UnitEntries`` left as it is)
        return Plan(entries if isinstance(entries, UnitEntries) else tuple(entries), ())
    send, outcomes = answer
    at = {entry.position: entry for entry in entries}
    chosen = []
    for position, seqno in send:
        entry = at[position]
        chosen.append(entry if entry.seqno == seqno else entry._replace(seqno=seqno))
    if refs_changed:  # the caller's refs back on the outcomes decided
        outcomes = [o if o.index not in at else evolve(o, ref=at[o.index].ref) for o in outcomes]
    return Plan(tuple(chosen), tuple(outcomes))


def plan(job: str, entries: Sequence[Entry], resend_unknown: bool) -> Encoded:
    columns, changed = _columns(entries)
    return "plan", (job, columns, resend_unknown), partial(_plan_of, entries, changed)


def plan_and_begin(
    job: str, entries: Sequence[Entry], resend_unknown: bool, expect_reports: bool
) -> Encoded:
    columns, changed = _columns(entries)
    args = (job, columns, resend_unknown, expect_reports)
    return "plan_and_begin", args, partial(_plan_of, entries, changed)


def begin_unit(job: str, entries: Sequence[Entry], expect_reports: bool) -> Encoded:
    return "begin", (job, _columns(entries)[0], expect_reports), None


def settle(job: str, outcomes: Sequence[Outcome]) -> Encoded:
    rows = list(map(_SETTLED, outcomes))
    refs, changed = _plain_refs([row[-1] for row in rows])
    if changed:
        rows = [(*row[:-1], ref) for row, ref in zip(rows, refs, strict=True)]
    return "settle", (job, rows), None


def settle_accepted(
    job: str,
    indices: Sequence[int],
    numbers: Sequence[str],
    refs: Sequence[Any],
    message_ids: Sequence[str | None],
    code: int | None,
) -> Encoded:
    sent_refs, _ = _plain_refs(_listed(refs))
    args = (job, _listed(indices), _listed(numbers), sent_refs, _listed(message_ids), code)
    return "settle_accepted", args, None


def _listed(column: Sequence[Any]) -> Sequence[Any]:
    """``column`` as it is where it is a tuple or a list (a single unit's, the runner's),
    else a list of it: units coalesced (``_accepted_settles.Joined``, joined here, as the
    frame is pickled, and let go with the trip's ops) or a caller's other ``Sequence``,
    whose class the child could not import. No copy of a tuple: a list was four more
    objects a settle call, each holding a reference to every value of its units, for the
    young collections to walk while its trip was under way."""
    return column if type(column) is tuple or type(column) is list else list(column)
