"""Resuming a job without preparing again what an earlier run settled.

The runner of a resumed job reads, 512 input positions ahead and in one trip (then
further: ``Journal.look_ahead``), the rows an earlier run settled there (``read_ahead``:
one range of the job's keys, before any of those items is read); then, as it reads each
item, ``Ahead.take`` says on the spot whether an earlier run settled it with this very
input. Those keep their recorded outcome without being validated, normalised, put in
units or planned (issue 14 asks a resume to skip settled recipients at 200,000 a second;
preparing one costs about as much as everything else it does). The rest go the usual
way (``Store.plan``), which decides them exactly as before. The input is still read one
item at a time, as the runner always reads it: nothing is read ahead of what the usual
way would read.

"This very input" is the condition ``Store.plan`` reads a settled row's outcome by (same
fingerprint, same input position, settled by an earlier run), on the number as the
caller gave it: it must be one that ``normalize_number`` returns unchanged whatever the
client's default country, so preparing it would have given that very number; the
fingerprint covers the number, so an equal one says it is the recorded wire number.
Only recipients keyed by their position are looked at (a ``ref``'s row cannot be found
before its item is read). Anything else (a number written another way, a changed text,
a ref, a row in flight or not sent) goes the usual way: "input changed", unknowns and
repeats are still said by the one rule that says them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._outcomes_seq import Decided, compact_decided, expand
from ..errors import ValidationError
from ..models import Outcome
from ..phone import normalize_number
from ._fingerprint import fingerprint
from ._models import key_of

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["Ahead", "read_ahead"]

# A row as read here: its position, then the resume rule's columns (``sql.ROW``'s, but for
# ``began_at`` and ``run``: SQLite keeps only rows of earlier runs). Not the recorded wire
# number: the fingerprint covers it, and the number as given is tested to be in wire
# form, so an equal fingerprint says the number is the recorded one (as ``plan`` decides
# by the fingerprint alone). Each column returned costs the read about 0.1 µs a row.
_COLUMNS = "position, fingerprint, state, code, reason, message_id, request_id, seqno"
_FP = 1


class Ahead:
    """The settled rows of a range of input positions, read by ``read_ahead``: pure from
    here on (the runner asks ``take`` on its event loop, without I/O)."""

    __slots__ = ("_rows", "_run", "_salt")

    def __init__(self, rows: dict[int, tuple[Any, ...]], run: int, salt: bytes):
        self._rows, self._run, self._salt = rows, run, salt

    def found_in(self, first: int, stop: int) -> bool:
        """Whether an earlier run settled any position of ``first`` … ``stop - 1`` (within
        the range read: a settled job answers at its first position)."""
        rows = self._rows
        return any(position in rows for position in range(first, stop))

    def find(self, position: int, to: Any, ref: Any, content: object) -> tuple[Any, ...] | None:
        """The row of the item at ``position`` (its raw number, ref and content) if an
        earlier run settled it with this very input, else ``None``: to keep, with the
        number, for ``compact`` (the runner asks once per resumed recipient; no outcome
        and no ``Entry`` is built). The cheap exact tests come first (row, number); the
        fingerprint only for a candidate."""
        raw = self._rows.get(position) if ref is None else None
        if raw is None:
            return None
        try:  # the number as given must be in wire form, under any default
            # country: it is without one (a number needing it, one starting with 0, is
            # refused without it), and the default country is only read for such numbers
            if normalize_number(to) != to:
                return None
        except ValidationError:
            return None
        if raw[_FP] != fingerprint(to, content, self._salt):
            return None
        return raw

    @staticmethod
    def compact(numbers: list[str], rows: list[tuple[Any, ...]]) -> Decided:
        """What ``find`` found, in input order, as the report keeps it (``Decided``: a
        column each, split from the rows in C; the fingerprints are not kept): the runner
        keeps a window of rows a run, not an ``Outcome`` a recipient.

        (An outcome built per row cost the finished job's rerun about 1.1 of its 2.5 µs a
        recipient on the event loop, its GC share included: thread CPU and py-spy,
        100,000 rows; RESULTS.md, the ledger's fourth pass.)"""
        columns = list(zip(*rows, strict=True)) or [()] * len(_COLUMNS.split(","))
        return compact_decided(columns[0], tuple(numbers), *columns[2:8])

    def take(self, position: int, to: Any, ref: Any, content: object) -> Outcome | None:
        """The recorded outcome of the item at ``position``, marked ``from_ledger``, if an
        earlier run settled it with this very input (``find``), else ``None``: built the
        way a report builds it from its ``Decided`` run. The runner keeps rows (``find``);
        this is the one-outcome form the tests and ``benchmarks/ledger*.py`` compare."""
        row = self.find(position, to, ref, content)
        return None if row is None else expand(self.compact([to], [row]))[0]


def read_ahead(store: Store, job: str, first: int, count: int) -> Ahead | None:
    """The rows an earlier run settled at input positions ``first`` … ``first + count -
    1`` of ``job``, keyed by position (one range read; reads only). ``None`` when this run
    created the job: nothing earlier to find."""
    run = store.run_of(job)
    if run.fresh or count <= 0:
        return None
    with store.lock:
        # Only keys of positions: both bounds are "p:" and ten digits, so the range holds
        # no ref's key ("s:…", "i:…"). Only rows an earlier run settled, kept by SQLite.
        found = store.conn.execute(
            f"SELECT {_COLUMNS} FROM sends WHERE job = ? AND key BETWEEN ? AND ?"  # noqa: S608
            " AND state IN ('accepted', 'rejected') AND fingerprint IS NOT NULL"
            " AND (run IS NULL OR run <> ?)",
            (run.job_id, key_of(None, first), key_of(None, first + count - 1), run.run_id),
        ).fetchall()
    return Ahead({row[0]: row for row in found}, run.run_id, store.salt)
