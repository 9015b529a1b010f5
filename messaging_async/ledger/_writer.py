"""The writer process: a ``SqliteLedger``'s job units, written off the client's GIL.

A blast journalled in a thread of its own process cost the client about twice the CPU of
the plain blast: ``sqlite3`` binds every value with the GIL held, and the event loop and
the writer thread took turns on it (RESULTS.md, "Ledger": a thread that only pickled the
rows, writing nothing, already left the journalled blast at 0.70 of the plain one). So a
``SqliteLedger`` runs its jobs' unit calls (``plan``, ``begin_unit``, ``settle_unit``,
``settle_accepted``) in this process, started by ``_writer_client.WriterProcess`` with
``_writer.main`` run by this interpreter: the same ``Store`` code on its own
connection to the same file, on the other core. What it is sent is columns of plain
values, the content in its canonical form (``_fingerprint.Canonical``), not the SDK's
objects: the client's share of a unit is what it takes to pickle those.

The protocol is frames (a 4-byte length, then a pickle) on the child's stdin and stdout,
between a process and the child it started: nothing else can write to them, so the
pickles are the parent's own. A frame is one of ``("open", path, store_text, lease)``,
``("adopt", job, job_id, run_id, gateway, fresh)`` (the run the parent opened),
``("drop", job)`` (the run let go of it),
``("trip", now, [(op, payload), …])`` (the calls of one ``Batcher`` trip, in one
transaction, each answered ``(result, error)``); every frame gets one answer frame. The
child writes nothing else to stdout, ignores Ctrl-C and SIGTERM (the terminal sends Ctrl-C
to the whole process group, systemd its SIGTERM to the whole service, and the parent,
which takes both as "stop", must still land its shielded settles), and exits when its
stdin ends: the parent closed it, or died (a SIGKILLed blast leaves no writer behind; the
trip under way, if any, commits or rolls back whole first).
"""

from __future__ import annotations

import pickle
import signal
import struct
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..errors import LedgerError
from ._fingerprint import Canonical, text_form
from ._lean_rows import Claims
from ._models import Entry, Plan
from ._run import Run
from ._schema import connect, migrate
from ._store import Store

__all__ = ["LENGTH", "OPS", "Settled", "frame", "load", "main", "read_frame", "write_frame"]

LENGTH = struct.Struct("<I")
"""A frame's length, before it."""


def frame(message: object) -> bytes:
    """``message`` as a frame: its length, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(data)) + data


def write_frame(stream: IO[bytes], message: object) -> None:
    stream.write(frame(message))
    stream.flush()


def read_frame(stream: IO[bytes]) -> bytes:
    """The next frame's pickle; ``EOFError`` when the other side has gone."""
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        raise EOFError
    (length,) = LENGTH.unpack(head)
    data = stream.read(length)
    if len(data) < length:
        raise EOFError
    return data


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


def _plan_and_begin(
    store: Store, job: str, columns: EntryColumns, resend_unknown: bool, reports: bool
) -> Any:
    """A fresh job's unit keyed by position (a blast's usual unit) is claimed straight
    from its columns (``Store.plan_and_begin_columns``), its plan "send them all, as
    given"; any other is made into entries and planned the usual way."""
    positions, numbers, refs, contents, seqnos, texts = columns
    unit = Claims(None, positions, numbers, contents, texts, seqnos)
    if store.plan_and_begin_columns(job, unit, refs, reports):
        return None
    entries = _entries(columns)
    return _plan_reply(entries, store.plan_and_begin(job, entries, resend_unknown, reports))


def _begin(store: Store, job: str, columns: EntryColumns, reports: bool) -> None:
    store.begin_unit(job, _entries(columns), reports)


def _settle(store: Store, job: str, rows: list[tuple[Any, ...]]) -> None:
    store.settle_unit(job, [Settled(row) for row in rows])  # type: ignore[misc]


def _settle_accepted(store: Store, job: str, *columns: Any) -> None:
    store.settle_accepted(job, *columns)


OPS: dict[str, Callable[..., Any]] = {
    "plan": _plan,
    "plan_and_begin": _plan_and_begin,
    "begin": _begin,
    "settle": _settle,
    "settle_accepted": _settle_accepted,
}


# -- the child ---------------------------------------------------------------------------


class _Call:
    """A call as ``Store.run_trip`` runs it (``_batch.Call`` without its event)."""

    __slots__ = ("args", "error", "function", "result")

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...]):
        self.function, self.args = function, args
        self.result: Any = None
        self.error: BaseException | None = None


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives a pickle round trip, else a ``LedgerError`` saying it."""
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 (made here)
    except Exception:
        return LedgerError(f"the ledger's writer process failed: {type(error).__name__}: {error}")
    return error


class _Writer:
    def __init__(self) -> None:
        self.store: Store | None = None
        self.now = 0.0

    def answer(self, message: Sequence[Any]) -> Any:
        kind = message[0]
        if kind == "open":
            return self.open(*message[1:])
        store = self.store
        if store is None:
            raise LedgerError("the writer process was not opened")
        if kind == "adopt":
            job, job_id, run_id, gateway, fresh = message[1:]
            store.runs[job] = Run(job_id, run_id, gateway, fresh=fresh)
            return None
        if kind == "drop":
            store.runs.pop(message[1], None)
            return None
        if kind == "trip":
            self.now = message[1]
            calls = [_Call(OPS[op], (store, *args)) for op, args in message[2]]
            store.run_trip(calls)  # type: ignore[arg-type]
            return [(c.result, None if c.error is None else _portable(c.error)) for c in calls]
        raise LedgerError(f"the writer process got an unknown frame {kind!r}")

    def open(self, path: str, store_text: bool, lease: float) -> None:
        conn = connect(path)
        try:
            migrate(conn)
            self.store = Store(conn, store_text=store_text, lease_seconds=lease, clock=self.clock)
        except BaseException:
            conn.close()
            raise

    def clock(self) -> float:
        """The time the parent read from its clock for this trip (a test's clock too)."""
        return self.now

    def close(self) -> None:
        if self.store is not None:
            self.store.conn.close()


def main() -> None:
    for number in (signal.SIGINT, signal.SIGTERM):  # to the group: the parent's to take
        signal.signal(number, signal.SIG_IGN)
    frames_in, frames_out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames on the parent's pipe
    writer = _Writer()
    try:
        while True:
            try:
                data = read_frame(frames_in)
            except EOFError:
                return
            try:
                reply: tuple[bool, Any] = (True, writer.answer(load(data)))
            except Exception as error:
                reply = (False, _portable(error))
            try:
                write_frame(frames_out, reply)
            except (BrokenPipeError, OSError):
                return  # the parent has gone
    finally:
        writer.close()


if __name__ == "__main__":
    main()
