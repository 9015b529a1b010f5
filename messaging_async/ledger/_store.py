"""The ledger's writing side, synchronous and shared by both stores (SQLite, and PostgreSQL
through ``_pg``): jobs and their owners, plan, write-ahead
claims, outcomes (keyed single sends: ``_keys``). ``SqliteLedger`` runs it in worker
threads.

Every public method is one transaction (``BEGIN IMMEDIATE`` … ``COMMIT``), or a savepoint
of its trip's transaction (``Transactions.run_trip``; or, in the writer process, the trip run again
without a call that fails), so a unit's recipients are claimed, or settled, all together
or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import JobRunningError, LedgerError, ValidationError
from ..models import Outcome, OutcomeStatus, new_outcome
from . import _lean_rows
from . import _sql as sql
from ._db import Connection
from ._decide import REF_REPEATED, Decision, Recorded, decide, outcome_of
from ._delivery import family_of, has_waiting, join_settled, join_waiting
from ._fingerprint import fingerprint
from ._keys import KeyedSends
from ._models import (
    IN_FLIGHT,
    NO_REPORT_EXPECTED,
    REF_REFUSED,
    Entry,
    Plan,
    key_of,
    refused_key,
    repeat_key,
)
from ._owner import Owner, owner_alive
from ._run import Run
from ._transactions import Transactions

__all__ = ["Store"]


_SETTLED = frozenset((OutcomeStatus.ACCEPTED.value, OutcomeStatus.REJECTED.value))

# Where each column sits in a row read by ``Store._rows``: the key, then ``sql.ROW``. The
# resume rule that decides most of a resumed job is read straight off the row in ``plan``
# (a recipient settled by an earlier run, same content, same input position, keeps its
# recorded outcome): ``decide`` says the same, at twice the cost.
_FP, _STATE, _RUN, _POSITION = 1, 2, 8, 9


class Store(Transactions):
    """The ledger's operations, each one transaction, or one call of a trip
    (``Transactions``)."""

    def __init__(
        self,
        conn: Connection,
        *,
        store_text: bool,
        lease_seconds: float,
        clock: Callable[[], float],
    ):
        super().__init__(conn)
        self.store_text = store_text
        self.lease = lease_seconds
        self.clock = clock
        self.salt = self._salt()
        self.lean_rows = _lean_rows.supported(conn)
        """Whether a unit's rows are bound lean (``_lean_rows``: SQLite), not one value at
        a time (``sql.insert_rows``: PostgreSQL)."""
        self.keys = KeyedSends(self)

    def _salt(self) -> bytes:
        with self.write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE name = 'salt'").fetchone()
            if row is not None:
                return bytes(row[0])
            salt = os.urandom(16)
            conn.execute("INSERT INTO meta (name, value) VALUES ('salt', ?)", (salt,))
            return salt

    # -- jobs -----------------------------------------------------------------------------

    def open_job(self, job: str, gateway: str, owner: Owner) -> None:
        if not job:
            raise ValidationError("a job needs a name", field="job")
        if job in self.runs:
            raise JobRunningError(
                f"job {job!r} is already open in this ledger", job=job, owner=owner.describe()
            )
        now = self.clock()
        with self.write() as conn:
            found = conn.execute("SELECT id, gateway, run FROM jobs WHERE name = ?", (job,))
            row = found.fetchone()
            if row is not None:
                self._check_free(conn, job, row[2], now)
                if row[1] != gateway:
                    raise LedgerError(
                        f"job {job!r} was started on {row[1]}, not {gateway}: use a new job name"
                    )
            run_id = conn.execute(
                "INSERT INTO runs (host, pid, started, opened_at, lease_until)"
                " VALUES (?, ?, ?, ?, ?)",
                (owner.host, owner.pid, owner.started, now, now + self.lease),
            ).lastrowid
            assert run_id is not None
            if row is None:
                job_id = conn.execute(
                    "INSERT INTO jobs (name, gateway, run, created_at) VALUES (?, ?, ?, ?)",
                    (job, gateway, run_id, now),
                ).lastrowid
                assert job_id is not None
            else:
                job_id = row[0]
                conn.execute(
                    "UPDATE jobs SET run = ?, closed_at = NULL WHERE id = ?", (run_id, job_id)
                )
        self.runs[job] = Run(job_id, run_id, gateway, fresh=row is None)

    def _check_free(self, conn: Connection, job: str, run: int | None, now: float) -> None:
        if run is None:
            return
        holder = conn.execute(
            "SELECT host, pid, started, lease_until FROM runs WHERE id = ?", (run,)
        ).fetchone()
        if holder is None:
            return
        owner = Owner(holder[0], holder[1], holder[2])
        if owner_alive(owner, lease_until=holder[3], now=now):
            raise JobRunningError(
                f"job {job!r} is being run by {owner.describe()}: two runs would send twice;"
                " wait for it to finish (or, if it died on another machine, for its lease)",
                job=job,
                owner=owner.describe(),
            )

    def run_of(self, job: str) -> Run:
        run = self.runs.get(job)
        if run is None:
            raise LedgerError(f"job {job!r} is not open: call open_job first")
        return run

    def _renew(self, conn: Connection, run: Run, job: str) -> None:
        """Extend the lease, and make sure no other run took the job meanwhile.

        Once per trip and run: a trip is one ``BEGIN IMMEDIATE`` transaction (on
        PostgreSQL: under the writers' lock), so nobody can take the job between its calls
        (a dozen units' renewals, one statement).
        """
        if run.run_id in self._renewed:
            return
        held = conn.execute(
            "UPDATE runs SET lease_until = ? WHERE id = ? AND id = (SELECT run FROM jobs"
            " WHERE id = ?)",
            (self.clock() + self.lease, run.run_id, run.job_id),
        ).rowcount
        if not held:
            raise LedgerError(
                f"job {job!r} was taken over by another run after this run's lease ran out"
            )
        if self._in_trip:
            self._renewed.append(run.run_id)

    def renew_job(self, job: str) -> None:
        run = self.run_of(job)
        with self.write() as conn:
            self._renew(conn, run, job)

    def close_job(self, job: str) -> None:
        run = self.runs.pop(job, None)
        if run is None:
            return
        with self.write() as conn:
            conn.execute(
                "UPDATE jobs SET run = NULL, closed_at = ? WHERE id = ? AND run = ?",
                (self.clock(), run.job_id, run.run_id),
            )

    # -- a job's units --------------------------------------------------------------------

    def plan(self, job: str, entries: Sequence[Entry], resend_unknown: bool) -> Plan:
        run = self.run_of(job)
        if run.unheard_of(entries):  # a fresh job's usual unit: nothing to read (issue 17)
            return Plan(tuple(entries), ())
        keyed = [(entry, key_of(entry.ref, entry.position)) for entry in entries]
        known = [key for _, key in keyed if key is not None]
        now = self.clock()
        with self.lock:
            rows = self._rows(run.job_id, known, entries)
        send: list[Entry] = []
        outcomes: list[Outcome] = []
        unknown: list[tuple[str, float, int, str]] = []
        # rejections the ledger decides (a repeated ref, a ref it cannot key): recorded
        rejected: list[tuple[int, str, str, str, int, str]] = []
        seen: set[str] = set()
        repeated = len(set(known)) != len(known)  # rare: only then is ``seen`` kept
        run_id, salt, found = run.run_id, self.salt, rows.get
        for entry, key in keyed:
            if key is None:
                outcomes.append(entry.outcome(OutcomeStatus.REJECTED, REF_REFUSED))
                where = refused_key(entry.position)
                rejected.append(
                    (run.job_id, where, run.gateway, entry.to, entry.position, REF_REFUSED)
                )
                continue
            raw = found(key)
            if repeated:
                if key in seen:  # twice in this unit: the second is a repeat
                    raw = (key, b"", IN_FLIGHT, *(None,) * 5, run_id, None, None)
                seen.add(key)
            if raw is None:  # never claimed: the common case of a fresh job, kept cheap
                send.append(entry)
                continue
            fp = fingerprint(entry.to, entry.content, salt)
            if (  # settled by an earlier run, same content and position: most of a resume
                raw[_STATE] in _SETTLED
                and raw[_FP] == fp
                and raw[_POSITION] == entry.position
                and raw[_RUN] != run_id
            ):
                outcomes.append(outcome_of(entry, *raw[_STATE:_RUN]))  # as decide() would say
                continue
            row = Recorded._make(raw[1:])
            if row.position != entry.position and row.run != run.run_id:
                row = self._repeat_of_an_earlier_run(run, key, entry, row)
            decision = decide(
                entry, fp, row, run=run.run_id, now=now, resend_unknown=resend_unknown
            )
            _follow(decision, send, outcomes)
            if decision.mark_unknown:
                assert decision.outcome is not None
                unknown.append((decision.outcome.reason or "", now, run.job_id, key))
            elif decision.outcome is not None and decision.outcome.reason == REF_REPEATED:
                o = decision.outcome
                where = repeat_key(key, o.index)
                rejected.append((run.job_id, where, run.gateway, o.to, o.index, REF_REPEATED))
        if unknown or rejected:
            with self.write() as conn:
                conn.executemany(sql.MARK_UNKNOWN, unknown)
                conn.executemany(sql.RECORD_REJECTED, [(*r, run.run_id, now) for r in rejected])
        return Plan(tuple(send), tuple(outcomes))

    def _repeat_of_an_earlier_run(
        self, run: Run, key: str, entry: Entry, row: Recorded
    ) -> Recorded:
        """A ref met at another input position than the one recorded: the input was
        reordered, or the ref is repeated — which an earlier run recorded when it rejected
        the repeat at this position (rare: one extra look-up)."""
        found = self.conn.execute(
            "SELECT 1 FROM sends WHERE job = ? AND key = ?",
            (run.job_id, repeat_key(key, entry.position)),
        ).fetchone()
        return row._replace(run=run.run_id) if found is not None else row

    def _rows(
        self, job_id: int, keys: list[str], entries: Sequence[Entry]
    ) -> dict[str, tuple[Any, ...]]:
        """The unit's recorded rows, in one query: a range where the unit is a run of
        consecutive input positions (the usual unit; a third cheaper), else by key."""
        if not keys:
            return {}
        first, count = entries[0].position, len(entries)
        if (
            len(keys) == count
            and entries[-1].position == first + count - 1
            and keys[0] == key_of(None, first)
            and keys[-1] == key_of(None, first + count - 1)
            and all(
                entry.ref is None and entry.position == first + i for i, entry in enumerate(entries)
            )
        ):
            query = f"SELECT key, {sql.ROW} FROM sends WHERE job = ? AND key BETWEEN ? AND ?"  # noqa: S608
            found = self.conn.execute(query, (job_id, keys[0], keys[-1]))
        else:
            marks = ",".join("?" * len(keys))
            query = f"SELECT key, {sql.ROW} FROM sends WHERE job = ? AND key IN ({marks})"  # noqa: S608
            found = self.conn.execute(query, (job_id, *keys))
        return {row[0]: row for row in found}  # (key, *sql.ROW): read by the indexes below

    def begin_unit(self, job: str, entries: Sequence[Entry], expect_reports: bool) -> None:
        run = self.run_of(job)
        if self.lean_rows:  # only what differs per row is bound (``_lean_rows``)
            with self._claiming(job, run, expect_reports) as (conn, head):
                _lean_rows.claim(conn, head, entries, self.salt, self.store_text)
            return
        # the rows (their fingerprints) made before the transaction, not while it holds
        delivery = None if expect_reports else NO_REPORT_EXPECTED
        head = (run.job_id, run.gateway, run.run_id, self.clock(), delivery)
        claims = sql.claim_rows(head, entries, self.salt, self.store_text)
        with self.write() as conn:
            self._renew(conn, run, job)
            sql.insert_rows(conn, sql.CLAIM, claims)

    @contextmanager
    def _claiming(
        self, job: str, run: Run, expect_reports: bool
    ) -> Iterator[tuple[Connection, tuple[int, str, int, float, str | None]]]:
        """The transaction of a unit's claims on the lean road, its lease renewed, and
        their ``_lean_rows.claim`` head (job, gateway, run, now, delivery)."""
        delivery = None if expect_reports else NO_REPORT_EXPECTED
        with self.write() as conn:
            self._renew(conn, run, job)
            yield conn, (run.job_id, run.gateway, run.run_id, self.clock(), delivery)

    def plan_and_begin_columns(
        self,
        job: str,
        units: Sequence[_lean_rows.Claims],
        refs: Sequence[Sequence[Any]],
        expect_reports: bool,
    ) -> bool:
        """``plan_and_begin`` of units given as columns (the writer process's: a trip's
        consecutive units of ``job``), where ``plan`` would send each all as given without
        reading a row (``Run.unheard_of``: a fresh job's units keyed by position, the
        usual units of a blast): their claims written straight from the columns, together
        (``_lean_rows.claim_columns`` of them joined: full statements), no ``Entry`` made,
        and ``True``. Else, or should the write fail, nothing is written, the job's plan is
        as it was, and ``False`` (or the error): the caller plans each the usual way."""
        run = self.run_of(job)
        filled = [unit for unit in units if unit.positions]  # an empty plan claims nothing
        if not self.lean_rows or len({unit.texts for unit in filled}) > 1:
            return False
        planned = run.unplanned
        pairs = zip(units, refs, strict=True)
        if not all([run.unheard_of_columns(unit.positions, ref) for unit, ref in pairs]):
            run.unplanned = planned
            return False
        if filled:
            unit = filled[0] if len(filled) == 1 else _lean_rows.joined(filled)
            try:
                with self._claiming(job, run, expect_reports) as (conn, head):
                    _lean_rows.claim_columns(conn, head, unit, self.salt, self.store_text)
            except BaseException:
                run.unplanned = planned
                raise
        return True

    def plan_and_begin(
        self, job: str, entries: Sequence[Entry], resend_unknown: bool, expect_reports: bool
    ) -> Plan:
        """``plan``, then ``begin_unit`` of what it says to send: one call, one trip."""
        plan = self.plan(job, entries, resend_unknown)
        if plan.send:
            self.begin_unit(job, plan.send, expect_reports)
        return plan

    def settle_unit(self, job: str, outcomes: Sequence[Outcome]) -> None:
        run = self.run_of(job)
        head = (run.job_id, run.gateway, run.run_id, self.clock())
        with self.write() as conn:
            self._renew(conn, run, job)
            # One upsert settles this run's claims and counts the recipients never claimed
            # (an update, then an insert for the unclaimed, costs more: issue 17).
            if self.lean_rows:
                _lean_rows.settle(conn, head, outcomes)
            else:
                sql.insert_rows(conn, sql.SETTLE, sql.settle_rows(head, outcomes))
            join_settled(conn, run.gateway, outcomes)

    def settle_accepted(
        self,
        job: str,
        indices: Sequence[int],
        numbers: Sequence[str],
        refs: Sequence[Any],
        message_ids: Sequence[str | None],
        code: int | None,
    ) -> None:
        """``settle_unit`` of a unit the gateway accepted whole with one ``code``, given as
        its columns: on SQLite the same rows are written from them (``_lean_rows``), no
        ``Outcome`` made; elsewhere (PostgreSQL) their outcomes are made here, and settled
        the usual way."""
        if not self.lean_rows:
            accepted = OutcomeStatus.ACCEPTED
            outcomes = [
                new_outcome(number, accepted, index, message_id, code, None, ref, *_NONE)
                for index, number, ref, message_id in zip(
                    indices, numbers, refs, message_ids, strict=True
                )
            ]
            self.settle_unit(job, outcomes)
            return
        run = self.run_of(job)
        head = (run.job_id, run.gateway, run.run_id, self.clock())
        columns = (indices, numbers, refs, message_ids, code)
        with self.write() as conn:
            self._renew(conn, run, job)
            _lean_rows.settle_accepted(conn, head, columns)
            if has_waiting(conn):  # as ``join_settled`` does for outcomes
                ids = [i for i in message_ids if i is not None]
                join_waiting(conn, family_of(run.gateway), ids)


_NONE = (None, None, None, None, False)  # its request_id, seqno, error, raw, from_ledger


def _follow(decision: Decision, send: list[Entry], outcomes: list[Outcome]) -> None:
    if decision.entry is not None:
        send.append(decision.entry)
    else:
        assert decision.outcome is not None
        outcomes.append(decision.outcome)
