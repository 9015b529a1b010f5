"""The writer process's serving loop (``_writer.main``): frames read as they come, claims
run first, each frame answered when it is done (see ``_writer``'s docstring)."""

from __future__ import annotations

import pickle
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..errors import LedgerError
from ._checkpoints import IDLE_SECONDS, WAL_PAGES, WalUpkeep
from ._run import Run
from ._schema import connect, migrate
from ._store import Store
from ._writer import OPS, frame, load, read_frame

__all__ = ["Inbox", "Writer"]


class _Call:
    """A call as ``Store.run_trip`` runs it (``_batch.Call`` without its event), at the
    time its trip was sent (``Writer.clock``); ``units``: a claims call's (``Writer.calls``),
    its result an answer for each."""

    __slots__ = ("args", "error", "function", "result", "units")

    def __init__(
        self,
        writer: Writer,
        now: float,
        function: Callable[..., Any],
        args: Any,
        units: list[Any] | None = None,
    ):
        self.function, self.args = writer.at, (now, function, *args)
        self.result: Any = None
        self.error: BaseException | None = None
        self.units = units


def _claims_of(call: _Call) -> tuple[Any, ...]:
    """A claims call's job and options (``Writer.calls``): its arguments but its units."""
    _, _, _, job, _, *options = call.args
    return (job, *options)


