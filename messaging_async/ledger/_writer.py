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
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..errors import LedgerError
from ._fingerprint import Canonical, text_form
from ._models import Entry, Plan
from ._run import Run
from ._schema import connect, migrate
from ._store import Store

__all__ = ["HEAD", "OPS", "Settled", "frame", "load", "main", "read_frame"]

HEAD = struct.Struct("<IIB")
"""A frame's head: its pickle's length, its request's number (an answer carries its
request's), and whether it is urgent (run before the others waiting: ``Inbox``)."""


def frame(number: int, message: object, urgent: bool = False) -> bytes:
    """``message`` as a frame: its head, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
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

EntryColumns = tuple[list[int], list[str], list[Any], list[str], list[str | None], bool]
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
    """A call as ``Store.run_trip`` runs it (``_batch.Call`` without its event), at the
    time its trip was sent (``_Writer.clock``)."""

    __slots__ = ("args", "error", "function", "result")

    def __init__(self, writer: _Writer, now: float, function: Callable[..., Any], args: Any):
        self.function, self.args = writer.at, (now, function, *args)
        self.result: Any = None
        self.error: BaseException | None = None


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives a pickle round trip, else a ``LedgerError`` saying it."""
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 (made here)
    except Exception:
        return LedgerError(f"the ledger's writer process failed: {type(error).__name__}: {error}")
    return error


class Inbox:
    """The frames read and not yet answered, read by a thread of their own as they come:
    the parent's writes never wait for SQLite (``sqlite3`` lets go of the GIL while it
    steps), and an urgent frame (a unit's claim: its request waits for it) is seen while
    a settle trip runs, to go before the rest of it (``_Writer.settle``)."""

    def __init__(self) -> None:
        self.urgent: deque[tuple[int, bytes]] = deque()
        self.rest: deque[tuple[int, bytes]] = deque()
        self.ended = False
        self._ready = threading.Condition()

    def read(self, stream: IO[bytes]) -> None:
        """Read ``stream``'s frames to its end (the reader thread)."""
        try:
            while True:
                number, urgent, data = read_frame(stream)
                with self._ready:
                    (self.urgent if urgent else self.rest).append((number, data))
                    self._ready.notify()
        except (EOFError, OSError, ValueError):  # the parent closed it, or died
            pass
        finally:
            with self._ready:
                self.ended = True
                self._ready.notify()

    def next(self) -> tuple[bool, int, bytes] | None:
        """The next frame to answer, urgent ones first; ``None`` once the stream ended
        and every frame read was taken."""
        with self._ready:
            while not (self.urgent or self.rest or self.ended):
                self._ready.wait()
            if self.urgent:
                return (True, *self.urgent.popleft())
            if self.rest:
                return (False, *self.rest.popleft())
            return None


class _Writer:
    def __init__(self, inbox: Inbox, out: IO[bytes]) -> None:
        self.store: Store | None = None
        self.now = 0.0
        self.inbox = inbox
        self.out: IO[bytes] | None = out

    def serve(self) -> None:
        """Answer every frame, urgent ones first, until the parent's stream ends."""
        inbox = self.inbox
        while (taken := inbox.next()) is not None:
            urgent, number, data = taken
            if urgent:
                self.urgent([(number, data)])
            else:
                self.one(number, data)

    def one(self, number: int, data: bytes) -> None:
        """A frame of the rest: a settle trip, run a call at a time when urgent frames
        wait (``settle``), or another frame."""
        try:
            message = load(data)
            if message[0] == "trip":
                self.reply(number, (True, self.settle(self.calls(message))))
                return
            reply: tuple[bool, Any] = (True, self.answer(message))
        except Exception as error:
            reply = (False, _portable(error))
        self.reply(number, reply)

    def settle(self, calls: list[_Call]) -> list[tuple[Any, BaseException | None]]:
        """A trip's calls, answered each. Whenever urgent frames wait, the calls run so far
        are committed (each call is its own savepoint: a unit is atomic, not the trip),
        the urgent frames are run and answered, and the rest of the trip goes on."""
        done = 0
        while done < len(calls):
            taken: list[_Call] = []
            failed = self.run(self._until_urgent(calls, done, taken), taken)
            if not taken:  # refused before its first call: so is the rest of the trip
                self.run_failed(calls[done:], failed or LedgerError("a trip ran no call"))
                break
            done += len(taken)
            if self.inbox.urgent:
                self.urgent([])
        return [(c.result, None if c.error is None else _portable(c.error)) for c in calls]

    def _until_urgent(self, calls: list[_Call], first: int, taken: list[_Call]) -> Any:
        """``calls`` from ``first`` as ``Store.run_trip`` takes them, until an urgent
        frame waits (one call at least); ``taken`` the ones it took."""
        urgent = self.inbox.urgent
        for call in calls[first:]:
            if taken and urgent:
                return
            taken.append(call)
            yield call

    def urgent(self, frames: list[tuple[int, bytes]]) -> None:
        """``frames`` and every urgent frame waiting: their trips' calls in one
        transaction, then each answered (a frame that is not a trip alone, in turn)."""
        urgent = self.inbox.urgent
        while frames or urgent:
            while urgent:
                frames.append(urgent.popleft())
            trips: list[tuple[int, list[_Call]]] = []
            for number, data in frames:
                try:
                    message = load(data)
                    if message[0] == "trip":
                        trips.append((number, self.calls(message)))
                        continue
                    self.trips(trips)
                    trips = []
                    reply: tuple[bool, Any] = (True, self.answer(message))
                except Exception as error:
                    reply = (False, _portable(error))
                self.reply(number, reply)
            self.trips(trips)
            frames = []

    def trips(self, trips: list[tuple[int, list[_Call]]]) -> None:
        """Trips run in one transaction, then answered each."""
        if not trips:
            return
        self.run([call for _, calls in trips for call in calls])
        for number, calls in trips:
            answers = [(c.result, None if c.error is None else _portable(c.error)) for c in calls]
            self.reply(number, (True, answers))

    def run(self, calls: Any, taken: list[_Call] | None = None) -> Exception | None:
        """``calls`` in one transaction (``Store.run_trip``); if it fails whole (its
        commit), so did each call taken that had not failed on its own: the error."""
        store = self.store
        try:
            if store is None:
                raise LedgerError("the writer process was not opened")
            store.run_trip(calls)
        except Exception as error:
            self.run_failed(taken if taken is not None else calls, error)
            return error
        return None

    @staticmethod
    def run_failed(calls: list[_Call], error: Exception) -> None:
        for call in calls:
            if call.error is None:
                call.error = error

    def calls(self, message: Sequence[Any]) -> list[_Call]:
        """A trip's calls, each at the time the trip was sent."""
        now, store = message[1], self.store
        return [_Call(self, now, OPS[op], (store, *args)) for op, args in message[2]]

    def at(self, now: float, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` with the clock at ``now``."""
        self.now = now
        return function(*args)

    def reply(self, number: int, reply: tuple[bool, Any]) -> None:
        """Write an answer; once the parent has gone, the frames it sent are still run
        (committed), unanswered."""
        if self.out is None:
            return
        try:
            self.out.write(frame(number, reply))
            self.out.flush()
        except (BrokenPipeError, OSError):
            self.out = None

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
    inbox = Inbox()
    threading.Thread(target=inbox.read, args=(frames_in,), daemon=True).start()
    writer = _Writer(inbox, frames_out)
    try:
        writer.serve()
    finally:
        writer.close()


if __name__ == "__main__":
    main()
