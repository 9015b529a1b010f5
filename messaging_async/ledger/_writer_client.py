"""The client's side of the writer process (``_writer``): send it trips (``_writer_child``
starts it).

``WriterProcess.trip`` stands where ``Store.run_trip`` stands for a ``Batcher``: it is
awaited on the event loop with a trip's calls, whose functions are the encoders of
``_writer_calls`` (each turns its call into plain columns, and says how to read the
answer back). The pipes are written and read by the loop without blocking (``Lane``: the
claims' trips, urgent, and the settles' apart). The child answers each request when it is
done (claims first), each answer carrying its request's number: one task at a time reads
the pipe (``WriterProcess._read_for``) and lands every answer it finds (a trip's calls get
their results, and its ``Batcher`` callers wake, ``_batch.Batcher._over``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
from collections.abc import Callable
from typing import Any

import anyio

from ..errors import LedgerError
from ._batch import Call, redeliver, steady
from ._writer import HEAD, framed
from ._writer_calls import Encoded, dumps, memo_pays, picklable, settle, settle_accepted
from ._writer_child import end_child, pipes_of, start_child
from ._writer_pipes import Waiter as _Waiter
from ._writer_pipes import read_some as _read_some
from ._writer_pipes import write_all as _write_all

__all__ = ["Lane", "WriterProcess"]

_POLL = 0.002
"""How often a loop waiting for another thread's loop to finish its requests looks
(rare: one ledger used by loops in two threads at once). A poll rather than a blocking
acquire in a worker thread: that thread, abandoned by asyncio's own cancellation, took
the lock later and held it for ever."""

_SHIELDED_BY_CALLER = contextlib.nullcontext()  # ``request(shield=False)``

CLAIMS_UNDER_WAY = 2
"""Claim trips under way at once, per event loop (``Lane``): the child runs every claim
that waits in one transaction, so more would mostly add frames (4 measured no better)."""
SETTLES_UNDER_WAY = 2
"""Settle trips under way at once: the child lets claims go between a trip's calls, so a
settle trip may grow as big as the settles waiting make it."""


class WriterProcess:
    """The writer process of one ``SqliteLedger``, started at its first job.

    Its pipes are read and written by the event loop that calls, without blocking: a
    reply is read as soon as the loop hears it has come. (In a worker thread, the reply
    waited for the GIL while the loop ran, up to its 5 ms switch interval a trip: a blast's
    trips, and the units waiting on them, went at that pace: 0.35 of the plain blast,
    ``benchmarks/ledger_blast.py``.) Loops in several threads take turns (``_lock``).

    If the child ends (killed, out of memory), every call from then on is a
    ``LedgerError`` saying so: what was committed stays committed, and a unit whose claim
    was not answered is not sent.
    """

    def __init__(self, path: str, *, store_text: bool, lease_seconds: float, clock: Any):
        self._clock = clock
        self._broken: LedgerError | None = None
        self._opening = True  # the answer to "open" is read before the first trip's
        self._parent = os.getpid()  # a forked copy of this process must not write its pipe
        self._lock = threading.Lock()  # held by the loop with requests under way
        self._owner: int | None = None  # its thread
        self._under_way = 0
        self._sending = False  # whether a frame is being written (one at a time)
        self._gates: list[anyio.Event] = []  # requests waiting to write theirs (``_send``)
        self._number = 0  # the last request's ("open" is 0)
        self._waiting: dict[int, _Waiter] = {}  # by number: requests sent, not answered
        self._reading = False  # whether a request is reading answers (``_read_for``)
        self._buffer = bytearray()  # read from the child's stdout, not yet taken
        self._child = start_child()
        self._out, self._in = pipes_of(self._child)
        self._pending = framed(0, dumps(("open", path, store_text, lease_seconds)))
        self._claims = Lane(self, urgent=True, under_way=CLAIMS_UNDER_WAY)
        self._settles = Lane(self, urgent=False, under_way=SETTLES_UNDER_WAY)

    @property
    def pid(self) -> int:
        return self._child.pid

    @property
    def lanes(self) -> tuple[Lane, Lane]:
        return self._claims, self._settles

    def lane(self, encoder: Callable[..., Encoded]) -> Lane:
        """The trips ``encoder``'s calls go in: claims in trips of their own, apart from
        settles (a unit waits for its claim before its request can leave; for its settle,
        nobody waits but the end of the blast), so a claim's trip is not one of settles too."""
        return self._settles if encoder in (settle, settle_accepted) else self._claims

    async def request(
        self,
        message: object,
        *,
        urgent: bool = False,
        land: Callable[[tuple[bool, Any]], None] | None = None,
        shield: bool = True,
    ) -> Any:
        """Send ``message``, return its answer (raise the error it answered with).

        Requests of one event loop may be under way together; the child answers each
        when it is done, urgent ones (``urgent``: a unit's claim) first, and whoever reads
        an answer hands it to its requester (``_read_for``), or gives it to ``land``
        (then ``None`` is returned): called by the task that read it, at once. A loop in
        another thread waits until this loop has none under way.

        Shielded from anyio's cancellation (a frame half written would garble the next),
        by a scope of its own, or, ``shield=False``, by its caller's: a ``Batcher`` trip
        runs in its first caller's shielded scope (``trip``), and a second scope cost
        each trip 3.3 µs of the event loop on asyncio (timeit).
        """
        if os.getpid() != self._parent:
            raise LedgerError(
                "this ledger's writer process belongs to the process that opened the ledger,"
                " not to a fork of it: open the ledger in this process"
            )
        # pickled before the pipe is touched: a value pickle refuses fails this request
        # alone (raised mid-frame, it was taken for a frame half written: the writer lost)
        data = message if type(message) is bytes else dumps(message)
        owed: list[BaseException] = []  # asyncio's own cancellations, given back at the end
        with anyio.CancelScope(shield=True) if shield else _SHIELDED_BY_CALLER:
            await self._take_turn(owed)
            self._number = number = (self._number + 1) & 0xFFFFFFFF
            waiter = _Waiter(land)
            try:
                await self._send(number, waiter, data, urgent, owed)
                ok, value = await self._answer(waiter, owed)
            finally:
                # a request given up (``KeyboardInterrupt``): its answer is dropped when
                # it comes, and if it was to read next, another waiter reads
                self._waiting.pop(number, None)
                self._hand_over()
                self._under_way -= 1
                if not self._under_way:
                    self._owner = None
                    self._lock.release()
                redeliver(owed)
        if not ok:
            raise value
        return value

    async def _take_turn(self, owed: list[BaseException]) -> None:
        """This loop's turn at the pipes: at once if it has requests under way or nobody
        has (the usual case: one loop), else polled for (``_POLL``) until the loop
        in another thread that has requests under way has none."""
        me = threading.get_ident()  # one loop runs in a thread at a time
        if self._owner != me:
            while not self._lock.acquire(blocking=False):
                await steady(owed, anyio.sleep, _POLL)
            self._owner = me
        self._under_way += 1

    async def _send(
        self, number: int, waiter: _Waiter, data: bytes, urgent: bool, owed: list[BaseException]
    ) -> None:
        """Write the frame of ``data`` (a message pickled) whole, ``waiter`` waiting for
        its answer.

        One frame at a time: a request finding another's frame being written (the pipe
        was full) waits for it at a gate of its own; a free pipe is taken without a trip
        round the loop (a trip round a busy loop, paid by every request, was 1.1 ms of a
        claim's, traced). A flag, not an ``anyio.Lock``: a lock was made at each turn of
        this loop's (whenever no request was under way: 1.1 µs) and taken and let go for
        each frame (1.5 µs of the event loop, timeit, asyncio)."""
        while self._sending:
            gate = anyio.Event()
            self._gates.append(gate)
            await steady(owed, gate.wait)
        self._sending = True
        try:
            if self._broken is not None:
                raise self._broken
            try:
                if self._opening:  # "open" goes first; its answer is read before any other
                    self._opening = False
                    await _write_all(self._out, self._pending, owed)
                    await self._open_answer(owed)
                self._waiting[number] = waiter  # before its answer can be read
                await _write_all(self._out, framed(number, data, urgent), owed)
            except (EOFError, OSError) as error:
                raise self._ended(error) from error
            except BaseException:  # a frame half written, or an answer to "open" unread
                self._out_of_step()
                raise
        finally:
            self._sending = False
            gates, self._gates = self._gates, []
            for gate in gates:  # each looks again: the first to run writes next
                gate.set()

    async def _answer(self, waiter: _Waiter, owed: list[BaseException]) -> tuple[bool, Any]:
        """``waiter``'s answer: ``(True, result)`` or ``(False, error)``, read by this
        request if nobody is reading, else handed to it by whoever is."""
        while waiter.answer is None:
            if self._broken is not None:
                raise self._broken
            if not self._reading:
                await self._read_for(waiter, owed)
                continue
            wake = waiter.wake
            if wake is None or wake.is_set():
                wake = waiter.wake = anyio.Event()
            await steady(owed, wake.wait)
        return waiter.answer

    async def _read_for(self, waiter: _Waiter, owed: list[BaseException]) -> None:
        """Read answers, each handed to its requester, until ``waiter``'s has come, and
        those already read with it; then another waiter reads (``_hand_over``). One task
        reads at a time: the pipe is read as it comes, into one buffer."""
        self._reading = True
        try:
            while True:
                while (answered := self._next_answer()) is not None:
                    self._deliver(*answered)
                if waiter.answer is not None:
                    return
                self._buffer += await _read_some(self._in, owed)
        except (EOFError, OSError) as error:
            raise self._ended(error) from error
        except BaseException:  # an answer half taken: the next would start mid-frame
            self._out_of_step()
            raise
        finally:
            self._reading = False
            self._hand_over()

    def _next_answer(self) -> tuple[int, tuple[bool, Any]] | None:
        """The next answer read whole (its request's number, the answer), taken from
        the buffer; ``None`` if the buffer holds no whole frame."""
        buffer = self._buffer
        if len(buffer) < HEAD.size:
            return None
        length, number, _ = HEAD.unpack_from(buffer)
        end = HEAD.size + length
        if len(buffer) < end:
            return None
        answer = pickle.loads(buffer[HEAD.size : end])  # noqa: S301 (our child's)
        del buffer[:end]
        return number, answer

    def _deliver(self, number: int, answer: tuple[bool, Any]) -> None:
        """``answer`` to request ``number``'s waiter (to its ``land`` first), and wake it;
        dropped if the request was given up."""
        waiter = self._waiting.pop(number, None)
        if waiter is None:
            return
        if waiter.land is not None:
            try:
                waiter.land(answer)
                answer = (True, None)
            except Exception as error:  # its own failure, not the reader's
                answer = (False, error)
        waiter.answer = answer
        waiter.wake_up()

    def _hand_over(self) -> None:
        """With nobody reading, a waiter reads next; with the writer broken, every waiter
        wakes to fail so."""
        if self._broken is not None:
            for waiter in self._waiting.values():
                waiter.wake_up()
        elif not self._reading and self._waiting:
            next(iter(self._waiting.values())).wake_up()

    def _out_of_step(self) -> None:
        """A request interrupted between its frame and its answer (``KeyboardInterrupt``,
        which trio raises at any checkpoint, or its loop's end): its answer, or the rest
        of a frame, is left in a pipe, and would be read as the next request's (a unit's
        plan given to another). Every call from then on fails so; the child finishes what
        it was sent, and ends with the ledger."""
        if self._broken is None:
            self._broken = LedgerError(
                f"the ledger's writer process (pid {self._child.pid}) was interrupted"
                " mid-request: what it committed is kept; open the ledger again to go on"
            )

    def _ended(self, error: BaseException) -> LedgerError:
        """The child is gone: this and every later call fail so."""
        code = self._child.poll()
        self._broken = LedgerError(
            f"the ledger's writer process (pid {self._child.pid}) ended"
            f" (exit code {code}): what it committed is kept; run the job again"
        )
        return self._broken

    async def _open_answer(self, owed: list[BaseException]) -> None:
        """The child's answer to "open": a refusal (a file it cannot open) ends it."""
        while (answered := self._next_answer()) is None:
            self._buffer += await _read_some(self._in, owed)
        _, (ok, error) = answered
        if not ok:
            self._broken = LedgerError(f"the ledger's writer process: {error}")
            self._child.kill()
            raise self._broken from error

    async def adopt(self, job: str, job_id: int, run_id: int, gateway: str, fresh: bool) -> None:
        """Tell the child which run holds ``job`` (opened by the parent's own store)."""
        message = ("adopt", job, job_id, run_id, gateway, fresh)
        await self.request(message, urgent=True)

    async def drop(self, job: str) -> None:
        """Tell the child the run let go of ``job``: no unit of it is written any more."""
        with contextlib.suppress(LedgerError):  # a child gone holds no job either
            await self.request(("drop", job))

    async def trip(
        self, calls: list[Call[Any]], urgent: bool = False, over: Callable[[], None] | None = None
    ) -> None:
        """A ``Batcher`` trip: the calls encoded, sent as one frame, answered each (by the
        task that reads the answer, then ``over()``); ``urgent``: a trip of claims, run
        before the settles the child has waiting. Shielded by its caller: a ``Batcher``
        runs it in its first caller's shielded scope (``request(shield=False)``)."""
        sent, ops = _encoded(calls)
        if not ops:
            return
        now, memo = self._clock(), memo_pays(ops)
        try:
            data = dumps(("trip", now, ops), memo=memo)
        except Exception:  # a caller's value pickle refuses (rare): its call fails alone
            sent, ops = picklable(sent, ops, memo)
            if not ops:
                return
            data = dumps(("trip", now, ops), memo=memo)
        del ops  # pickled: not kept alive while the answer is awaited (``_encoded``)

        def land(answer: tuple[bool, Any]) -> None:
            ok, answers = answer
            if not ok:  # the trip failed whole (its commit)
                answers = [(None, answers)] * len(sent)
            for (call, read), (result, error) in zip(sent, answers, strict=True):
                if error is not None:
                    call.error = error
                    continue
                try:
                    call.result = result if read is None else read(result)
                except Exception as unread:  # this call's answer: its own failure
                    call.error = unread
            if over is not None:
                over()

        await self.request(data, urgent=urgent, land=land, shield=False)  # the Batcher's

    def close(self) -> None:
        """End the child (in a worker thread): ``end_child``."""
        end_child(self._child)


