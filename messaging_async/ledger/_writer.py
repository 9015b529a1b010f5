"""The writer process: a ``SqliteLedger``'s job units, written off the client's GIL.

A blast journalled in a thread of its own process cost the client about twice the CPU of
the plain blast: ``sqlite3`` binds every value with the GIL held, and the event loop and
the writer thread took turns on it (RESULTS.md, "Ledger": a thread that only pickled the
rows, writing nothing, already left the journalled blast at 0.70 of the plain one). So a
``SqliteLedger`` runs its jobs' unit calls (``plan``, ``begin_unit``, ``settle_unit``,
``settle_accepted``) in this process, started by ``_writer_child.start_child`` with
``_writer.main`` run by this interpreter: the same ``Store`` code on its own
connection to the same file, on the other core. What it is sent is columns of plain
values, the content in its canonical form (``_fingerprint.Canonical``), not the SDK's
objects: the client's share of a unit is what it takes to pickle those.

The protocol is frames (a head: the pickle's length, a request number, whether the frame
is urgent; then a pickle) on the child's stdin and stdout, between a process and the child
it started: nothing else can write to them, so the pickles are the parent's own. A frame
is one of ``("open", path, store_text, lease)``,
``("adopt", job, job_id, run_id, gateway, fresh)`` (the run the parent opened),
``("drop", job)`` (the run let go of it),
``("trip", now, [(op, payload), …])`` (the calls of one ``Batcher`` trip, each answered
``(result, error)``); every frame gets one answer frame, with its number, when it is done:
not in the order sent. Claims first: a unit's request waits for its claim (an urgent
trip), for its settle nobody waits but the end of the blast; in order, a claim waited
behind settle trips of ~1,000 rows, 5-6 ms each, and the parent's writes behind a full
pipe (claim median ~20 ms against ~14 ms for the unit's HTTP, traced on main at
0d074af). So a thread reads the frames as they come (``Inbox``), urgent trips run before
the rest, all that wait in one transaction, and a settle trip under way lets them go
between its calls: the calls done so far are committed (a call that fails is undone
alone, ``Store.run_trip``, so a unit is atomic; a trip never was more than a batch of
units).

The child writes nothing else to stdout, ignores Ctrl-C and SIGTERM (the terminal sends
Ctrl-C to the whole process group, systemd its SIGTERM to the whole service, and the
parent, which takes both as "stop", must still land its shielded settles), and exits when
its stdin ends: the parent closed it, or died (a SIGKILLed blast leaves no writer behind;
the frames it sent whole are run first, each trip's transaction committed or rolled back
whole, unanswered once the parent has gone).
"""

from __future__ import annotations

import pickle
import signal
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..errors import LedgerError
from ._fingerprint import Canonical, text_form
from ._lean_rows import Claims
from ._models import Entry, Plan
from ._store import Store

__all__ = ["HEAD", "OPS", "Settled", "frame", "framed", "load", "main", "read_frame"]

HEAD = struct.Struct("<IIB")
"""A frame's head: its pickle's length, its request's number (an answer carries its
request's), and whether it is urgent (run before the others waiting: ``Inbox``)."""


def frame(number: int, message: object, urgent: bool = False) -> bytes:
    """``message`` as a frame: its head, then its pickle."""
    return framed(number, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL), urgent)


def framed(number: int, data: bytes, urgent: bool = False) -> bytes:
    """A frame of ``data``, a pickle (the parent's: ``_writer_calls.dumps``)."""
    return HEAD.pack(len(data), number, urgent) + data


def read_frame(stream: IO[bytes]) -> tuple[int, bool, bytes]:
    """The next frame: its number, whether it is urgent, its pickle; ``EOFError`` when the
    other side has gone (a frame cut short too: the rest will never come)."""
    head = stream.read(HEAD.size)
    if len(head) < HEAD.size:
        raise EOFError
    length, number, urgent = HEAD.unpack(head)
    data = stream.read(length)
    if len(data) < length:
        raise EOFError
    return number, bool(urgent), data


def load(data: bytes) -> Any:
    """A frame's message. One that cannot be unpickled here (a class of the caller's
    that this process cannot import) is a ``LedgerError`` for its request alone: the frame
    was read whole, so the next one is read as usual (the child used to die of it, and
    the ledger with it). The error says what kind of failure, never the value."""
    try:
        return pickle.loads(data)  # noqa: S301 (our own parent's frames, on a private pipe)
    except Exception as error:
        message = f"the ledger's writer process could not read a call: {type(error).__name__}"
        raise LedgerError(message) from None


# -- the calls, as sent (see ``_writer_client`` for the other side) ------------------------

EntryColumns = tuple[
    Sequence[int], Sequence[str], Sequence[Any], Sequence[str], Sequence[str | None], bool
]
"""A unit's entries as columns: positions, numbers, refs, contents, seqnos; the contents
are in canonical form (``_fingerprint.canonical``), or, where the last item is true (every
one an ``Sms``: the usual unit), the texts alone."""


