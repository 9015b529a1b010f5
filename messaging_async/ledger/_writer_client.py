"""The client's side of the writer process (``_writer``): start it, send it trips.

``WriterProcess.run_trip`` stands where ``Store.run_trip`` stands for a ``Batcher``: it is
called in a worker thread with a trip's calls, whose functions are the encoders below
(each turns its call into plain columns, and says how to read the answer back). The pipe
is written and read in that worker thread, with the GIL released while it waits; so the
event loop runs on, and never waits on the child.

Refs are sent as plain values: a ``str`` or ``int`` subclass (an enum, say) as the plain
value that keys the same, anything the ledger cannot key as ``nan`` (refused the same;
the outcome the child decides for it gets the caller's ref back here), so no class of the
caller's need be importable in the child.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

import anyio
from attrs import evolve

from ..errors import LedgerError
from ..models import Outcome, Sms
from ._batch import Call
from ._fingerprint import canonical
from ._models import Entry, Plan, key_of
from ._writer import LENGTH, EntryColumns, frame

__all__ = ["WriterProcess", "begin_unit", "plan", "plan_and_begin", "settle", "settle_accepted"]

Encoded = tuple[str, tuple[Any, ...], Callable[[Any], Any] | None]
"""A call as sent: its op, its arguments, and what reads its answer (``None``: as is)."""

_POSITION, _TO, _REF, _CONTENT, _SEQNO = map(itemgetter, range(5))  # an Entry's
_TEXT = attrgetter("text")
_SETTLED = attrgetter(
    "index", "to", "status", "code", "reason", "message_id", "request_id", "seqno", "ref"
)  # what ``_writer.Settled`` reads
_PLAIN = (type(None), str, int)
_REFUSED = math.nan  # a ref ``key_of`` refuses, as it refuses the caller's


def _plain_ref(ref: Any) -> Any:
    """A value of a plain type that ``key_of`` keys as it keys ``ref`` (see above)."""
    key = key_of(ref, 0)
    if key is None:
        return _REFUSED
    return key[2:] if key[0] == "s" else int(key[2:])


def _plain_refs(refs: list[Any]) -> tuple[list[Any], bool]:
    """``refs`` as sent, and whether any was changed (rare: their types checked in C)."""
    if set(map(type, refs)).issubset(_PLAIN):
        return refs, False
    return [ref if type(ref) in _PLAIN else _plain_ref(ref) for ref in refs], True


def _columns(entries: Sequence[Entry]) -> tuple[EntryColumns, bool]:
    refs, changed = _plain_refs(list(map(_REF, entries)))
    contents = list(map(_CONTENT, entries))
    texts = set(map(type, contents)) == {Sms}  # the usual unit: its texts, read in C
    forms = list(map(_TEXT, contents)) if texts else list(map(canonical, contents))
    positions, numbers = list(map(_POSITION, entries)), list(map(_TO, entries))
    return (positions, numbers, refs, forms, list(map(_SEQNO, entries)), texts), changed


def _plan_of(entries: Sequence[Entry], refs_changed: bool, answer: Any) -> Plan:
    """The child's plan, in the caller's entries (``_writer._plan_reply``)."""
    if answer is None:
        return Plan(tuple(entries), ())
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
    sent_refs, _ = _plain_refs(list(refs))
    args = (job, list(indices), list(numbers), sent_refs, list(message_ids), code)
    return "settle_accepted", args, None


_BOOT = """
import sys, types
for name, folder in (("", ""), (".ledger", "/ledger"), (".webhooks", "/webhooks")):
    package = types.ModuleType("messaging_async" + name)
    package.__path__ = [sys.argv[1] + folder]
    sys.modules[package.__name__] = package
