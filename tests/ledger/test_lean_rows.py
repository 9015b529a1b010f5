"""The lean road (only what differs per row bound, the rest written into the statement or
made by SQLite) writes exactly the rows the one-value-a-parameter road writes: the same
sequences of claims, outcomes, resumes and keyed sends on both, and the whole ``sends``
table compared, values and SQL types."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve

from messaging_async import OutcomeStatus, Sms, SqliteLedger
from messaging_async.ledger import Entry, _lean_rows
from messaging_async.ledger._owner import Owner
from messaging_async.ledger._schema import connect, migrate
from messaging_async.models import Outcome
from messaging_async.testing import FakeGateway, Fault

from .conftest import Clock, accepted, sends_rows, sms_entries

_SALT = bytes(range(16))

TRICKY = [
    'quote " and backslash \\ and slash /',
    "new\nline, tab\t, return\r, bell \x07, unit separator \x1f",
    "unicode: é ß 中文 😀 \u2028",
    "looks escaped: \\u0000 but is not",
    "",
    "a NUL \x00 inside",
]


def _ledger(
    path: Path, clock: Clock, kind: type[SqliteLedger] = SqliteLedger, **options: Any
) -> SqliteLedger:
    """A ledger whose salt is fixed, so both roads' fingerprints are comparable."""
    conn = connect(str(path))
    migrate(conn)
    conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('salt', ?)", (_SALT,))
    conn.close()
    return kind(path, clock=clock, **options)


def _rejected(entry: Entry, reason: str, code: int | None = None) -> Outcome:
    return evolve(entry.outcome(OutcomeStatus.REJECTED, reason), code=code)


async def _scenario(path: Path, clock: Clock, *, lean_rows: bool, **options: Any) -> None:
    """Claims and outcomes of every shape the runner and single sends write."""
    owner = Owner("host", 4_194_000, 1.0)
    async with _ledger(path, clock, **options) as ledger:
        assert ledger._open_store.lean_rows is lean_rows
        await ledger.open_job("a", gateway="isms", owner=owner)
        first = sms_entries(10)
        plan = await ledger.plan_and_begin_unit("a", first)
        assert len(plan.send) == 10
        clock.advance(1.5)
        outcomes = accepted(first[:4])
        outcomes += [_rejected(e, t, 400) for e, t in zip(first[4:], TRICKY[:-1], strict=False)]
        outcomes.append(_rejected(sms_entries(1, start=50)[0], "never claimed"))
        await ledger.settle_unit("a", outcomes)
        # refs (str, int, repeated, not keyable), seqnos, a unit that asks for no reports
        refs: list[Any] = ["x", 7, "x", 2.5, None, 'ü " \\']
        keyed = [
            Entry(10 + i, f"6013{i:07d}", ref, Sms(to=f"6013{i:07d}", text=TRICKY[i]), f"q{i}")
            for i, ref in enumerate(refs)
        ]
        plan = await ledger.plan_and_begin_unit("a", keyed, expect_reports=False)
        clock.advance(0.25)
        await ledger.settle_unit("a", accepted(list(plan.send), prefix="k") + list(plan.outcomes))
        # refs, none repeated: a keyed unit on the lean road too
        more = [
            Entry(16 + i, f"6014{i:07d}", ref, Sms(to=f"6014{i:07d}", text="M"), f"w{i}")
            for i, ref in enumerate(["y", 8, None, "z"])
        ]
        plan = await ledger.plan_and_begin_unit("a", more)
        done = accepted(list(plan.send), prefix="n")
        done[:2] = [evolve(o, seqno=None, request_id=f"q{o.index}") for o in done[:2]]
        await ledger.settle_unit("a", done)
        # units accepted whole, settled from their columns (``settle_accepted``): refs of
        # each kind, and one the ledger cannot key (left out, as ``settle_unit`` leaves it)
        whole = [
            Entry(40 + i, f"6015{i:07d}", ref, Sms(to=f"6015{i:07d}", text="W"), None)
            for i, ref in enumerate(["u", 9, None, "v"])
        ]
        await ledger.plan_and_begin_unit("a", whole)
        clock.advance(0.5)
        indices = (*(e.position for e in whole), 45)
        numbers = (*(e.to for e in whole), "60150000099")
        ids = tuple(f"w{i}" for i in range(5))
        await ledger.settle_accepted(
            "a", indices, numbers, (*(e.ref for e in whole), 2.5), ids, 2000
        )
        plain = sms_entries(3, start=60)
        await ledger.plan_and_begin_unit("a", plain)
        numbers = tuple(e.to for e in plain)
        await ledger.settle_accepted(
            "a", (60, 61, 62), numbers, (None,) * 3, ("x", None, "z"), None
        )
        # claimed and never settled: left in flight by a run that dies
        await ledger.plan_and_begin_unit("a", sms_entries(5, start=20, text="T {n}"))
        await ledger.settle_unit("a", [_rejected(first[9], TRICKY[-1])])
        # a code SQLite cannot keep: refused on both roads, nothing written
        big = evolve(accepted(sms_entries(1, start=30))[0], code=2**70)
        with pytest.raises(OverflowError):
            await ledger.settle_unit("a", [big])
        await ledger.close_job("a")
        # a later run: resumes, resends, changed input, and the in-flight ones
        clock.advance(60)
        await ledger.open_job("a", gateway="isms", owner=Owner("host", 4_194_001, 2.0))
        again = sms_entries(10) + sms_entries(5, start=20, text="T {n}")
        again[5] = again[5]._replace(content=Sms(to=again[5].to, text="changed"))
        plan = await ledger.plan_and_begin_unit("a", again, resend_unknown=True)
        clock.advance(2)
        await ledger.settle_unit("a", accepted(list(plan.send), prefix="r"))
        await ledger.close_job("a")
        # a keyed single send
        entry = sms_entries(1, start=90)[0]
        await ledger.claim_key("otp:1", entry, gateway="isms", owner=owner)
        await ledger.settle_key("otp:1", accepted([entry])[0], owner=owner)