def _encoded(
    calls: list[Call[Any]],
) -> tuple[list[tuple[Call[Any], Callable[[Any], Any] | None]], list[tuple[str, Any]]]:
    """The calls encoded (``_writer_calls``): those sent, with what reads each answer, and
    their ops; a call whose input its encoder refuses fails alone. In a function of its
    own, and the ops let go once pickled (``trip``): the trip's frame held them (its loop
    the last call's too) while it awaited the answer, a settle trip's lists of every
    value of the units it carries among them, for the young collections to walk."""
    sent: list[tuple[Call[Any], Callable[[Any], Any] | None]] = []
    ops = []
    for call in calls:
        try:
            op, args, read = call.function(*call.args)
        except Exception as refused:  # this call's input: its own failure
            call.error = refused
            continue
        sent.append((call, read))
        ops.append((op, args))
    return sent, ops


class Lane:
    """Trips of one kind to a ``WriterProcess`` (a ``Batcher`` each, per event loop):
    claims (``urgent``: the child runs them first) or settles; ``under_way`` of them at
    a time, and, ``linger``, each gathering the calls of a round of the event loop
    (``Batcher``): the settles."""

    __slots__ = ("_urgent", "_writer", "linger", "under_way")

    def __init__(self, writer: WriterProcess, *, urgent: bool, under_way: int):
        self._writer, self._urgent = writer, urgent
        self.under_way = under_way
        self.linger = not urgent

    async def run_trip(self, calls: list[Call[Any]], over: Callable[[], None]) -> None:
        await self._writer.trip(calls, self._urgent, over)
