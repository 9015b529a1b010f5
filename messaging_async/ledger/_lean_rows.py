"""A unit's claims and outcomes bound lean on SQLite: no value that costs an adaptation.

Python's ``sqlite3`` binds every parameter with the GIL held, the event loop's GIL, and a
``None``, a ``bytes`` or a ``str`` subclass (``OutcomeStatus``) costs it an adapter look-up
that fails (~3,300 instructions each: an ``AttributeError`` made and dropped). Binding a
unit's rows as they were (``_sql.insert_rows``: seven such values a recipient) was ~34,000
instructions a recipient, as much as SQLite's own inserts (callgrind, a 10,000-SMS blast).
Here a column that is ``NULL`` in every row of the unit (a text not kept, no seqno, no
reason…), a status every row shares, the delivery state, and the unit's job, gateway and
run (``_fixed``) are written into the statement, not bound; a positional key
(``p:0000000042``) is made by SQLite's ``printf`` from the position; a fingerprint is
bound as a ``bytearray`` (the same BLOB, no adaptation). What is left to bind is of the
types ``sqlite3`` binds directly. The same rows are stored, by the same upsert clauses
(``_sql``), in the same order; SQLite's own work is about what it was.

(Measured and not kept: the rows as one JSON text made into rows by ``json_each``: the
least GIL-held work, but SQLite's JSON parsing 2.6 times its inserts' instructions, and a
blast's claims wait for that work whatever thread does it. Numbered marks, the run's
values bound once a statement: Python 3.12 deprecates them with a sequence, and binding
them by name costs more than it saves. A positional key made in Python and bound, in
place of SQLite's ``printf``: SQLite's work 0.2 µs a row less, the key's formatting as much
more, timeit.)

SQLite only; PostgreSQL binds through ``_pg`` as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache, partial
from itertools import compress
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

from ..errors import ValidationError
from ..models import Outcome, OutcomeStatus
from . import _sql as sql
from ._db import Connection
from ._fingerprint import content_forms, fingerprint_columns, stored_form
from ._models import Entry, all_none, key_of

__all__ = [
    "Claims",
    "claim",
    "claim_columns",
    "joined",
    "settle",
    "settle_accepted",
    "statement_sizes",
    "supported",
]

_MAX_VARIABLES = 999  # SQLite's smallest compiled-in limit on parameters (before 3.32)
_POSITIONAL = "printf('p:%010d', {})"  # ``key_of(None, position)``, made by SQLite

_OUTCOME = attrgetter(
    "index", "to", "status", "code", "reason", "message_id", "request_id", "seqno"
)
_REF = attrgetter("ref")
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
    """Whether ``conn`` is SQLite (its multi-row upsert takes a repeated key, and the
    statements' ``printf``); PostgreSQL binds as before (``_pg``)."""
    return isinstance(conn, sqlite3.Connection)


def _upsert(statement: str) -> str:
    """``statement``'s ``ON CONFLICT …`` clause: one text for both roads."""
    return statement[statement.index(" ON CONFLICT ") :]


def _quoted(value: str | None) -> str:
    """An SQL literal for one of the ledger's own constants (a state, a delivery state)."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


@lru_cache(maxsize=256)
def _claim_statement(
    rows: int,
    keyed: bool,
    text: bool,
    seqno: bool,
    delivery: str | None,
    fixed: tuple[str, str, str],
) -> str:
    """The claim of ``rows`` rows, each bound as [key], position (its key made from it
    where there is none), number, fingerprint, [text], [seqno] (``_selected``), after the
    time, bound once; its job, gateway and run written in (``fixed``: ``_fixed``)."""
    marks = ["key", "position"] if keyed else ["position"]
    marks += ["recipient", "fingerprint"] + ["text"] * text + ["seqno"] * seqno
    value = {name: f"column{at}" for at, name in enumerate(marks, 1)}
    key = value["key"] if keyed else _POSITIONAL.format(value["position"])
    job, gateway, run = fixed
    row = (
        f"{job}, {key}, {gateway}, {value['recipient']}, {value['position']},"
        f" {value['fingerprint']}, {value.get('text', 'NULL')}, 'in_flight',"
        f" {value.get('seqno', 'NULL')}, {run}, 1, ?, {_quoted(delivery)}"
    )
    return (
        "INSERT INTO sends (job, key, gateway, recipient, position, fingerprint, text, state,"
        f" seqno, run, attempts, began_at, delivery) SELECT {row}"
        + _selected(len(marks), rows)
        + _upsert(sql.CLAIM)
    )


def _selected(marks: int, rows: int) -> str:
    """The ``FROM`` of a write's ``SELECT``: ``rows`` rows of ``marks`` parameters, read as
    ``column1`` … (SQLite's names for the columns of a ``VALUES``). Each value is bound
    once, though a row uses it twice (a position is its key too), the write's time once
    for all its rows (the ``SELECT``'s own ``?``, before these: ``_write``), and the rows
    SQLite steps through hold only what is bound, the statement's own values written in
    the ``SELECT``: a unit's claim 1.18-1.28 -> 1.09-1.20 µs a row, its settle 2.36-2.52
    -> 2.25-2.42 (50,000 SMS in units of 50, SQL alone, seven alternations, the time
    still bound a row) against a ``VALUES`` of whole rows. ``WHERE true``: SQLite's parser
    takes an ``ON CONFLICT`` after a ``SELECT`` for the join's, without one."""
    row = "(" + ", ".join(["?"] * marks) + ")"
    return f" FROM (VALUES {','.join([row] * rows)}) WHERE true"


def _fixed(job: int, gateway: str, run: int) -> tuple[str, str, str]:
    """A unit's job, gateway and run as SQL literals, written into its statements rather
    than bound again for every row: the row ids as numbers, the gateway quoted (one that
    holds a NUL, which no SQL text may, as its UTF-8 bytes cast to text: the same value).
    Three values fewer to bind a row, ~2,600 instructions a recipient of a blast's claim
    and settle (callgrind); a job's statements are prepared once each as before."""
    if "\x00" in gateway:
        literal = f"CAST(x'{gateway.encode().hex()}' AS TEXT)"
    else:
        literal = _quoted(gateway)
    return str(int.__index__(job)), literal, str(int.__index__(run))


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
    positions = list(map(itemgetter(0), entries))
    keys: list[str | None] | None = None
    if not all_none(refs):
        keys = [key_of(e.ref, e.position) for e in entries]
        if None in keys:
            raise ValidationError("a journalled ref must be a str or an int", field="ref")
    forms, texts = content_forms(list(map(itemgetter(3), entries)))
    numbers, seqnos = list(map(itemgetter(1), entries)), list(map(itemgetter(4), entries))
    unit = Claims(keys, positions, numbers, forms, texts, seqnos)
    claim_columns(conn, head, unit, salt, keep_text)


class Claims(NamedTuple):
    """A unit's claims as columns: ``keys`` (``None``: each keyed by its position),
    positions, numbers, contents as ``_fingerprint.content_forms`` gives them (``texts``:
    ``Sms`` texts, else canonical forms) and seqnos."""

    keys: Sequence[str | None] | None  # never a None: ``claim`` refuses those
    positions: Sequence[int]
    numbers: Sequence[str]
    forms: Sequence[str]
    texts: bool
    seqnos: Sequence[str | None]


def joined(units: Sequence[Claims]) -> Claims:
    """``units``, each keyed by its position and of one kind of content (``texts``), as
    one: their claims written together are the claims each writes (a trip's consecutive
    units of a job: ``Store.plan_and_begin_columns``)."""
    positions: list[int] = []
    numbers: list[str] = []
    forms: list[str] = []
    seqnos: list[str | None] = []
    for unit in units:  # each column extended in C
        positions += unit.positions
        numbers += unit.numbers
        forms += unit.forms
        seqnos += unit.seqnos
    return Claims(None, positions, numbers, forms, units[0].texts, seqnos)


def claim_columns(
    conn: Connection,
    head: tuple[int, str, int, float, str | None],
    unit: Claims,
    salt: bytes,
    keep_text: bool,
) -> None:
    """Write the claims of ``unit`` (``head`` as for ``claim``): what ``claim`` writes for
    the entries they are the columns of. The writer process claims a fresh job's unit
    straight from the columns it was sent, no ``Entry`` a recipient (``_writer``)."""
    job, gateway, run, now, delivery = head
    keys, positions, numbers, forms, texts, seqnos = unit
    count = len(positions)
    columns: list[Sequence[Any]] = [positions] if keys is None else [keys, positions]
    columns += [numbers, fingerprint_columns(numbers, forms, texts, salt)]
    if keep_text:
        columns.append(forms if texts else list(map(stored_form, forms)))
    has_seqno = seqnos.count(None) != count
    if has_seqno:
        columns.append(seqnos)
    _write(
        conn,
        [now],
        columns,
        partial(
            _claim_statement,
            keyed=keys is not None,
            text=keep_text,
            seqno=has_seqno,
            delivery=delivery,
            fixed=_fixed(job, gateway, run),
        ),
    )


def _write(
    conn: Connection, shared: list[Any], columns: list[Sequence[Any]], statement: Any
) -> None:
    """The rows whose columns are ``columns`` (each as long as the unit), by
    ``statement(count)`` statements of at most ``_MAX_VARIABLES`` marks: each binds the
    values its rows share (``shared``: the time, a code), then its rows (``_selected``).

    Their parameters are laid out row after row by a slice assignment a column (in C),
    not through a tuple a row: those were tracked objects made and dropped per recipient
    on the writer thread, two a recipient, that brought the young collections (which walk
    the event loop's objects too) about twice as often (a 50,000-SMS blast, 220 against
    the plain blast's 94 collections; see RESULTS.md, fourth pass (event loop))."""
    count, width = len(columns[0]), len(columns)
    if not count:
        return
    first = len(shared)
    flat: list[Any] = [*shared, *[None] * (count * width)]
    for at, column in enumerate(columns):
        flat[first + at :: width] = column
    sizes = statement_sizes(count, max(1, (_MAX_VARIABLES - first) // width))
    if len(sizes) == 1:  # a unit that fits: its parameters as laid out
        conn.execute(statement(count), flat)
        return
    start = first
    for rows in sizes:
        part = flat[start : start + rows * width]
        part[:0] = shared
        conn.execute(statement(rows), part)
        start += rows * width


def statement_sizes(count: int, per: int) -> list[int]:
    """How many rows each statement of a write of ``count`` rows takes, at most ``per``:
    a unit that fits takes one statement of its own size (a job's units repeat theirs);
    a longer write (``settle_accepted`` of units coalesced) takes statements of ``per``
    rows, then its remainder in powers of two. A statement of a new size is prepared
    first, ~4 µs a row of it (a settle's, timed), and a remainder of any size was a new
    size almost every write: a blast's settles spent 1,600 instructions a recipient
    preparing them (callgrind, 20,000 SMS); a few more statements cost less than that."""
    if count <= per:
        return [count]
    full, tail = divmod(count, per)
    powers = [1 << bit for bit in reversed(range(tail.bit_length())) if tail >> bit & 1]
    return [per] * full + powers


@lru_cache(maxsize=256)
def _settle_statement(
    rows: int,
    keyed: bool,
    bound: tuple[int, ...],
    state: str | None,
    fixed: tuple[str, str, str],
    code: bool,
) -> str:
    """The outcomes of ``rows`` rows, each bound as [key], the ``_OUTCOME`` columns in
    ``bound`` (the others ``NULL``, or the shared ``state``; a key made from the position
    where there is none) (``_selected``), after the shared code (``code``) and the time,
    bound once; its job, gateway and run written in (``fixed``: ``_fixed``)."""
    marks = int(keyed)
    column = {c: f"column{marks + at}" for at, c in enumerate(bound, 1)}
    if state is not None:
        column[2] = _quoted(state)
    if code:
        column[3] = "?"
    key = "column1" if keyed else _POSITIONAL.format(column.get(0, "NULL"))
    read = [column.get(c, "NULL") for c in range(len(_SETTLE_COLUMNS))]
    marks += len(bound)
    job, gateway, run = fixed
    row = f"{job}, {key}, {gateway}, {', '.join(read)}, {run}, ?"
    return (
        "INSERT INTO sends (job, key, gateway, "
        + ", ".join(_SETTLE_COLUMNS)
        + f", run, settled_at) SELECT {row}"
        + _selected(marks, rows)
        + _upsert(sql.SETTLE)
    )


def settle(
    conn: Connection, head: tuple[int, str, int, float], outcomes: Sequence[Outcome]
) -> None:
    """Write ``outcomes`` (``head``: job, gateway, run, now); one whose ref the ledger
    cannot key is left out, as ``_sql.settle_rows`` leaves it out."""
    if not outcomes:
        return
    columns: list[Sequence[Any]] = list(zip(*map(_OUTCOME, outcomes), strict=True))
    _settle_columns(conn, head, columns, list(map(_REF, outcomes)), None)


def settle_accepted(
    conn: Connection,
    head: tuple[int, str, int, float],
    accepted: tuple[Sequence[int], Sequence[str], Sequence[Any], Sequence[str | None], int | None],
) -> None:
    """Write a unit every recipient of which the gateway accepted with one ``code``
    (``accepted``: their indices, numbers, refs and message ids, and the code): the rows
    ``settle`` writes for their outcomes, from the columns as they came, no ``Outcome``
    made (``Store.settle_accepted``)."""
    indices, numbers, refs, message_ids, code = accepted
    count = len(indices)
    if not count:
        return
    nothing: tuple[None, ...] = (None,) * count
    statuses = (OutcomeStatus.ACCEPTED,) * count
    columns = [indices, numbers, statuses, (code,) * count, nothing, message_ids, nothing, nothing]
    _settle_columns(conn, head, columns, list(refs), code)


def _settle_columns(
    conn: Connection,
    head: tuple[int, str, int, float],
    columns: list[Sequence[Any]],
    refs: list[Any],
    one_code: int | None,
) -> None:
    """Write the rows whose ``_OUTCOME`` columns are ``columns`` (and whose refs are
    ``refs``): what ``settle`` and ``settle_accepted`` share, so both write the same rows.
    ``one_code``: every row's code (a unit accepted whole), bound once a statement."""
    job, gateway, run, now = head
    keyed = not all_none(refs)
    if keyed:
        found = [key_of(ref, index) for ref, index in zip(refs, columns[0], strict=True)]
        if None in found:  # rare: a ref the ledger cannot key, left out
            kept = [key is not None for key in found]
            columns = [tuple(compress(column, kept)) for column in columns]
            found = list(compress(found, kept))
        keys: Sequence[Any] = found
    count = len(columns[0])
    if not count:
        return
    states = set(columns[2])
    state = str(states.pop()) if len(states) == 1 else None
    if state is None:  # mixed: each as the plain str it is (a StrEnum binds at a cost)
        columns[2] = tuple(map(str, columns[2]))
    bound = tuple(
        c
        for c in range(len(_SETTLE_COLUMNS))
        if (c == 2 and state is None)
        or (c == 3 and one_code is None and columns[c].count(None) != count)
        or (c not in (2, 3) and columns[c].count(None) != count)
    )
    picked = [keys] if keyed else []
    picked += [columns[c] for c in bound]
    fixed = _fixed(job, gateway, run)
    statement = partial(
        _settle_statement,
        keyed=keyed,
        bound=bound,
        state=state,
        fixed=fixed,
        code=one_code is not None,
    )
    _write(conn, [now] if one_code is None else [one_code, now], picked, statement)