@pytest.mark.parametrize("store_text", [False, True])
async def test_both_roads_write_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_text: bool
) -> None:
    await _scenario(tmp_path / "lean.db", Clock(), lean_rows=True, store_text=store_text)
    monkeypatch.setattr(_lean_rows, "supported", lambda conn: False)
    await _scenario(tmp_path / "values.db", Clock(), lean_rows=False, store_text=store_text)
    lean_rows, values = sends_rows(tmp_path / "lean.db"), sends_rows(tmp_path / "values.db")
    assert len(values) == 34  # the ref 2.5's rejection included, under its own key
    assert lean_rows == values


def _batch() -> list[Sms]:
    """Refs of each kind, two encodings (units of each), an invalid item (a loose
    outcome, settled with the next unit)."""
    batch: list[Sms] = []
    for n in range(130):
        ref: object = f"r{n}" if n % 3 == 0 else n if n % 3 == 1 else None
        text = "hello" if n % 4 else "h\u00e9llo"
        batch.append(Sms(to="12" if n == 77 else f"6012{n:07d}", text=text, ref=ref))
    return batch


class _Counted(SqliteLedger):
    """Notes how many units were settled from their columns."""

    compact = 0

    async def settle_accepted(self, job: str, *columns: Any) -> None:
        self.compact += 1
        await super().settle_accepted(job, *columns)


@pytest.mark.parametrize("store_text", [False, True])
async def test_a_blast_settled_compact_writes_the_rows_its_outcomes_write(
    tmp_path: Path, store_text: bool
) -> None:
    """The same blast (units accepted whole; one that fails, settled from outcomes; an
    invalid item) with ``settle_accepted`` and without it (each unit's outcomes settled,
    as before it existed): the whole ``sends`` table the same."""
    ways = {}
    for way in ("compact", "outcomes"):
        fake = FakeGateway()
        fake.inject(Fault.SERVER_ERROR, endpoint="isms_send_json.php", times=1)
        path = tmp_path / f"{way}.db"
        ledger = _ledger(path, Clock(), _Counted, store_text=store_text)
        assert isinstance(ledger, _Counted)
        if way == "outcomes":
            ledger.settle_accepted = None  # type: ignore[assignment,method-assign]
        async with ledger, fake.isms_client(ledger=ledger, max_concurrency=1) as isms:
            report = await isms.send_sms_bulk(_batch(), job="a")
        ways[way] = (report.counts, sends_rows(path), ledger.compact)
    (counts, compact, used), (same_counts, outcomes, unused) = ways["compact"], ways["outcomes"]
    assert counts == same_counts
    assert counts == {"accepted": 79, "rejected": 1, "not_sent": 0, "unknown": 50}
    assert used == 2  # the units accepted whole
    assert unused == 0
    assert len(compact) == 130
    assert compact == outcomes


async def test_a_text_with_a_nul_is_stored_whole(tmp_path: Path) -> None:
    """A text is bound whole, NUL and all."""
    async with _ledger(tmp_path / "l.db", Clock()) as ledger:
        await ledger.open_job("a", gateway="isms")
        entries = sms_entries(2)
        await ledger.plan_and_begin_unit("a", entries)
        await ledger.settle_unit("a", [_rejected(entries[0], "a\x00b"), _rejected(entries[1], "c")])
    with closing(sqlite3.connect(tmp_path / "l.db")) as conn:
        reasons = [row[0] for row in conn.execute("SELECT reason FROM sends ORDER BY key")]
    assert reasons == ["a\x00b", "c"]


def test_lean_only_on_sqlite(tmp_path: Path) -> None:
    with closing(connect(str(tmp_path / "l.db"))) as conn:
        assert _lean_rows.supported(conn)
    assert not _lean_rows.supported(object())  # type: ignore[arg-type]  # PostgreSQL's