def _answers(calls: list[_Call]) -> list[tuple[Any, BaseException | None]]:
    """Each call's answer, ``(result, error)``; a claims call's, one for each unit."""
    answers: list[tuple[Any, BaseException | None]] = []
    for call in calls:
        if call.units is None:
            answers.append((call.result, call.error))
        elif call.error is None:
            answers.extend(call.result)
        else:
            answers.extend([(None, call.error)] * len(call.units))
    return [(result, None if error is None else _portable(error)) for result, error in answers]


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
    a settle trip runs, to go before the rest of it (``Writer.settle``)."""

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

    def next(self, idle: Callable[[], None] | None = None) -> tuple[bool, int, bytes] | None:
        """The next frame to answer, urgent ones first; ``None`` once the stream ended
        and every frame read was taken. ``idle`` is called, once, should none come for
        ``IDLE_SECONDS``."""
        with self._ready:
            while not (self.urgent or self.rest or self.ended):
                if idle is None:
                    self._ready.wait()
                elif not self._ready.wait(IDLE_SECONDS):
                    idle()
                    idle = None
            if self.urgent:
                return (True, *self.urgent.popleft())
            if self.rest:
                return (False, *self.rest.popleft())
            return None


class Writer:
    """The child's side of the protocol: the ``Store`` it opened, the frames of its
    ``Inbox`` run and answered on ``out``."""

    def __init__(self, inbox: Inbox, out: IO[bytes]) -> None:
        self.store: Store | None = None
        self.upkeep: WalUpkeep | None = None
        self.now = 0.0
        self.inbox = inbox
        self.out: IO[bytes] | None = out

    def serve(self) -> None:
        """Answer every frame, urgent ones first, until the parent's stream ends; the
        write-ahead file synced as frames are answered (``reply``), and checkpointed
        whenever none came for a while after one did."""
        inbox = self.inbox
        while (taken := inbox.next(self._idle())) is not None:
            urgent, number, data = taken
            if urgent:
                self.urgent([(number, data)])
            else:
                self.one(number, data)

    def _idle(self) -> Callable[[], None] | None:
        """What to call should the writer idle: a checkpoint, once a store is open."""
        return None if self.upkeep is None else self.upkeep.idle

    def one(self, number: int, data: bytes) -> None:
        """A frame of the rest: a settle trip, run a call at a time when urgent frames
        wait (``settle``), or another frame."""
        try:
            message = load(data)
            reply: tuple[bool, Any] = (True, self.answer(message))
        except Exception as error:
            reply = (False, _portable(error))
        self.reply(number, reply)

    def settle(self, calls: list[_Call]) -> list[tuple[Any, BaseException | None]]:
        """A trip's calls, answered each. Whenever urgent frames wait, the claims they
        carry join the transaction after the call under way, which is committed then
        (a call that fails is undone alone: a unit is atomic, not the trip; one commit, not
        one for the settles so far and one for the claims), the claims are answered, and
        the rest of the trip goes on in the next transaction."""
        done = 0
        while done < len(calls):
            taken: list[_Call] = []
            ran: list[_Call] = []
            claims: list[tuple[int, list[_Call]]] = []
            later: list[tuple[int, bytes]] = []
            failed = self.run(self._until_urgent(calls, done, taken, ran, claims, later), ran)
            if not taken:  # refused before its first call: so is the rest of the trip
                self.run_failed(calls[done:], failed or LedgerError("a trip ran no call"))
                break
            done += len(taken)
            self.answer_trips(claims)
            if later or self.inbox.urgent:
                self.urgent(later)
        return _answers(calls)

    def _until_urgent(
        self,
        calls: list[_Call],
        first: int,
        taken: list[_Call],
        ran: list[_Call],
        claims: list[tuple[int, list[_Call]]],
        later: list[tuple[int, bytes]],
    ) -> Any:
        """``calls`` from ``first`` as ``Store.run_trip`` takes them (``taken``), until
        urgent frames wait (one call at least): then the calls of the trips among them
        (``claims``), and no more; ``later`` the other urgent frames, ``ran`` all."""
        urgent = self.inbox.urgent
        for call in calls[first:]:
            if taken and urgent:
                break
            taken.append(call)
            ran.append(call)
            yield call
        while urgent:
            number, data = urgent.popleft()
            try:
                message = load(data)
            except Exception:  # answered so by ``urgent``
                later.append((number, data))
                continue
            if message[0] != "trip":
                later.append((number, data))
                continue
            trip = self.calls(message)
            claims.append((number, trip))
            for call in trip:
                ran.append(call)
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
        self.answer_trips(trips)

    def answer_trips(self, trips: list[tuple[int, list[_Call]]]) -> None:
        for number, calls in trips:
            self.reply(number, (True, _answers(calls)))

    def run(self, calls: Any, taken: list[_Call] | None = None) -> Exception | None:
        """``calls`` in one transaction (``Store.run_trip``, run again without a call that
        fails, not a savepoint a call: ``OPS`` may run twice); if it fails whole (its
        commit), so did each call taken that had not failed on its own: the error."""
        store = self.store
        try:
            if store is None:
                raise LedgerError("the writer process was not opened")
            store.run_trip(calls, rerun=True)
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
        """A trip's calls, each at the time the trip was sent; the ``plan_and_begin``
        calls of consecutive units of a job (a claims trip's), with the same options, one
        call (``_writer._plan_and_begin_units``: claimed together), answered each."""
        now, store = message[1], self.store
        calls: list[_Call] = []
        for op, args in message[2]:
            if op != "plan_and_begin":
                calls.append(_Call(self, now, OPS[op], (store, *args)))
                continue
            job, unit, *options = args
            last = calls[-1] if calls else None
            if last is not None and last.units is not None and _claims_of(last) == (job, *options):
                last.units.append(unit)
                continue
            units = [unit]
            calls.append(_Call(self, now, OPS[op], (store, job, units, *options), units))
        return calls

    def at(self, now: float, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` with the clock at ``now``."""
        self.now = now
        return function(*args)

    def reply(self, number: int, reply: tuple[bool, Any]) -> None:
        """Write an answer; once the parent has gone, the frames it sent are still run
        (committed), unanswered. The frame's commits are synced to the disk soon after
        (``WalUpkeep.wrote``)."""
        if self.upkeep is not None:
            self.upkeep.wrote()
        if self.out is None:
            return
        try:
            self.out.write(frame(number, reply))
            self.out.flush()
        except (BrokenPipeError, OSError):
            self.out = None

    def answer(self, message: Sequence[Any]) -> Any:
        """A frame's answer, its calls run here (a trip: ``settle``, which lets waiting
        urgent frames in between its calls)."""
        kind = message[0]
        if kind == "trip":
            return self.settle(self.calls(message))
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
        """The store on ``path``, its temporary data kept in memory (``temp_store``): what
        this connection keeps there is its sub-journal, the pages a statement changes, kept
        to undo it alone should it fail half way (a savepoint's too, where a trip had one a
        call: ``Store.write``). Past 64 KiB (a settle of a few hundred rows) SQLite spilled
        it to a temporary file, two ``pwrite`` calls a page: 7,300 of them in a 50,000-SMS
        blast with a savepoint a call, as many as the WAL's own (1,300 without). In memory
        the settles cost 2.8-2.9 -> 2.5-2.6 µs a row, the child 5.7-6.1 -> 5.3-5.6 µs a
        recipient (``writer_replay.py``, eight alternations). This connection writes units
        and reads only their rows; one that answers queries keeps SQLite's default, which
        spills a summary's sort to a file (in memory: +62 MB for a job of 1,000,000
        recipients)."""
        conn = connect(path)
        try:
            migrate(conn)
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")  # idle: ``_checkpoints``
            self.store = Store(conn, store_text=store_text, lease_seconds=lease, clock=self.clock)
        except BaseException:
            conn.close()
            raise
        self.upkeep = WalUpkeep(path)

    def clock(self) -> float:
        """The time the parent read from its clock for this trip (a test's clock too)."""
        return self.now

    def close(self) -> None:
        if self.upkeep is not None:  # first: the last connection to close checkpoints
            self.upkeep.close()
        if self.store is not None:
            self.store.conn.close()