class Settled:
    """An outcome as ``Store.settle_unit`` reads it (``_lean_rows._OUTCOME``, ``ref``)."""

    __slots__ = (
        "code",
        "index",
        "message_id",
        "reason",
        "ref",
        "request_id",
        "seqno",
        "status",
        "to",
    )

    def __init__(self, row: tuple[Any, ...]):
        (self.index, self.to, self.status, self.code, self.reason) = row[:5]
        (self.message_id, self.request_id, self.seqno, self.ref) = row[5:]


def _entries(columns: EntryColumns) -> list[Entry]:
    positions, numbers, refs, contents, seqnos, texts = columns
    if texts:
        contents = list(map(text_form, contents))
    return [
        Entry(position, to, ref, Canonical(content), seqno)
        for position, to, ref, content, seqno in zip(
            positions, numbers, refs, contents, seqnos, strict=True
        )
    ]


def _plan_reply(entries: list[Entry], plan: Plan) -> Any:
    """``None`` for the usual plan (send them all, as given), else what to send (position,
    seqno) and the outcomes decided."""
    same = not plan.outcomes and len(plan.send) == len(entries)
    if same and all(sent is entry for sent, entry in zip(plan.send, entries, strict=True)):
        return None
    return [(entry.position, entry.seqno) for entry in plan.send], plan.outcomes


def _plan(store: Store, job: str, columns: EntryColumns, resend_unknown: bool) -> Any:
    entries = _entries(columns)
    return _plan_reply(entries, store.plan(job, entries, resend_unknown))


def _claims(columns: EntryColumns) -> Claims:
    positions, numbers, _, contents, seqnos, texts = columns
    return Claims(None, positions, numbers, contents, texts, seqnos)


def _plan_and_begin(
    store: Store, job: str, columns: EntryColumns, resend_unknown: bool, reports: bool
) -> Any:
    """A fresh job's unit keyed by position (a blast's usual unit) is claimed straight
    from its columns (``Store.plan_and_begin_columns``), its plan "send them all, as
    given"; any other is made into entries and planned the usual way."""
    if store.plan_and_begin_columns(job, [_claims(columns)], [columns[2]], reports):
        return None
    entries = _entries(columns)
    return _plan_reply(entries, store.plan_and_begin(job, entries, resend_unknown, reports))


def _plan_and_begin_units(
    store: Store, job: str, units: list[EntryColumns], resend_unknown: bool, reports: bool
) -> list[tuple[Any, BaseException | None]]:
    """The ``plan_and_begin`` calls of consecutive units of ``job`` in a trip (a claims
    trip's, ``Writer.calls``), answered each. Fresh units keyed by position (a blast's)
    are claimed together (``Store.plan_and_begin_columns``: one pass, full statements, in
    a savepoint of their own); else, or should that fail, each alone, as sent, in a
    savepoint (the trip has none a call: ``Store.run_trip``), so that the one that fails
    is told why and the others are claimed. A trip of 20 units of 50 SMS is claimed in
    1.74-1.77 µs a recipient so, 1.90-1.93 a unit at a time (the child's ``answer``, its
    statements prepared; the writer's Python a call ~8 µs, SQLite's a statement)."""
    if len(units) == 1:  # the trip's own undoing (``rerun``) is this call's
        return [(_plan_and_begin(store, job, units[0], resend_unknown, reports), None)]
    claims, refs = [_claims(unit) for unit in units], [unit[2] for unit in units]
    try:
        with store.savepoint():
            if store.plan_and_begin_columns(job, claims, refs, reports):
                return [(None, None)] * len(units)
    except Exception:  # each alone, below: the one that fails is told why
        if not store.active():  # SQLite undid the trip: it runs again without this call
            raise
    answers: list[tuple[Any, BaseException | None]] = []
    for unit in units:
        try:
            with store.savepoint():
                answers.append((_plan_and_begin(store, job, unit, resend_unknown, reports), None))
        except Exception as error:
            if not store.active():  # a savepoint now would begin a transaction of its own
                raise
            answers.append((None, error))
    return answers


def _begin(store: Store, job: str, columns: EntryColumns, reports: bool) -> None:
    store.begin_unit(job, _entries(columns), reports)


def _settle(store: Store, job: str, rows: list[tuple[Any, ...]]) -> None:
    store.settle_unit(job, [Settled(row) for row in rows])  # type: ignore[misc]


def _settle_accepted(store: Store, job: str, *columns: Any) -> None:
    store.settle_accepted(job, *columns)


OPS: dict[str, Callable[..., Any]] = {
    "plan": _plan,
    "plan_and_begin": _plan_and_begin_units,  # a trip's consecutive units: ``Writer.calls``
    "begin": _begin,
    "settle": _settle,
    "settle_accepted": _settle_accepted,
}


# -- the child ---------------------------------------------------------------------------


def main() -> None:
    from ._writer_serve import Inbox, Writer  # they read this module's frames and ops

    for number in (signal.SIGINT, signal.SIGTERM):  # to the group: the parent's to take
        signal.signal(number, signal.SIG_IGN)
    frames_in, frames_out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames on the parent's pipe
    inbox = Inbox()
    threading.Thread(target=inbox.read, args=(frames_in,), daemon=True).start()
    writer = Writer(inbox, frames_out)
    try:
        writer.serve()
    finally:
        writer.close()


if __name__ == "__main__":
    main()
