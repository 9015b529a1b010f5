"""A unit's claims and outcomes bound lean on SQLite: only the values that differ per row.

Python's ``sqlite3`` binds every parameter with the GIL held, the event loop's GIL, and a
``None``, a ``bytes`` or a ``str`` subclass (``OutcomeStatus``) costs it an adapter look-up
that fails (~3,300 instructions each: an ``AttributeError`` made and dropped). Binding a
unit's rows one value at a time (``_sql.insert_rows``) was ~34,000 instructions a
recipient, as much as SQLite's own inserts (callgrind, a 10,000-SMS blast). Here each
multi-row statement numbers its parameters (``?7``): the unit's job, gateway, run and time
are bound once; a column that is ``NULL`` in every row of the unit (a text not kept, no
seqno, no reason…) and a status every row shares are written into the statement, not
bound; a positional key (``p:0000000042``) is made by SQLite's ``printf`` from the
position; the fingerprints go as one BLOB, cut by ``substr``. The same rows are stored, by
the same upsert clauses (``_sql``), in the same order; SQLite's own work is unchanged.

(Measured and not kept: the rows as one JSON text made into rows by ``json_each``: the
least GIL-held work, but SQLite's JSON parsing 2.6 times its inserts' instructions, and a
blast's claims wait for that work whatever thread does it.)

SQLite only (numbered parameters); PostgreSQL binds through ``_pg`` as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any

from ..errors import ValidationError
from ..models import Outcome
from . import _sql as sql
from ._db import Connection
from ._fingerprint import fingerprints, stored_text
from ._models import Entry, key_of

__all__ = ["claim", "settle", "supported"]

_MAX_VARIABLES = 999  # SQLite's smallest compiled-in limit on parameters (before 3.32)
_FP = 16  # a fingerprint's bytes
_POSITIONAL = "printf('p:%010d', {})"  # ``key_of(None, position)``, made by SQLite

_OUTCOME = attrgetter(
    "index", "to", "status", "code", "reason", "message_id", "request_id", "seqno"
)
_SETTLE_COLUMNS = (
    "position",
    "recipient",
    "state",
    "code",
    "reason",
    "message_id",
    "request_id",
    "seqno",
)  # as ``_OUTCOME`` reads them


def supported(conn: Connection) -> bool:
    """Whether ``conn`` is SQLite (numbered parameters); PostgreSQL binds as before."""
    return isinstance(conn, sqlite3.Connection)


def _upsert(statement: str) -> str:
    """``statement``'s ``ON CONFLICT …`` clause: one text for both roads."""
    return statement[statement.index(" ON CONFLICT ") :]


@lru_cache(maxsize=256)
def _claim_statement(rows: int, keyed: bool, text: bool, seqno: bool) -> str:
    """The claim of ``rows`` rows: ?1 job, ?2 gateway, ?3 run, ?4 now, ?5 delivery, ?6 the
    fingerprints; then per row its position, number, and key / text / seqno where bound."""
    width = 2 + keyed + text + seqno
    values = []
    for i in range(rows):
        at = iter(range(7 + i * width, 7 + (i + 1) * width))
        position, to = f"?{next(at)}", f"?{next(at)}"
        key = f"?{next(at)}" if keyed else _POSITIONAL.format(position)
        stored = f"?{next(at)}" if text else "NULL"
        seq = f"?{next(at)}" if seqno else "NULL"
        fp = f"substr(?6, {i * _FP + 1}, {_FP})"
        values.append(
            f"(?1, {key}, ?2, {to}, {position}, {fp}, {stored}, 'in_flight', {seq}, ?3, 1, ?4, ?5)"
        )
    return (
        "INSERT INTO sends (job, key, gateway, recipient, position, fingerprint, text, state,"  # noqa: S608
        " seqno, run, attempts, began_at, delivery) VALUES " + ",".join(values) + _upsert(sql.CLAIM)
    )


