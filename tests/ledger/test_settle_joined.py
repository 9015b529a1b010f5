"""A coalesced ``settle_accepted`` call's columns (``_accepted_settles.Joined``): read as
the joined tuple would be, and, for the writer process, joined only as the call is
pickled, not kept while its trip is under way."""

from __future__ import annotations

import gc
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest

from messaging_async import SqliteLedger
from messaging_async._accepted_settles import AcceptedSettles, Joined
from messaging_async._outcomes_seq import compact_accepted
from messaging_async.ledger._models import all_none

from .conftest import Clock, sms_entries

PARTS = ((1, 2, 3), (), (4, None, 5), (None,))
WHOLE = (1, 2, 3, 4, None, 5, None)


def test_a_joined_column_reads_as_its_joined_tuple() -> None:
    joined = Joined(PARTS)
    assert len(joined) == len(WHOLE)
    assert list(joined) == list(WHOLE)
    assert tuple(joined) == WHOLE
    assert [joined[i] for i in range(-len(WHOLE), len(WHOLE))] == [*WHOLE, *WHOLE]
    assert joined[2:5] == WHOLE[2:5]
    assert joined[::-2] == WHOLE[::-2]
    with pytest.raises(IndexError):
        joined[len(WHOLE)]
    assert joined.count(None) == 2
    assert joined.count(4) == 1
    assert joined.index(5) == WHOLE.index(5)
    assert 3 in joined
    assert 7 not in joined
    assert list(reversed(joined)) == list(reversed(WHOLE))
    assert not all_none(joined)
    assert all_none(Joined(((None,), (None, None))))
    assert len(Joined(())) == 0
    assert repr(Joined(((1,), ("a",)))) == "Joined([1, 'a'])"


def _units(*sizes: int) -> list[Any]:
    """Accepted units (``compact_accepted``) of consecutive positions."""
    units, start = [], 0
    for size in sizes:
        entries = sms_entries(size, start=start)
        ids = tuple(f"id{entry.position}" for entry in entries)
        recipients = [(entry.position, entry.to, entry.ref) for entry in entries]
        units.append(compact_accepted("isms", recipients, ids, 2000, ""))
        start += size
    return units


@pytest.mark.anyio
@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_a_coalesced_call_writes_its_units_rows(
    tmp_path: Path, clock: Clock, writer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Units handed over while a call is under way go in one call (``Joined`` columns):
    each row accepted with its own message id. With the writer process, nothing holds a
    joined column (a list or tuple of 47 values, the ids or numbers) while the call's trip
    waits for its answer: the frame is pickled, its ops let go."""
    path = tmp_path / "l.db"
    units = _units(3, 23, 24)
    async with SqliteLedger(path, clock=clock, writer=writer) as ledger:  # type: ignore[arg-type]
        await ledger.open_job("j", gateway="isms")
        await ledger.begin_unit("j", sms_entries(50))
        kept: list[int] = []
        if ledger._writer is not None:
            request = ledger._writer.request

            async def looking(message: object, **options: Any) -> Any:
                joined = {"id10", "60120000010"}
                kept.extend(
                    len(o)
                    for o in gc.get_objects()
                    if type(o) in (list, tuple)
                    and len(o) == 47
                    and any(type(v) is str and v in joined for v in o)
                )
                return await request(message, **options)

            monkeypatch.setattr(ledger._writer, "request", looking)
        calls: list[int] = []
        settle = ledger.settle_accepted
        handed = anyio.Event()

        async def counted(job: str, indices: Any, *columns: Any) -> None:
            calls.append(len(indices))
            if len(calls) == 1:
                await handed.wait()  # the first call under way until the others are in
            await settle(job, indices, *columns)

        settles = AcceptedSettles(counted, "j")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(settles.add, units[0])
            await anyio.wait_all_tasks_blocked()
            for unit in units[1:]:
                await settles.add(unit)  # handed over: returns at once
            handed.set()
        await ledger.close_job("j")
    assert calls == [3, 47]  # the first alone; the two handed over meanwhile together
    assert kept == []
    with closing(sqlite3.connect(path)) as conn:
        rows = list(conn.execute("SELECT position, state, message_id FROM sends ORDER BY 1"))
    assert rows == [(n, "accepted", f"id{n}") for n in range(50)]
