"""A unit's claims and outcomes handed to SQLite as ONE JSON text, its rows made by SQLite.

Python's ``sqlite3`` binds every parameter with the GIL held, and a ``None`` or a ``bytes``
costs it an adapter look-up that fails (~3,300 instructions each: an ``AttributeError`` is
made and dropped): binding a unit's rows was ~34,000 instructions a recipient, as much as
SQLite's own insert, and all of it on the GIL the event loop needs (callgrind, a 10,000-SMS
blast). Here a unit's rows become one JSON array made by ``json``'s C encoder from tuples
read off in C (``itemgetter``/``attrgetter``), bound as one text; SQLite parses it
(``json_each``) and inserts every row within one ``sqlite3_step``, with the GIL released,
on another core. The per-run values (job, gateway, run, times) are bound once; a
positional key (``p:0000000042``) is made by SQLite from the position; the fingerprints go
as one BLOB of 16 bytes each, cut by ``substr`` (JSON cannot carry bytes; ``unhex`` is
too new), so every stored value is the one the ``VALUES`` road (``_sql.insert_rows``)
stores: the same statements' upsert clauses, the same rows, in the same order.

Used on SQLite with the JSON functions and the ``->>`` operator (3.38+, detected once a
connection: ``supported``); elsewhere, and for a unit JSON cannot carry exactly (a text
with a NUL, a value JSON has no form for), ``_sql.insert_rows`` as before.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from operator import attrgetter, itemgetter
from typing import Any

from ..errors import ValidationError
from ..models import Outcome
from . import _sql as sql
from ._db import Connection
from ._fingerprint import fingerprint, stored_text
from ._models import Entry, key_of

__all__ = ["CLAIM", "SETTLE", "claim", "settle", "supported"]


def _upsert(statement: str) -> str:
    """``statement``'s ``ON CONFLICT …`` clause: one text for both roads."""
    return statement[statement.index(" ON CONFLICT ") :]


# A row's key: the one given at [3] (a ref's), else its position's, as ``key_of`` makes it.
CLAIM = (  # the upsert is ``sql.CLAIM``'s own text
    "INSERT INTO sends (job, key, gateway, recipient, position, fingerprint, text, state, seqno,"  # noqa: S608
    " run, attempts, began_at, delivery)"
    " SELECT ?1, coalesce(r.value ->> 3, printf('p:%010d', r.value ->> 0)), ?2, r.value ->> 1,"
    " r.value ->> 0, substr(?3, 16 * r.key + 1, 16), r.value ->> 4, 'in_flight',"
    " r.value ->> 2, ?4, 1, ?5, ?6 FROM json_each(?7) AS r WHERE true" + _upsert(sql.CLAIM)
)
"""``sql.CLAIM`` for a JSON array of ``[position, to, seqno, key?, text?]`` rows (a key
only where a ref gives one; ``WHERE true``: SQLite's parser needs it before an upsert)."""

SETTLE = (  # the upsert is ``sql.SETTLE``'s own text
    "INSERT INTO sends (job, key, gateway, recipient, position, state, code, reason,"  # noqa: S608
    " message_id, request_id, seqno, run, settled_at)"
    " SELECT ?1, coalesce(r.value ->> 8, printf('p:%010d', r.value ->> 0)), ?2, r.value ->> 1,"
    " r.value ->> 0, r.value ->> 2, r.value ->> 3, r.value ->> 4, r.value ->> 5, r.value ->> 6,"
    " r.value ->> 7, ?3, ?4 FROM json_each(?5) AS r WHERE true" + _upsert(sql.SETTLE)
)
"""``sql.SETTLE`` for a JSON array of ``Outcome`` rows as ``_OUTCOME`` reads them (and a
key at [8] where a ref gives one)."""

_ENTRY = itemgetter(0, 1, 4)  # Entry: position, to, seqno
_OUTCOME = attrgetter(
    "index", "to", "status", "code", "reason", "message_id", "request_id", "seqno"
)  # status: a StrEnum, written by json as its value
_REF = attrgetter("ref")
_FP_BYTES = 16  # a fingerprint's length: the claim statement cuts them 16 at a time

