"""What the SQLite ledger's rows cost per recipient, by table shape: a model of the store's
two writes (claim before the request, settle after), SQL and row building only, no
threads, no runner. It decides whether a schema change pays before anyone writes it.

- ``now``: the schema as it is: a claim row per recipient in ``sends`` (``sql.CLAIM``),
  then its outcome upserted over it (``sql.SETTLE``);
- ``unit``: one claim row per unit in a ``units`` table (its keys, positions, numbers and
  fingerprints packed in one BLOB), then one insert per recipient of its final row into
  ``sends`` (every column, as resume and reports read it), the unit row deleted;
- ``unit-narrow``: as ``unit``, but the per-recipient row keeps only what differs between a
  unit's recipients (key, number, position, fingerprint, outcome, code, reason, ids,
  seqno, the unit); gateway, run, began and settled times stay in the unit row, marked
  settled. A model table: every query reading ``sends`` would have to join ``units``.
- ``unit-packed``: no per-recipient row at all but a narrow one for each message id (so a
  delivery report still finds its send): the unit row gets its outcomes packed at settle.
  A model too: records, summaries and resume would unpack units.

Each stage is CPU time (``process_time``) per recipient, rounds interleaved, ten units per
transaction (a trip of the group commit), units of 50.

    .venv/bin/python benchmarks/ledger_shapes.py [--recipients 30000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from messaging_async.ledger import _sql as sql
from messaging_async.ledger._fingerprint import fingerprint
from messaging_async.ledger._models import key_of
from messaging_async.ledger._schema import connect, migrate

UNIT, PER_TRIP, JOB, RUN, SALT = 50, 10, 1, 7, b"0123456789abcdef"

UNITS = (
    "CREATE TABLE units (job INTEGER NOT NULL, unit INTEGER NOT NULL, gateway TEXT NOT NULL,"
    " run INTEGER NOT NULL, began_at REAL NOT NULL, settled_at REAL, claims BLOB,"
    " PRIMARY KEY (job, unit)) WITHOUT ROWID"
)
NARROW = (
    "CREATE TABLE outcomes (job INTEGER NOT NULL, key TEXT NOT NULL, unit INTEGER NOT NULL,"
    " recipient TEXT NOT NULL, position INTEGER, fingerprint BLOB, state TEXT NOT NULL,"
    " code INTEGER, reason TEXT, message_id TEXT, request_id TEXT, seqno TEXT,"
    " PRIMARY KEY (job, key)) WITHOUT ROWID",
    "CREATE INDEX outcomes_by_message ON outcomes (message_id) WHERE message_id IS NOT NULL",
    "CREATE TABLE message_ids (message_id TEXT NOT NULL, job INTEGER NOT NULL,"
    " unit INTEGER NOT NULL, slot INTEGER NOT NULL, PRIMARY KEY (message_id, job, unit, slot))"
    " WITHOUT ROWID",
)
CLAIM_UNIT = (
    "INSERT INTO units (job, unit, gateway, run, began_at, claims) VALUES (?, ?, ?, ?, ?, ?)"
)
FINAL = (
    "INSERT INTO sends (job, key, gateway, recipient, position, fingerprint, state, code,"
    " reason, message_id, request_id, seqno, run, attempts, began_at, settled_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
    " ON CONFLICT (job, key) DO UPDATE SET state = excluded.state, code = excluded.code,"
    " reason = excluded.reason, message_id = excluded.message_id,"
    " fingerprint = excluded.fingerprint, request_id = excluded.request_id,"
    " seqno = excluded.seqno, run = excluded.run, attempts = sends.attempts + 1,"
    " settled_at = excluded.settled_at"
)
FINAL_NARROW = (
    "INSERT INTO outcomes (job, key, unit, recipient, position, fingerprint, state, code,"
    " reason, message_id, request_id, seqno) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

PACKED_IDS = "INSERT INTO message_ids (job, message_id, unit, slot) VALUES (?, ?, ?, ?)"

Recipient = tuple[int, str, str]  # position, number, text
Claimed = tuple[list[str], list[bytes], float]  # keys, fingerprints, began


def units(total: int) -> list[list[Recipient]]:
    people = [(n, f"6012{n:07d}", f"Hi {n}, promo code {n}") for n in range(total)]
    return [people[start : start + UNIT] for start in range(0, total, UNIT)]


def claim_now(conn: sqlite3.Connection, number: int, unit: list[Recipient]) -> Claimed:
    now = time.time()
    keys = [f"p:{n:010d}" for n, _, _ in unit]
    rows = [
        (JOB, key, "isms", to, n, fingerprint(to, text, SALT), None, None, RUN, now, None)
        for key, (n, to, text) in zip(keys, unit, strict=True)
    ]
    sql.insert_rows(conn, sql.CLAIM, rows)
    return keys, [], now


def settle_now(conn: sqlite3.Connection, number: int, unit: list[Recipient], c: Claimed) -> None:
    now = time.time()
    rows = [
        (JOB, key, "isms", to, n, "accepted", 2000, None, f"m{n}", None, None, RUN, now)
        for key, (n, to, _) in zip(c[0], unit, strict=True)
    ]
    sql.insert_rows(conn, sql.SETTLE, rows)


def claim_unit(conn: sqlite3.Connection, number: int, unit: list[Recipient]) -> Claimed:
    now = time.time()
    keys = [key_of(None, n) or "" for n, _, _ in unit]
    prints = [fingerprint(to, text, SALT) for _, to, text in unit]
    packed = "\x1f".join(
        [*keys, *(str(n) for n, _, _ in unit), *(to for _, to, _ in unit)]
    ).encode() + b"".join(prints)  # resume reads it back: keys, positions, numbers, prints
    conn.execute(CLAIM_UNIT, (JOB, number, "isms", RUN, now, packed))
    return keys, prints, now


def settle_unit(conn: sqlite3.Connection, number: int, unit: list[Recipient], c: Claimed) -> None:
    now, (keys, prints, began) = time.time(), c
    rows = [
        (JOB, key, "isms", to, n, fp, "accepted", 2000, None, f"m{n}", None, None, RUN, began, now)
        for key, fp, (n, to, _) in zip(keys, prints, unit, strict=True)
    ]
    sql.insert_rows(conn, FINAL, rows)
    conn.execute("DELETE FROM units WHERE job = ? AND unit = ?", (JOB, number))


def settle_narrow(conn: sqlite3.Connection, number: int, unit: list[Recipient], c: Claimed) -> None:
    keys, prints, _ = c
    rows = [
        (JOB, key, number, to, n, fp, "accepted", 2000, None, f"m{n}", None, None)
        for key, fp, (n, to, _) in zip(keys, prints, unit, strict=True)
    ]
    sql.insert_rows(conn, FINAL_NARROW, rows)
    conn.execute(
        "UPDATE units SET settled_at = ?, claims = NULL WHERE job = ? AND unit = ?",
        (time.time(), JOB, number),
    )


def settle_packed(conn: sqlite3.Connection, number: int, unit: list[Recipient], c: Claimed) -> None:
    codes = [("accepted", 2000, None, f"m{n}", None, None) for n, _, _ in unit]
    packed = "\x1f".join(
        "\x1e".join("" if value is None else str(value) for value in row) for row in codes
    )
    conn.execute(
        "UPDATE units SET settled_at = ?, claims = claims || ? WHERE job = ? AND unit = ?",
        (time.time(), packed.encode(), JOB, number),
    )
    # (job, message id, ...): ``insert_rows`` reads each row's second value as its key
    ids = [(JOB, row[3], number, slot) for slot, row in enumerate(codes) if row[3] is not None]
    sql.insert_rows(conn, PACKED_IDS, ids)


Claim = Callable[[sqlite3.Connection, int, list[Recipient]], Claimed]
Settle = Callable[[sqlite3.Connection, int, list[Recipient], Claimed], None]
SHAPES: dict[str, tuple[Claim, Settle]] = {
    "now": (claim_now, settle_now),
    "unit": (claim_unit, settle_unit),
    "unit-narrow": (claim_unit, settle_narrow),
    "unit-packed": (claim_unit, settle_packed),
}


def measure(folder: Path, shape: str, work: list[list[Recipient]]) -> tuple[float, float]:
    """CPU µs per recipient of the claims and of the settles, trip by trip as the store
    runs them (a trip claims ten units; a later one settles them)."""
    conn = connect(str(folder / f"{shape}.db"))
    migrate(conn)
    for statement in (UNITS, *NARROW):
        conn.execute(statement)
    claim, settle = SHAPES[shape]
    claiming = settling = 0.0
    for first in range(0, len(work), PER_TRIP):
        trip = list(enumerate(work[first : first + PER_TRIP], start=first))
        began = time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        claimed = [claim(conn, number, unit) for number, unit in trip]
        conn.execute("COMMIT")
        middle = time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        for (number, unit), c in zip(trip, claimed, strict=True):
            settle(conn, number, unit, c)
        conn.execute("COMMIT")
        claiming, settling = claiming + middle - began, settling + time.process_time() - middle
    conn.close()
    total = sum(len(unit) for unit in work)
    return claiming / total * 1e6, settling / total * 1e6


def main(total: int, rounds: int) -> None:
    work = units(total)
    figures: dict[str, list[tuple[float, float]]] = {shape: [] for shape in SHAPES}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(rounds):
            for shape in SHAPES:
                place = Path(folder) / str(round_)
                place.mkdir(exist_ok=True)
                figures[shape].append(measure(place, shape, work))
    print(f"{total:,} recipients, units of {UNIT}, {rounds} rounds; CPU µs per recipient")
    print(f"{'shape':12} {'claim':>11} {'settle':>11} {'total':>11}")
    for shape, runs in figures.items():
        claims, settles = [c for c, _ in runs], [s for _, s in runs]
        sums = [c + s for c, s in runs]
        print(
            f"{shape:12} {min(claims):5.2f}-{max(claims):<5.2f} "
            f"{min(settles):5.2f}-{max(settles):<5.2f} {min(sums):5.2f}-{max(sums):<5.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=4)
    options = parser.parse_args()
    main(options.recipients, options.rounds)
