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
from collections.abc import Awaitable, Callable, Sequence
from itertools import chain, groupby
from operator import itemgetter
from typing import Any

import anyio

from ._outcomes_seq import Accepted

__all__ = ["AcceptedSettles"]

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
        if len(units) == 1:  # its columns as they are
            _, indices, numbers, refs, message_ids, _, _ = units[0]
        else:
            indices, numbers, refs, message_ids = (
                tuple(chain.from_iterable(map(itemgetter(column), units)))
                for column in (1, 2, 3, 4)
            )
        await self._settle_accepted(self._job, indices, numbers, refs, message_ids, code)
