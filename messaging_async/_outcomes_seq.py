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

Rare outcomes (rejected, unknown, not sent, the ledger's) stay real ``Outcome`` objects.

Pure: no I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import attrgetter, index, itemgetter
from typing import TYPE_CHECKING, Any, SupportsIndex, overload

from . import models as _models

if TYPE_CHECKING:
    from .models import Outcome, OutcomeStatus

__all__ = ["Accepted", "Outcomes", "compact_accepted", "expand", "register_reader"]

# A unit the gateway accepted whole: (reader, indices, numbers, refs, message_ids, code,
# answer). ``reader`` names the function (``register_reader``) that turns ``answer``, the
# gateway's answer text, into each recipient's ``raw`` again, in unit order. Every item is
# a str, an int or an exact tuple of them (refs are the caller's), so the GC untracks it.
Accepted = tuple[str, tuple[int, ...], tuple[str, ...], tuple[Any, ...], tuple[str, ...], int, str]

_READERS: dict[str, Callable[[str], Sequence[Any]]] = {}


def register_reader(name: str, reader: Callable[[str], Sequence[Any]]) -> None:
    """Make ``reader`` the way ``Accepted`` units under ``name`` get their ``raw`` back.

    Held by name, not in the unit: a function object would keep every unit tracked."""
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


def expand(unit: Accepted, raws: Sequence[Any] | None = None) -> list[Outcome]:
    """The unit's outcomes, equal field by field (``raw`` included) to what the gateway's
    general road builds for the same answer (tests compare them). ``raws``: each
    recipient's ``raw`` where the caller has the answer parsed already."""
    reader, indices, numbers, refs, message_ids, code, answer = unit
    if raws is None:
        raws = _READERS[reader](answer)
    new, accepted = _models.new_outcome, _models.OutcomeStatus.ACCEPTED
    return [
        new(number, accepted, index, message_id, code, None, ref, None, None, None, raw, False)
        for index, number, ref, message_id, raw in zip(
            indices, numbers, refs, message_ids, raws, strict=True
        )
    ]


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
    outcomes and the ``Accepted`` units of a run (``Outcomes.collected``): then it holds
    *parts* ``(first_index, count, source, start)`` in input order, ``source`` being an
    ``Outcome`` (count 1) or an ``Accepted`` unit whose positions ``start … start+count``
    hold consecutive input indices.
    """

    __slots__ = ("_cached", "_flat", "_len", "_parts", "_starts")

    def __init__(self, outcomes: Iterable[Outcome] = ()) -> None:
        self._flat: tuple[Outcome, ...] | None = tuple(outcomes)
        self._parts: list[tuple[int, int, Any, int]] = []
        self._starts: list[int] = []
        self._len = len(self._flat)
        self._cached: dict[int, tuple[Accepted, list[Outcome]]] = {}

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Outcomes:
        return outcomes if isinstance(outcomes, Outcomes) else cls(outcomes)

    @classmethod
    def collected(cls, outcomes: list[Outcome], units: list[Accepted]) -> Outcomes:
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

    def _expanded(self, unit: Accepted) -> list[Outcome]:
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
        """How many outcomes per status, without building the accepted units' outcomes."""
        if self._flat is not None:
            return Counter(map(_status_of, self._flat))  # C all the way: no generator
        counted: Counter[OutcomeStatus] = Counter()
        accepted = 0
        for _, count, source, _ in self._parts:
            if type(source) is tuple:
                accepted += count
            else:
                counted[source.status] += 1
        counted[_models.OutcomeStatus.ACCEPTED] += accepted
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


def _add_runs(parts: list[tuple[int, int, Any, int]], unit: Accepted) -> None:
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