@pytest.mark.parametrize("count", [1, 50, 333])
async def test_units_longer_than_a_statement_are_split(tmp_path: Path, count: int) -> None:
    """999 parameters a statement at most (SQLite builds before 3.32): a long unit is
    written by several statements, every row of it."""
    async with _ledger(tmp_path / "l.db", Clock()) as ledger:
        conn = ledger._open_store.conn
        assert isinstance(conn, sqlite3.Connection)
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        await ledger.open_job("a", gateway="isms")
        entries = sms_entries(count, refs=True, seqnos=True)
        await ledger.plan_and_begin_unit("a", entries)
        outcomes = [evolve(o, request_id="r", reason=None) for o in accepted(entries)]
        outcomes[0] = evolve(outcomes[0], status=OutcomeStatus.REJECTED, reason="no")
        await ledger.settle_unit("a", outcomes)
        summary = await ledger.summary("a")
    assert summary.outcomes["accepted"] == count - 1
    assert summary.outcomes["rejected"] == 1


def test_a_long_write_takes_statements_of_few_sizes() -> None:
    """A unit that fits takes one statement of its size; a longer write (units settled
    together) takes full statements and its remainder in powers of two: every row
    written once, in order, and only ``per`` or a power of two as a statement's size (each
    new size is one more statement for SQLite to prepare)."""
    per = 111
    sizes_seen: set[int] = set()
    for count in range(1, 2_000):
        sizes = _lean_rows.statement_sizes(count, per)
        assert sum(sizes) == count
        assert all(0 < size <= per for size in sizes)
        if count <= per:
            assert sizes == [count]
        else:
            sizes_seen.update(sizes)
            assert len(sizes) <= count // per + 7
    assert sizes_seen == {per, 1, 2, 4, 8, 16, 32, 64}


def test_a_position_is_bound_once_though_it_is_the_key_too() -> None:
    """A row of a blast's unit binds only what differs per row, each value once: a claim
    its position (its key made from it), number and fingerprint; a settle of a unit
    accepted whole its position, number and message id; the time and the unit's one code
    once a statement (``_lean_rows._selected``)."""
    fixed = _lean_rows._fixed(1, "isms", 1)
    claim = _lean_rows._claim_statement(3, False, False, False, None, fixed)
    settle = _lean_rows._settle_statement(3, False, (0, 1, 5), "accepted", fixed, True)
    assert (claim.count("?"), settle.count("?")) == (1 + 3 * 3, 2 + 3 * 3)
    keyed = _lean_rows._claim_statement(3, True, True, True, None, fixed)
    assert keyed.count("?") == 1 + 3 * 6  # a key of its own, a text and a seqno kept


def test_a_unit_accepted_whole_binds_its_code_and_time_once() -> None:
    bound: list[tuple[str, list[Any]]] = []

    class Recording:
        def execute(self, statement: str, parameters: list[Any]) -> None:
            bound.append((statement, parameters))

    columns = ([0, 1, 2], ["n0", "n1", "n2"], [None] * 3, ["m0", "m1", "m2"], 2000)
    _lean_rows.settle_accepted(Recording(), (1, "isms", 1, 5.0), columns)  # type: ignore[arg-type]
    [(statement, parameters)] = bound
    assert parameters == [2000, 5.0, 0, "n0", "m0", 1, "n1", "m1", 2, "n2", "m2"]
    assert statement.count("?") == len(parameters)


async def _odd_gateway(path: Path, gateway: str) -> None:
    """A unit claimed, settled from outcomes and from columns, under ``gateway``."""
    async with _ledger(path, Clock()) as ledger:
        await ledger.open_job("a", gateway=gateway)
        entries = sms_entries(4, refs=True)
        await ledger.plan_and_begin_unit("a", entries)
        await ledger.settle_unit("a", accepted(entries[:2]))
        rest = entries[2:]
        numbers, refs = [e.to for e in rest], [e.ref for e in rest]
        await ledger.settle_accepted("a", [2, 3], numbers, refs, ["x", "y"], 2000)


@pytest.mark.parametrize("gateway", ["it's", "nul \x00 in it", "ü \\ ' \" ;--"])
async def test_the_gateway_written_into_a_statement_is_the_one_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway: str
) -> None:
    """The lean road writes a unit's job, gateway and run into its statements (``_fixed``):
    whatever the gateway's name holds, the rows are the ones binding it writes."""
    await _odd_gateway(tmp_path / "lean.db", gateway)
    monkeypatch.setattr(_lean_rows, "supported", lambda conn: False)
    await _odd_gateway(tmp_path / "values.db", gateway)
    rows = sends_rows(tmp_path / "lean.db")
    assert [(row[4], row[5]) for row in rows] == [(gateway, "text")] * 4
    assert rows == sends_rows(tmp_path / "values.db")
