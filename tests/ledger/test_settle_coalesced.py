"""Units accepted whole whose answers come together are committed together (one
``settle_accepted`` call, ``_accepted_settles``): the same rows as a unit at a time, the
run returns only once all are committed, and a call that fails leaves only its failing
unit in flight."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest

from messaging_async import Sms, SqliteLedger
from messaging_async.testing import FakeGateway

from .conftest import Clock, sends_rows
from .test_lean_rows import _ledger

pytestmark = pytest.mark.anyio

COUNT = 600  # 12 units of 50


class _Slow(SqliteLedger):
    """Notes each ``settle_accepted`` call's recipients; each call takes a while, so the
    units answered meanwhile wait for the next; ``failing``: a position whose call fails."""

    calls: list[list[int]]
    failing: int | None = None

    async def settle_accepted(self, job: str, indices: Sequence[int], *columns: Any) -> None:
        self.calls.append(list(indices))
        await anyio.sleep(0.02)
        if self.failing is not None and self.failing in indices:
            raise RuntimeError("the disk is full, say")
        await super().settle_accepted(job, indices, *columns)


def _batch() -> list[Sms]:
    return [
        Sms(to=f"6012{n:07d}", text=f"hello {n}", ref=f"r{n}" if n % 2 else None)
        for n in range(COUNT)
    ]


def _rows(path: Path) -> list[tuple[Any, ...]]:
    """The whole ``sends`` table, each message id replaced by whether it is the one the
    report gave that recipient (the sandbox numbers its ids in the order requests come)."""
    with closing(sqlite3.connect(path)) as conn:
        names = [row[1] for row in conn.execute("PRAGMA table_info(sends)")]
    at, position = 2 * names.index("message_id"), 2 * names.index("position")
    rows = sends_rows(path)
    assert [row[at] for row in rows] == [_IDS[path][row[position]] for row in rows]
    return [(*row[:at], *row[at + 1 :]) for row in rows]


_IDS: dict[Path, list[str | None]] = {}


async def _blast(path: Path, *, compact: bool, failing: int | None = None) -> list[list[int]]:
    ledger = _ledger(path, Clock(), _Slow)
    assert isinstance(ledger, _Slow)
    ledger.calls, ledger.failing = [], failing
    if not compact:  # a unit's outcomes settled a unit at a time, as without the method
        ledger.settle_accepted = None  # type: ignore[assignment,method-assign]
    fake = FakeGateway()
    async with ledger, fake.isms_client(ledger=ledger, max_concurrency=8) as isms:
        report = await isms.send_sms_bulk(_batch(), job="a")
        assert report.all_accepted
        _IDS[path] = [outcome.message_id for outcome in report.outcomes]
        # returned: every unit's commit is in, as another process would read it
        with closing(sqlite3.connect(path)) as conn:
            states = dict(conn.execute("SELECT position, state FROM sends"))
    assert len(states) == COUNT
    unsettled = {p for p, state in states.items() if state != "accepted"}
    if failing is None:
        assert not unsettled
    else:
        unit = failing // 50 * 50
        assert unsettled == set(range(unit, unit + 50))
        assert {states[p] for p in unsettled} == {"in_flight"}
    return ledger.calls


async def test_units_answered_together_are_committed_together_as_the_same_rows(
    tmp_path: Path,
) -> None:
    calls = await _blast(tmp_path / "together.db", compact=True)
    await _blast(tmp_path / "alone.db", compact=False)
    assert sorted(i for call in calls for i in call) == list(range(COUNT))
    assert len(calls) < COUNT // 50  # some calls carried several units
    assert max(map(len, calls)) > 50
    together, alone = _rows(tmp_path / "together.db"), _rows(tmp_path / "alone.db")
    assert len(together) == COUNT
    assert together == alone


async def test_a_failing_call_is_tried_a_unit_at_a_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The unit at positions 300-349 cannot be recorded: it alone stays in flight (a run
    again reads it as a crash's), the units it came with are recorded, and it is logged."""
    with caplog.at_level(logging.ERROR, logger="messaging_async.ledger"):
        calls = await _blast(tmp_path / "l.db", compact=True, failing=320)
    assert any(len(call) > 50 and 320 in call for call in calls)  # it came with others
    assert [r.getMessage() for r in caplog.records] == [
        "the ledger could not record a unit's outcomes"
    ]


async def test_a_cancelled_blast_still_commits_every_answer_that_came_back(tmp_path: Path) -> None:
    """Cancelled while a unit's columns are being written (by a store whose call does not
    shield itself): that call, and every unit handed over, is committed all the same."""
    path = tmp_path / "l.db"
    ledger = _ledger(path, Clock(), _Slow)
    assert isinstance(ledger, _Slow)
    ledger.calls = []
    accepted: list[int] = []
    fake = FakeGateway()
    with anyio.CancelScope() as scope:

        class _Cancelling(_Slow):
            async def settle_accepted(self, job: str, indices: Sequence[int], *c: Any) -> None:
                if len(self.calls) == 1:  # the second call: cancelled while it sleeps
                    scope.cancel()
                await super().settle_accepted(job, indices, *c)

        ledger.__class__ = _Cancelling
        async with ledger, fake.isms_client(ledger=ledger, max_concurrency=8) as isms:
            await isms.send_sms_bulk(
                _batch(),
                job="a",
                on_outcome=lambda o: accepted.append(o.index) if o.status == "accepted" else None,
            )
    assert scope.cancel_called
    assert len(ledger.calls) >= 2
    assert len(accepted) >= 100  # the answers of the units of both calls, at least
    with closing(sqlite3.connect(path)) as conn:
        states = dict(conn.execute("SELECT position, state FROM sends"))
    assert {states[p] for p in accepted} == {"accepted"}
