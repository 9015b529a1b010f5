"""Idempotent single sends (``key=``), under job 0: a key is claimed once, and what it
became is remembered; a claim in flight from a process that may still be sending is not
sent again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import LedgerError, ValidationError
from ..models import Outcome
from . import _sql as sql
from ._db import Connection
from ._decide import Recorded, decide
from ._delivery import family_of, join_waiting
from ._fingerprint import fingerprint, stored_text
from ._models import IN_FLIGHT, Entry, Plan
from ._owner import Owner, owner_alive

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["KeyedSends"]


class KeyedSends:
    """The keyed sends of one ``Store``; this process's claims belong to one run row."""

    def __init__(self, store: Store):
        self._store = store
        self._runs: dict[Owner, int] = {}

    def claim_key(
        self, key: str, entry: Entry, gateway: str, resend_unknown: bool, owner: Owner
    ) -> Plan:
        if not key:
            raise ValidationError("an idempotency key must not be empty", field="key")
        fp = fingerprint(entry.to, entry.content, self._store.salt)
        now = self._store.clock()
        with self._store.write() as conn:
            run = self._run_of(conn, owner, now)
            found = conn.execute(
                f"SELECT {sql.ROW} FROM sends WHERE job = 0 AND key = ?",  # noqa: S608
                (key,),
            ).fetchone()
            row = Recorded(*found) if found is not None else None
            alive = row is not None and row.state == IN_FLIGHT and self._alive(conn, row, now)
            if row is not None and row.run == run and row.state == IN_FLIGHT:
                row = row._replace(run=-1)  # our own process: a concurrent call, not a repeat
            decision = decide(
                entry, fp, row, run=run, now=now, resend_unknown=resend_unknown, owner_alive=alive
            )
            if decision.entry is not None:
                text = stored_text(entry.content) if self._store.store_text else None
                claim = (0, key, gateway, entry.to, entry.position, fp, text)
                conn.execute(sql.CLAIM, (*claim, decision.entry.seqno, run, now, None))
                return Plan((decision.entry,), ())
            assert decision.outcome is not None
            if decision.mark_unknown:
                conn.execute(sql.MARK_UNKNOWN, (decision.outcome.reason, now, 0, key))
            return Plan((), (decision.outcome,))

    def _run_of(self, conn: Connection, owner: Owner, now: float) -> int:
        """The owner's run for keyed sends (one per process), made on first use."""
        run = self._runs.get(owner)
        if run is None:
            made = conn.execute(
                "INSERT INTO runs (host, pid, started, opened_at, lease_until)"
                " VALUES (?, ?, ?, ?, 0)",
                (owner.host, owner.pid, owner.started, now),
            ).lastrowid
            assert made is not None
            run = self._runs[owner] = made
        return run

    def _alive(self, conn: Connection, row: Recorded, now: float) -> bool:
        """Whether the process that claimed ``row`` may still be sending it.

        A single send takes seconds: a claim older than the lease is over, whoever made it
        (a process that lives on may have been cancelled between claim and outcome).
        """
        lease_until = (row.began_at or 0.0) + self._store.lease
        if lease_until <= now:
            return False
        holder = conn.execute("SELECT host, pid, started FROM runs WHERE id = ?", (row.run,))
        found = holder.fetchone()
        return found is not None and owner_alive(Owner(*found), lease_until=lease_until, now=now)

    def settle_key(self, key: str, outcome: Outcome, owner: Owner) -> None:
        run = self._runs.get(owner)
        if run is None:
            raise LedgerError(f"key {key!r} was not claimed by {owner.describe()}")
        now, o = self._store.clock(), outcome
        row = (0, key, "", o.to, o.index, o.status.value, o.code, o.reason, o.message_id)
        with self._store.write() as conn:
            conn.execute(sql.SETTLE, (*row, o.request_id, o.seqno, run, now))
            if o.message_id is not None:
                gateway = conn.execute(
                    "SELECT gateway FROM sends WHERE job = 0 AND key = ?", (key,)
                ).fetchone()
                join_waiting(conn, family_of(gateway[0] if gateway else ""), [o.message_id])
