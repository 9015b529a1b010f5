"""A job as the run holding it knows it (``Store.runs``)."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from ._models import Entry, all_none

__all__ = ["Run"]

_POSITION, _REF = itemgetter(0), itemgetter(2)  # an Entry's


class Run:
    """A job this process holds: its ids and gateway; ``fresh`` if this run created it (no
    earlier run left anything in it), and ``unplanned``: no input position from there on
    was planned by this run yet (``-1``: the job is not fresh)."""

    __slots__ = ("fresh", "gateway", "job_id", "run_id", "unplanned")

    def __init__(self, job_id: int, run_id: int, gateway: str, *, fresh: bool = False):
        self.job_id, self.run_id, self.gateway = job_id, run_id, gateway
        self.fresh = fresh
        self.unplanned = 0 if fresh else -1

    def unheard_of(self, entries: Sequence[Entry]) -> bool:
        """Whether ``entries`` can have no row: the job is this run's own, they are keyed
        by position, and this run has planned none of those positions yet (the runner plans
        its units in input order: a fresh job's units all are)."""
        if self.unplanned < 0:
            return False
        # read in C: this runs for every unit
        return self.unheard_of_columns(list(map(_POSITION, entries)), list(map(_REF, entries)))

    def unheard_of_columns(self, positions: Sequence[int], refs: Sequence[Any]) -> bool:
        """``unheard_of`` of the entries whose positions and refs these are (the writer
        process is sent a unit as columns). Either way, the positions count as planned."""
        if self.unplanned < 0:
            return False
        if not positions:
            return True
        floor = self.unplanned
        self.unplanned = max(floor, max(positions) + 1)
        return min(positions) >= floor and all_none(refs)