# check_circular off: rows of tuples of scalars cannot hold themselves (it costs a dict
# entry per tuple); ensure_ascii off: no escapes for SQLite to undo (and no \\uXXXX pairs).
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":")).encode


def supported(conn: Connection) -> bool:
    """Whether ``conn`` is SQLite with ``json_each`` and ``->>`` (3.38+; asked once)."""
    if not isinstance(conn, sqlite3.Connection):
        return False  # PostgreSQL: the shared VALUES statements (``_pg`` translates them)
    try:
        found = conn.execute("SELECT r.value ->> 0 FROM json_each('[[7]]') AS r").fetchone()
    except sqlite3.Error:  # no JSON functions in this build, or too old for ->>
        return False
    return bool(found == (7,))


def _dumps(rows: list[Any]) -> str | None:
    """The rows as JSON, or ``None`` where JSON cannot carry them exactly: SQLite's
    ``->>`` ends a text at an escaped NUL (a literal backslash-u0000 in a text also reads
    so: it goes the other road, harmlessly), and a value JSON has no form for."""
    try:
        text = _encode(rows)
    except (TypeError, ValueError):
        return None
    return None if "\\u0000" in text else text


_INT64 = 2**63


def _exact_codes(rows: list[Any]) -> bool:
    """Whether the rows' codes (the one number from outside the SDK: a gateway's) are
    ints SQLite keeps as they are: its JSON reads a larger one as a REAL, where binding it
    fails (``OverflowError``), and a float in JSON may not come back bit for bit."""
    codes = [code for code in map(itemgetter(3), rows) if code is not None]
    return not codes or (
        set(map(type, codes)) == {int} and min(codes) >= -_INT64 and max(codes) < _INT64
    )


def _distinct(keys: list[Any]) -> bool:
    return len(set(keys)) == len(keys)


def claim(
    conn: Connection,
    head: tuple[int, str, int, float, str | None],
    entries: Sequence[Entry],
    salt: bytes,
    keep_text: bool,
) -> bool:
    """Write ``entries``' claims (``head``: job, gateway, run, now, delivery) by one
    statement; ``False``, having written nothing, where the ``VALUES`` road must.

    A repeated key goes that road too: it writes such a unit one row a statement."""
    refs = list(map(itemgetter(2), entries))
    fps = b"".join([fingerprint(e.to, e.content, salt) for e in entries])
    if refs.count(None) == len(refs) and not keep_text:  # the usual unit: by position
        rows: list[Any] = list(map(_ENTRY, entries))
        if not _distinct(list(map(itemgetter(0), entries))):
            return False
    else:
        rows = []
        for entry in entries:
            key = key_of(entry.ref, entry.position)
            if key is None:
                raise ValidationError("a journalled ref must be a str or an int", field="ref")
            text = stored_text(entry.content) if keep_text else None
            rows.append((entry.position, entry.to, entry.seqno, key, text))
        if not _distinct([row[3] for row in rows]):
            return False
    assert len(fps) == _FP_BYTES * len(rows)
    text = _dumps(rows)
    if text is None:
        return False
    job, gateway, run, now, delivery = head
    conn.execute(CLAIM, (job, gateway, fps, run, now, delivery, text))
    return True


def settle(
    conn: Connection, head: tuple[int, str, int, float], outcomes: Sequence[Outcome]
) -> bool:
    """Write ``outcomes`` (``head``: job, gateway, run, now) by one statement; an outcome
    whose ref the ledger cannot key is left out, as the ``VALUES`` road leaves it out.
    ``False``, having written nothing, where that road must."""
    refs = list(map(_REF, outcomes))
    if refs.count(None) == len(refs):  # the usual unit: keyed by position
        rows: list[Any] = list(map(_OUTCOME, outcomes))
        keys: list[Any] = list(map(itemgetter(0), rows))
    else:
        rows, keys = [], []
        for outcome in outcomes:
            key = key_of(outcome.ref, outcome.index)
            if key is not None:
                rows.append((*_OUTCOME(outcome), key))
                keys.append(key)
    if not rows:
        return True
    if not (_distinct(keys) and _exact_codes(rows)):
        return False
    text = _dumps(rows)
    if text is None:
        return False
    job, gateway, run, now = head
    conn.execute(SETTLE, (job, gateway, run, now, text))
    return True
