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
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from attrs import evolve

from ..errors import LedgerError
from ..models import Outcome, Sms
from ._batch import Call
from ._fingerprint import canonical
from ._models import Entry, Plan, key_of
from ._writer import EntryColumns, read_frame, write_frame

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

    Calls from several threads (event loops) are taken one at a time. If the child ends
    (killed, out of memory), every call from then on is a ``LedgerError`` saying so: what
    was committed stays committed, and a unit whose claim was not answered is not sent.
    """

    def __init__(self, path: str, *, store_text: bool, lease_seconds: float, clock: Any):
        self._clock = clock
        self._lock = threading.Lock()
        self._broken: LedgerError | None = None
        self._opening = True  # the answer to "open" is read before the first trip's
        self._parent = os.getpid()  # a forked copy of this process must not write its pipe
        package = str(Path(__file__).resolve().parents[1])
        self._child = subprocess.Popen(  # noqa: S603 (our own code, this interpreter)
            [sys.executable, "-c", _BOOT, package],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self._send(("open", path, store_text, lease_seconds))

    @property
    def pid(self) -> int:
        return self._child.pid

    def _send(self, message: object) -> None:
        assert self._child.stdin is not None
        write_frame(self._child.stdin, message)

    def _receive(self) -> Any:
        assert self._child.stdout is not None
        ok, value = read_frame(self._child.stdout)
        if not ok:
            raise value
        return value

    def request(self, message: object) -> Any:
        """Send ``message``, return its answer (raise the error it answered with)."""
        if os.getpid() != self._parent:
            raise LedgerError(
                "this ledger's writer process belongs to the process that opened the ledger,"
                " not to a fork of it: open the ledger in this process"
            )
        with self._lock:
            if self._broken is not None:
                raise self._broken
            try:
                if self._opening:
                    self._opening = False
                    try:
                        self._receive()
                    except Exception as error:
                        self._broken = LedgerError(f"the ledger's writer process: {error}")
                        self._child.kill()
                        raise self._broken from error
                self._send(message)
                return self._receive()
            except (EOFError, OSError) as error:
                code = self._child.poll()
                self._broken = LedgerError(
                    f"the ledger's writer process (pid {self._child.pid}) ended"
                    f" (exit code {code}): what it committed is kept; run the job again"
                )
                raise self._broken from error

    def adopt(self, job: str, job_id: int, run_id: int, gateway: str, fresh: bool) -> None:
        """Tell the child which run holds ``job`` (opened by the parent's own store)."""
        self.request(("adopt", job, job_id, run_id, gateway, fresh))

    def drop(self, job: str) -> None:
        """Tell the child the run let go of ``job``: no unit of it is written any more."""
        with contextlib.suppress(LedgerError):  # a child gone holds no job either
            self.request(("drop", job))

    def run_trip(self, calls: list[Call[Any]]) -> None:
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
        answers = self.request(("trip", self._clock(), ops))
        for (call, read), (result, error) in zip(sent, answers, strict=True):
            if error is not None:
                call.error = error
            else:
                call.result = result if read is None else read(result)

    def close(self) -> None:
        """End the child: its stdin closed, it finishes and exits (killed if it hangs)."""
        with self._lock:
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