def claim(
    conn: Connection,
    head: tuple[int, str, int, float, str | None],
    entries: Sequence[Entry],
    salt: bytes,
    keep_text: bool,
) -> None:
    """Write ``entries``' claims (``head``: job, gateway, run, now, delivery).

    A unit that repeats a key is written like any other: SQLite applies a multi-row
    upsert row by row, as one statement a row does (PostgreSQL refuses it: ``_sql``)."""
    refs = list(map(itemgetter(2), entries))
    keyed = refs.count(None) != len(refs)
    keys = [key_of(e.ref, e.position) for e in entries] if keyed else []
    if None in keys:
        raise ValidationError("a journalled ref must be a str or an int", field="ref")
    seqnos = list(map(itemgetter(4), entries))
    columns: list[Any] = [map(itemgetter(0), entries), map(itemgetter(1), entries)]
    if keyed:
        columns.append(keys)
    if keep_text:
        columns.append([stored_text(e.content) for e in entries])
    has_seqno = seqnos.count(None) != len(seqnos)
    if has_seqno:
        columns.append(seqnos)
    rows = list(zip(*columns, strict=True))
    fps = fingerprints(entries, salt)
    per = (_MAX_VARIABLES - 6) // len(rows[0]) if rows else 1
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        statement = _claim_statement(len(part), keyed, keep_text, has_seqno)
        blob = fps[start * _FP : (start + per) * _FP]
        conn.execute(statement, [*head, blob, *chain.from_iterable(part)])


@lru_cache(maxsize=256)
def _settle_statement(rows: int, keyed: bool, bound: tuple[int, ...], state: str | None) -> str:
    """The outcomes of ``rows`` rows: ?1 job, ?2 gateway, ?3 run, ?4 now; then per row the
    ``_OUTCOME`` columns in ``bound`` (the others ``NULL``, or the shared ``state``) and its
    key where bound."""
    width = len(bound) + keyed
    values = []
    for i in range(rows):
        at = iter(range(5 + i * width, 5 + (i + 1) * width))
        column = {c: f"?{next(at)}" for c in bound}
        if state is not None:
            column[2] = "'" + state.replace("'", "''") + "'"
        key = f"?{next(at)}" if keyed else _POSITIONAL.format(column[0])
        read = [column.get(c, "NULL") for c in range(len(_SETTLE_COLUMNS))]
        values.append(f"(?1, {key}, ?2, {', '.join(read)}, ?3, ?4)")
    return (
        "INSERT INTO sends (job, key, gateway, "  # noqa: S608 (marks and our own names)
        + ", ".join(_SETTLE_COLUMNS)
        + ", run, settled_at) VALUES "
        + ",".join(values)
        + _upsert(sql.SETTLE)
    )


def settle(
    conn: Connection, head: tuple[int, str, int, float], outcomes: Sequence[Outcome]
) -> None:
    """Write ``outcomes`` (``head``: job, gateway, run, now); one whose ref the ledger
    cannot key is left out, as ``_sql.settle_rows`` leaves it out."""
    refs = list(map(attrgetter("ref"), outcomes))
    keyed = refs.count(None) != len(refs)
    if keyed:
        pairs = [(o, key_of(o.ref, o.index)) for o in outcomes]
        outcomes = [o for o, key in pairs if key is not None]
        keys = [key for _, key in pairs if key is not None]
    if not outcomes:
        return
    rows = list(map(_OUTCOME, outcomes))
    columns = list(zip(*rows, strict=True))
    states = set(columns[2])
    state = str(states.pop()) if len(states) == 1 else None
    if state is None:  # mixed: each as the plain str it is (a StrEnum binds at a cost)
        columns[2] = tuple(map(str, columns[2]))
    bound = tuple(
        c
        for c in range(len(_SETTLE_COLUMNS))
        if (c != 2 and columns[c].count(None) != len(rows)) or (c == 2 and state is None)
    )
    picked: list[Sequence[Any]] = [columns[c] for c in bound]
    if keyed:
        picked.append(keys)
    values = list(zip(*picked, strict=True))
    per = (_MAX_VARIABLES - 4) // max(1, len(values[0]))
    for start in range(0, len(values), per):
        part = values[start : start + per]
        statement = _settle_statement(len(part), keyed, bound, state)
        conn.execute(statement, [*head, *chain.from_iterable(part)])