from messaging_async.ledger._writer import main
main()
"""
"""What the child runs: ``_writer.main``, its packages' ``__init__`` left out. They import
the whole SDK (httpx, the clients, the PostgreSQL store); the writer needs none of it, and
starts in 0.06 s instead of 0.32 (``-X importtime``)."""


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
        self._sending: anyio.Lock | None = None  # one frame written at a time
        self._answers: deque[anyio.Event] = deque()  # set for the request answered next
        package = str(Path(__file__).resolve().parents[1])
        self._child = subprocess.Popen(  # noqa: S603 (our own code, this interpreter)
            [sys.executable, "-c", _BOOT, package],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self._child.stdin is not None
        assert self._child.stdout is not None
        self._out, self._in = self._child.stdin.fileno(), self._child.stdout.fileno()
        os.set_blocking(self._out, False)
        os.set_blocking(self._in, False)
        self._pending = frame(("open", path, store_text, lease_seconds))
        self._claims, self._settles = Lane(self), Lane(self)

    @property
    def pid(self) -> int:
        return self._child.pid

    def lane(self, encoder: Callable[..., Encoded]) -> Lane:
        """The trips ``encoder``'s calls go in: claims in trips of their own, apart from
        settles (a unit waits for its claim before its request can leave; for its settle,
        nobody waits but the end of the blast), so a claim's trip is not one of settles too."""
        return self._settles if encoder in (settle, settle_accepted) else self._claims

    async def request(self, message: object) -> Any:
        """Send ``message``, return its answer (raise the error it answered with).

        Requests of one event loop may be under way together (the child answers them in
        the order sent); a loop in another thread waits until this loop has none.
        """
        if os.getpid() != self._parent:
            raise LedgerError(
                "this ledger's writer process belongs to the process that opened the ledger,"
                " not to a fork of it: open the ledger in this process"
            )
        with anyio.CancelScope(shield=True):  # a frame half written would garble the next
            await self._take_turn()
            try:
                turn = await self._send(message)
                await turn.wait()
                try:
                    return await self._answer()
                finally:
                    self._answers.popleft()
                    if self._answers:
                        self._answers[0].set()
            finally:
                self._under_way -= 1
                if not self._under_way:
                    self._owner = None
                    self._lock.release()

    async def _take_turn(self) -> None:
        """This loop's turn at the pipes: at once if it has requests under way or nobody
        has (the usual case: one loop), else waited for in a worker thread until the loop
        in another thread that has requests under way has none."""
        me = threading.get_ident()  # one loop runs in a thread at a time
        if self._owner != me:
            if not self._lock.acquire(blocking=False):
                await _acquire_in_a_thread(self._lock)
            self._owner = me
            self._sending = anyio.Lock()  # this loop's
        self._under_way += 1

    async def _send(self, message: object) -> anyio.Event:
        """Write ``message``'s frame whole; the event set when its answer is next."""
        assert self._sending is not None
        async with self._sending:
            if self._broken is not None:
                raise self._broken
            try:
                if self._opening:  # "open" goes first; its answer is read before any other
                    self._opening = False
                    await _write_all(self._out, self._pending)
                    await self._open_answer()
                await _write_all(self._out, frame(message))
            except (EOFError, OSError) as error:
                raise self._ended(error) from error
            turn = anyio.Event()
            self._answers.append(turn)
            if len(self._answers) == 1:
                turn.set()
            return turn

    async def _answer(self) -> Any:
        if self._broken is not None:
            raise self._broken
        try:
            return await self._receive()
        except (EOFError, OSError) as error:
            raise self._ended(error) from error

    def _ended(self, error: BaseException) -> LedgerError:
        """The child is gone: this and every later call fail so."""
        code = self._child.poll()
        self._broken = LedgerError(
            f"the ledger's writer process (pid {self._child.pid}) ended"
            f" (exit code {code}): what it committed is kept; run the job again"
        )
        return self._broken

    async def _open_answer(self) -> None:
        """The child's answer to "open": a refusal (a file it cannot open) ends it."""
        try:
            await self._receive()
        except (EOFError, OSError):
            raise
        except Exception as error:
            self._broken = LedgerError(f"the ledger's writer process: {error}")
            self._child.kill()
            raise self._broken from error

    async def _receive(self) -> Any:
        head = await _read_exact(self._in, LENGTH.size)
        ok, value = pickle.loads(await _read_exact(self._in, LENGTH.unpack(head)[0]))  # noqa: S301 (our child's)
        if not ok:
            raise value
        return value

    async def adopt(self, job: str, job_id: int, run_id: int, gateway: str, fresh: bool) -> None:
        """Tell the child which run holds ``job`` (opened by the parent's own store)."""
        await self.request(("adopt", job, job_id, run_id, gateway, fresh))

    async def drop(self, job: str) -> None:
        """Tell the child the run let go of ``job``: no unit of it is written any more."""
        with contextlib.suppress(LedgerError):  # a child gone holds no job either
            await self.request(("drop", job))

    async def run_trip(self, calls: list[Call[Any]]) -> None:
        await self.trip(calls)

    async def trip(self, calls: list[Call[Any]]) -> None:
        """A ``Batcher`` trip: the calls encoded, sent as one frame, answered each."""
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
        if not ops:
            return
        answers = await self.request(("trip", self._clock(), ops))
        for (call, read), (result, error) in zip(sent, answers, strict=True):
            if error is not None:
                call.error = error
            else:
                call.result = result if read is None else read(result)

    def close(self) -> None:
        """End the child (in a worker thread): its stdin closed, it finishes what it was
        given and exits (killed if it hangs)."""
        if self._child.stdin is not None:
            with contextlib.suppress(OSError):  # a child already gone
                self._child.stdin.close()
        try:
            self._child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        if self._child.stdout is not None:
            self._child.stdout.close()


async def _acquire_in_a_thread(lock: threading.Lock) -> None:
    taken: list[bool] = []

    def take() -> None:
        lock.acquire()
        taken.append(True)

    try:
        await anyio.to_thread.run_sync(take)
    except BaseException:
        if taken:  # cancelled once it had the lock: it is let go
            lock.release()
        raise


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await anyio.wait_writable(fd)
            continue
        view = view[written:]


async def _read_exact(fd: int, count: int) -> bytes:
    """``count`` bytes from ``fd``, read as they come; ``EOFError`` if it ends first."""
    chunks: list[bytes] = []
    while count:
        try:
            chunk = os.read(fd, count)
        except BlockingIOError:
            await anyio.wait_readable(fd)
            continue
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        count -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Lane:
    """Trips of one kind to a ``WriterProcess`` (a ``Batcher`` each, per event loop)."""

    __slots__ = ("_writer",)

    def __init__(self, writer: WriterProcess):
        self._writer = writer

    async def run_trip(self, calls: list[Call[Any]]) -> None:
        await self._writer.trip(calls)
