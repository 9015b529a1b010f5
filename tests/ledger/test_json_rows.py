"""The JSON road (a unit's rows as one JSON text, made into rows by SQLite) writes exactly
the rows the VALUES road writes: the same sequences of claims, outcomes, resumes and keyed
sends on both, and the whole ``sends`` table compared, values and SQL types."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve

from messaging_async import OutcomeStatus, Sms, SqliteLedger
from messaging_async.ledger import Entry, _json_rows
from messaging_async.ledger._owner import Owner
from messaging_async.ledger._schema import connect, migrate
from messaging_async.models import Outcome

from .conftest import Clock, accepted, sms_entries

_SALT = bytes(range(16))

TRICKY = [
    'quote " and backslash \\ and slash /',
    "new\nline, tab\t, return\r, bell \x07, unit separator \x1f",
    "unicode: é ß 中文 😀 \u2028",
    "looks escaped: \\u0000 but is not",
    "",
    "a NUL \x00 inside",  # JSON cannot carry it to SQLite: the VALUES road writes its unit
]


def _ledger(path: Path, clock: Clock, **options: Any) -> SqliteLedger:
    """A ledger whose salt is fixed, so both roads' fingerprints are comparable."""
    conn = connect(str(path))
    migrate(conn)
    conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('salt', ?)", (_SALT,))
    conn.close()
    return SqliteLedger(path, clock=clock, **options)


def _dump(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(sends)")]
    typed = ", ".join(f"{c}, typeof({c})" for c in columns)
    rows = conn.execute(f"SELECT {typed} FROM sends ORDER BY job, key").fetchall()  # noqa: S608
    conn.close()
    return rows


def _rejected(entry: Entry, reason: str, code: int | None = None) -> Outcome:
    return evolve(entry.outcome(OutcomeStatus.REJECTED, reason), code=code)


async def _scenario(path: Path, clock: Clock, *, json_rows: bool, **options: Any) -> None:
    """Claims and outcomes of every shape the runner and single sends write."""
    owner = Owner("host", 4_194_000, 1.0)
    async with _ledger(path, clock, **options) as ledger:
        assert ledger._open_store.json_rows is json_rows
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
        # refs, none repeated: a unit of keys written by the JSON road too
        more = [
            Entry(16 + i, f"6014{i:07d}", ref, Sms(to=f"6014{i:07d}", text="M"), f"w{i}")
            for i, ref in enumerate(["y", 8, None, "z"])
        ]
        plan = await ledger.plan_and_begin_unit("a", more)
        done = accepted(list(plan.send), prefix="n")
        done[:2] = [evolve(o, seqno=None, request_id=f"q{o.index}") for o in done[:2]]
        await ledger.settle_unit("a", done)
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
    await _scenario(tmp_path / "json.db", Clock(), json_rows=True, store_text=store_text)
    monkeypatch.setattr(_json_rows, "supported", lambda conn: False)
    await _scenario(tmp_path / "values.db", Clock(), json_rows=False, store_text=store_text)
    json_rows, values = _dump(tmp_path / "json.db"), _dump(tmp_path / "values.db")
    assert len(values) == 26
    assert json_rows == values


async def test_a_text_with_a_nul_is_stored_whole(tmp_path: Path) -> None:
    """SQLite's JSON functions end a text at ``\\u0000``; that unit goes the VALUES road."""
    async with _ledger(tmp_path / "l.db", Clock()) as ledger:
        await ledger.open_job("a", gateway="isms")
        entries = sms_entries(2)
        await ledger.plan_and_begin_unit("a", entries)
        await ledger.settle_unit("a", [_rejected(entries[0], "a\x00b"), _rejected(entries[1], "c")])
    reasons = [
        row[0]
        for row in sqlite3.connect(tmp_path / "l.db").execute(
            "SELECT reason FROM sends ORDER BY key"
        )
    ]
    assert reasons == ["a\x00b", "c"]


def test_supported_only_on_sqlite_with_json(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "l.db"))
    assert _json_rows.supported(conn)

    class NoJson(sqlite3.Connection):
        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            if "json_each" in sql:
                raise sqlite3.OperationalError("no such table: json_each")
            return super().execute(sql, parameters)

    assert not _json_rows.supported(sqlite3.connect(":memory:", factory=NoJson))
    assert not _json_rows.supported(object())  # type: ignore[arg-type]  # PostgreSQL's
