"""Units accepted whole, committed together: one ``settle_accepted`` call for all the
units whose answers came back while the previous call was being committed.

Why not one call a unit: the ledger's ``Batcher`` already puts many units' calls in one
thread trip, but each call still costs the event loop its own ``Call``, event, shielded
scope and a task switch to wake its caller: 2,700 instructions a message of a journalled
iSMS blast's event loop (callgrind, 20,000 SMS less 2,000, against 78,800 in all), for
units whose tasks only waited there. Now a unit hands its columns over and its task goes
on to the next unit; the task that found no call under way writes them, and whatever
came meanwhile, until nothing waits. The journal's ``close`` writes what is left, so a
run still returns only once every outcome is committed.

The rows are the same: ``settle_accepted`` of several units with one code is
``settle_unit`` of all their outcomes. A call that fails is tried again a unit at a time,
so one unit's failure leaves only that unit in flight, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from itertools import chain, groupby
from operator import itemgetter
from typing import Any, overload

import anyio

from ._outcomes_seq import Accepted

__all__ = ["AcceptedSettles", "Joined"]

logger = logging.getLogger("messaging_async.ledger")

SettleAccepted = Callable[
    [str, Sequence[int], Sequence[str], Sequence[Any], Sequence[str | None], int | None],
    Awaitable[None],
]

_CODE = itemgetter(5)  # an ``Accepted`` unit's code


class AcceptedSettles:
    """One journalled run's units accepted whole that wait for their commit."""

    def __init__(self, settle_accepted: SettleAccepted, job: str):
        self._settle_accepted = settle_accepted
        self._job = job
        self._waiting: list[Accepted] = []
        self._writing = False

    async def add(self, unit: Accepted) -> None:
        """Have ``unit`` committed: by this task if no other is writing, else by the one
        that is (with its next call)."""
        self._waiting.append(unit)
        await self.flush()

    async def flush(self) -> None:
        """Commit every unit waiting, and those that come meanwhile, until none waits;
        nothing if another task is writing them (it writes them too). Shielded from
        cancellation: a Ctrl-C cannot lose an answer that came back (only a task that
        writes enters the shielded scope: most units' tasks only hand theirs over)."""
        if self._writing or not self._waiting:
            return
        self._writing = True
        try:
            with anyio.CancelScope(shield=True):
                while self._waiting:
                    units, self._waiting = self._waiting, []
                    for code, group in groupby(units, _CODE):
                        await self._write(list(group), code)
        finally:
            self._writing = False

    async def _write(self, units: list[Accepted], code: int) -> None:
        try:
            await self._call(units, code)
        except Exception:
            if len(units) == 1:
                logger.exception("the ledger could not record a unit's outcomes")
                return
            for unit in units:  # which one it was: the others are recorded all the same
                try:
                    await self._call([unit], code)
                except Exception:
                    logger.exception("the ledger could not record a unit's outcomes")

    async def _call(self, units: list[Accepted], code: int) -> None:
        columns: tuple[Sequence[Any], ...]
        if len(units) == 1:  # its columns as they are
            columns = units[0][1:5]
        else:
            columns = tuple(Joined(tuple(map(itemgetter(c), units))) for c in (1, 2, 3, 4))
        indices, numbers, refs, message_ids = columns
        await self._settle_accepted(self._job, indices, numbers, refs, message_ids, code)


class Joined(Sequence[Any]):
    """A column of several units, one unit's values after another's (``parts``), joined
    only where it is read whole: the writer process's encoder lists it as it pickles the
    call's frame, and drops it then (``_writer_calls._listed``); a store in a thread reads
    it as any sequence (joined once, then kept).

    Why not a tuple joined here: a call's four columns held every value of the units
    coalesced (2,500 a column at concurrency 50), made while the call waited a round of
    the event loop for its trip (``Batcher``'s linger), the round in which the claims
    woken with it make their objects: the young collections found them alive, and walked
    them (``benchmarks/ledger_claims.py``, 50,000 SMS: 623,000 -> 440,000 references
    walked in its 22 young collections, with the trip's ops let go once pickled)."""

    __slots__ = ("_parts", "_whole")

    def __init__(self, parts: tuple[Sequence[Any], ...]):
        self._parts = parts
        self._whole: tuple[Any, ...] | None = None

    def __len__(self) -> int:
        return sum(map(len, self._parts))

    def __iter__(self) -> Iterator[Any]:
        return chain.from_iterable(self._parts)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Any, ...]: ...
    def __getitem__(self, index: int | slice) -> Any:
        whole = self._whole
        if whole is None:
            whole = self._whole = tuple(chain.from_iterable(self._parts))
        return whole[index]

    def count(self, value: Any) -> int:
        """As a tuple counts (``==`` after identity), a part at a time, nothing joined."""
        return sum(part.count(value) for part in self._parts)

    def __repr__(self) -> str:
        return f"Joined({list(self)!r})"
