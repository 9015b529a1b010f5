"""``BulkReport.outcomes``: a read-only sequence that keeps a bulk call's usual units (every
recipient accepted) in a form the cyclic garbage collector does not walk, and builds their
``Outcome`` objects when they are read.

Why: a report of 100,000 recipients kept 100,000 ``Outcome`` instances (attrs, slotted:
always tracked by the GC) and 100,000 ``raw`` result dicts (tracked) alive until the call
returned. Every young collection moved them up and each time the long-lived set grew by a
quarter CPython walked all of it: about 3 µs of the SDK's 12-14 µs per message (measured,
blast.py c50, GC on against ``gc.disable()``). An ``Accepted`` unit is made only of exact
tuples of ints, strs and the caller's refs, and the gateway's answer as its text, which
CPython untracks at their first collection; each outcome's ``raw`` is parsed again from that
text when the outcome is built, once per unit per read (the last few units read are cached).

A resumed job's recipients that an earlier run settled (the ledger's outcomes, read ahead
of the input: ``ledger._settled``) are kept the same way, a ``Decided`` run of them at a
time: columns of the recorded rows, built as ``Outcome`` objects (``from_ledger``) when
read. Other rare outcomes (rejected, unknown, not sent, the ledger's plan) stay real
``Outcome`` objects.

Pure: no I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import attrgetter, index, itemgetter
from typing import TYPE_CHECKING, Any, SupportsIndex, cast, overload

from . import models as _models

if TYPE_CHECKING:
    from .models import Outcome, OutcomeStatus

__all__ = [
    "LEDGER",
    "Accepted",
    "Compact",
    "Decided",
    "Outcomes",
    "compact_accepted",
    "compact_decided",
    "expand",
    "register_reader",
]

# A unit the gateway accepted whole: (reader, indices, numbers, refs, message_ids, code,
# answer). ``reader`` names the function (``register_reader``) that turns ``answer``, the
# gateway's answer text, into each recipient's ``raw`` again, in unit order. Every item is
# a str, an int or an exact tuple of them (refs are the caller's), so the GC untracks it.
Accepted = tuple[str, tuple[int, ...], tuple[str, ...], tuple[Any, ...], tuple[str, ...], int, str]

# Recipients the ledger decided from rows an earlier run recorded: (LEDGER, indices,
# numbers, states, codes, reasons, message_ids, request_ids, seqnos), a column each, in
# input order; a state is an ``OutcomeStatus`` value (a str), the rest ints, strs or None.
# Their outcomes carry no ref (the ledger reads rows ahead only for recipients keyed by
# their position), no error, no raw, and ``from_ledger``.
Decided = tuple[
    str,
    tuple[int, ...],
    tuple[str, ...],
    tuple[str, ...],
    tuple[int | None, ...],
    tuple[str | None, ...],
    tuple[str | None, ...],
    tuple[str | None, ...],
    tuple[str | None, ...],
]

Compact = Accepted | Decided
"""A run of outcomes kept compact: a unit accepted whole, or recipients the ledger decided.
Either way item 0 names how it reads back and item 1 holds the input indices."""

LEDGER = "ledger"
"""Item 0 of a ``Decided`` run: a name no reader is registered under."""

_READERS: dict[str, Callable[[str], Sequence[Any]]] = {}


def register_reader(name: str, reader: Callable[[str], Sequence[Any]]) -> None:
    """Make ``reader`` the way ``Accepted`` units under ``name`` get their ``raw`` back.

    Held by name, not in the unit: a function object would keep every unit tracked."""
    if name == LEDGER:
        raise ValueError(f"{LEDGER!r} names the ledger's decided runs, not a reader")
    _READERS[name] = reader


def compact_accepted(
    reader: str,
    recipients: Sequence[Any],
    message_ids: tuple[str, ...],
    code: int,
    answer: str,
) -> Accepted:
    """The compact form of a unit whose every recipient was accepted; ``recipients`` are
    the unit's ``Pending``s (or ``(index, number, ref)`` triples), in unit order.

    ``zip(*recipients)`` splits them into columns in C: no tuple per recipient."""
    columns = list(zip(*recipients, strict=True))
    return (reader, columns[0], columns[1], columns[2], message_ids, code, answer)


def compact_decided(
    indices: tuple[int, ...],
    numbers: tuple[str, ...],
    states: tuple[str, ...],
    codes: tuple[int | None, ...],
    reasons: tuple[str | None, ...],
    message_ids: tuple[str | None, ...],
    request_ids: tuple[str | None, ...],
    seqnos: tuple[str | None, ...],
) -> Decided:
    """The compact form of recipients the ledger decided (see ``Decided``), column by
    column; every column as long as ``indices``."""
    columns = (numbers, states, codes, reasons, message_ids, request_ids, seqnos)
    if any(len(column) != len(indices) for column in columns):
        raise ValueError("every column of a decided run holds one value per recipient")
    return (LEDGER, indices, *columns)


def expand(unit: Compact, raws: Sequence[Any] | None = None) -> list[Outcome]:
    """The unit's outcomes. An ``Accepted`` unit's are equal field by field (``raw``
    included) to what the gateway's general road builds for the same answer (tests
    compare them); ``raws``: each recipient's ``raw`` where the caller has the answer
    parsed already. A ``Decided`` run's are those the ledger's rows say (``from_ledger``)."""
    if unit[0] == LEDGER:
        return _decided(cast("Decided", unit))
    reader, indices, numbers, refs, message_ids, code, answer = cast("Accepted", unit)
    if raws is None:
        raws = _READERS[reader](answer)
    new, accepted = _models.new_outcome, _models.OutcomeStatus.ACCEPTED
    return [
        new(number, accepted, index, message_id, code, None, ref, None, None, None, raw, False)
        for index, number, ref, message_id, raw in zip(
            indices, numbers, refs, message_ids, raws, strict=True
        )
    ]


def _decided(unit: Decided) -> list[Outcome]:
    """A ``Decided`` run's outcomes, made as ``ledger._settled`` made each before it was
    kept compact (one ``new_outcome`` call a recipient)."""
    new = _models.new_outcome
    status = {status.value: status for status in _models.OutcomeStatus}  # a few, a run
    rows = zip(*unit[1:], strict=True)
    return [
        new(number, status[state], index, message_id, code, reason, None, request, seqno, *_LEDGER)
        for index, number, state, code, reason, message_id, request, seqno in rows
    ]


_LEDGER = (None, None, True)  # a ledger's outcome's error, raw and from_ledger


_first = itemgetter(0)
_index_of = attrgetter("index")
_status_of = attrgetter("status")

# How many units' outcomes a sequence keeps built (``Outcomes._expanded``): more than the
# unit keys a run forms side by side (iSMS: an encoding each).
_UNITS_KEPT = 8

# How many outcomes a repr shows before it says how many more there are.
_REPR_SHOWN = 10


class Outcomes(Sequence["Outcome"]):
    """Every outcome of a bulk call, in input order: ``len``, indexing (negative too),
    slicing (gives a tuple), iteration, ``in``, ``==`` with another ``Outcomes`` or with a
    tuple of the same outcomes, and ``hash``. Immutable. Not a tuple: ``+`` and
    ``isinstance(…, tuple)`` do not work; ``tuple(report.outcomes)`` gives one.

    Built either from outcomes (``Outcomes.of``) or, by the bulk road, from the real
    outcomes and the ``Compact`` units of a run (``Outcomes.collected``): then it holds
    *parts* ``(first_index, count, source, start)`` in input order, ``source`` being an
    ``Outcome`` (count 1) or a ``Compact`` unit whose positions ``start … start+count``
    hold consecutive input indices.
    """

    __slots__ = ("_cached", "_flat", "_len", "_parts", "_starts")

    def __init__(self, outcomes: Iterable[Outcome] = ()) -> None:
        self._flat: tuple[Outcome, ...] | None = tuple(outcomes)
        self._parts: list[tuple[int, int, Any, int]] = []
        self._starts: list[int] = []
        self._len = len(self._flat)
        self._cached: dict[int, tuple[Compact, list[Outcome]]] = {}

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Outcomes:
        return outcomes if isinstance(outcomes, Outcomes) else cls(outcomes)

    @classmethod
    def collected(cls, outcomes: list[Outcome], units: Sequence[Compact]) -> Outcomes:
        """A run's ``outcomes`` (any order) and ``units``, in input order."""
        if not units:
            return cls(sorted(outcomes, key=_index_of))  # a C getter: no call per outcome
        parts: list[tuple[int, int, Any, int]] = [
            (outcome.index, 1, outcome, 0) for outcome in outcomes
        ]
        for unit in units:
            _add_runs(parts, unit)
        parts.sort(key=_first)
        self = cls()
        self._flat = None
        self._parts = parts
        total = 0
        starts = self._starts
        for part in parts:
            starts.append(total)
            total += part[1]
        self._len = total
        return self

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, position: SupportsIndex) -> Outcome: ...
    @overload
    def __getitem__(self, position: slice) -> tuple[Outcome, ...]: ...
    def __getitem__(self, position: SupportsIndex | slice) -> Outcome | tuple[Outcome, ...]:
        if self._flat is not None:
            return self._flat[position]
        if isinstance(position, slice):
            return tuple(self[i] for i in range(*position.indices(self._len)))
        position = index(position)  # as a tuple takes it: any ``__index__``, never a float
        if position < 0:
            position += self._len
        if not 0 <= position < self._len:
            raise IndexError("outcome index out of range")
        at = bisect_right(self._starts, position) - 1
        _, _, source, start = self._parts[at]
        if type(source) is not tuple:
            return source  # type: ignore[no-any-return]
        return self._expanded(source)[start + position - self._starts[at]]

    def __iter__(self) -> Iterator[Outcome]:
        if self._flat is not None:
            return iter(self._flat)
        return self._iter_parts()

    def _iter_parts(self) -> Iterator[Outcome]:
        for _, count, source, start in self._parts:
            if type(source) is tuple:
                yield from self._expanded(source)[start : start + count]
            else:
                yield source

    def _expanded(self, unit: Compact) -> list[Outcome]:
        """The unit's outcomes, parsed once while it is among the last units read.

        More than one: units of different keys (two encodings) form side by side, so a
        unit's parts can alternate with another's in input order; with one unit kept, a
        read in order parsed a whole unit again for each part (a 50-recipient answer per
        outcome, 1.1 s against 0.02 to iterate 20,000 alternating recipients)."""
        cached = self._cached
        hit = cached.get(id(unit))  # by identity: a ref may be unhashable; kept, so no reuse
        if hit is not None:
            return hit[1]
        outcomes = expand(unit)
        if len(cached) >= _UNITS_KEPT:
            # The first kept goes; ``pop`` of a copied key, as a report read from threads
            # at once may see another reader drop it first (a tuple was safe to share).
            for first in list(cached)[:1]:
                cached.pop(first, None)
        cached[id(unit)] = (unit, outcomes)
        return outcomes

    def __getstate__(self) -> tuple[Any, ...]:
        """The sequence without the last units read: what pickle and ``copy`` keep. Given
        explicitly, a tuple pickles at every protocol; slots alone only from protocol 2."""
        return (self._flat, self._parts, self._starts, self._len)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self._flat, self._parts, self._starts, self._len = state
        self._cached = {}

    def status_counts(self) -> Counter[OutcomeStatus]:
        """How many outcomes per status, without building the compact units' outcomes."""
        if self._flat is not None:
            return Counter(map(_status_of, self._flat))  # C all the way: no generator
        counted: Counter[OutcomeStatus] = Counter()
        accepted = 0
        states: Counter[str] = Counter()  # of the ledger's decided runs, by value
        for _, count, source, start in self._parts:
            if type(source) is not tuple:
                counted[source.status] += 1
            elif source[0] == LEDGER:
                states.update(source[3][start : start + count])
            else:
                accepted += count
        counted[_models.OutcomeStatus.ACCEPTED] += accepted
        for state, count in states.items():
            counted[_models.OutcomeStatus(state)] += count
        return counted

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Outcomes | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        """Tuple-like, but bounded: a report of 100,000 is not printed whole."""
        shown = [repr(outcome) for outcome in self[:_REPR_SHOWN]]
        if self._len > _REPR_SHOWN:
            shown.append(f"… {self._len - _REPR_SHOWN:,} more")
        return f"Outcomes(({', '.join(shown)}{',' if self._len == 1 else ''}))"


def _add_runs(parts: list[tuple[int, int, Any, int]], unit: Compact) -> None:
    """Add ``unit`` as parts of consecutive input indices: one, usually. A unit whose
    recipients are not consecutive in the input (an invalid item between them, two
    encodings interleaved) is split where they break: a Python loop, for those only."""
    indices = unit[1]
    first, count = indices[0], len(indices)
    if indices == tuple(range(first, first + count)):  # compared in C
        parts.append((first, count, unit, 0))
        return
    start = 0
    for position in range(1, count + 1):
        if position == count or indices[position] != indices[position - 1] + 1:
            parts.append((indices[start], position - start, unit, start))
            start = position
