"""A resumed job's recipients the ledger decided are kept compact in the report (issue 17,
the ledger's fourth pass): ``Decided`` runs of recorded rows, built as ``Outcome`` objects
(``from_ledger``) when read; equal, field by field, to the outcomes built at once before,
to those the usual road (``plan``) gives, and to those a hook and a stream see.
"""

from __future__ import annotations

import gc
import pickle
import sqlite3
from collections import Counter
from operator import attrgetter
from pathlib import Path
from typing import Any

import attrs
import pytest

from messaging_async import Outcome, OutcomeStatus, Sms, SqliteLedger, _plan
from messaging_async._outcomes_seq import LEDGER, Outcomes, compact_decided, expand
from messaging_async._plan import Pending
from messaging_async.ledger._settled import Ahead

from .conftest import make_client
from .gateway import TestGateway

pytestmark = pytest.mark.anyio
_index_of = attrgetter("index")

# Rows as ``read_ahead`` reads them: position, fingerprint, state, code, reason,
# message_id, request_id, seqno; every kind of value each column can hold.
ROWS: list[tuple[Any, ...]] = [
    (0, b"f" * 16, "accepted", 2000, None, "id-0", None, None),
    (1, b"f" * 16, "rejected", -1008, "rejected: bad number", None, None, None),
    (2, b"f" * 16, "accepted", None, None, "wamid.1", "req-1", None),
    (5, b"f" * 16, "unknown", None, "timed out; it may have been sent", None, None, "sq5"),
    (6, b"f" * 16, "not_sent", None, "not sent: refused", None, None, None),
    (9, b"f" * 16, "accepted", 1701, "", "", "", "42"),
    (10, b"f" * 16, "rejected", 0, "é ß 中文 😀", "m", None, None),
]
NUMBERS = [f"6012{n:07d}" for n in range(len(ROWS))]


def as_main_built(number: str, row: tuple[Any, ...]) -> Outcome:
    """The outcome ``Ahead.take`` built for a row before this change, field by field."""
    position, _, state, code, reason, message_id, request_id, seqno = row
    return Outcome(
        to=number,
        status=OutcomeStatus(state),
        index=position,
        message_id=message_id,
        code=code,
        reason=reason,
        ref=None,
        request_id=request_id,
        seqno=seqno,
        error=None,
        raw=None,
        from_ledger=True,
    )


def fields(outcomes: Any) -> list[dict[str, Any]]:
    return [attrs.asdict(outcome, recurse=False) for outcome in outcomes]


def test_a_decided_run_reads_back_as_the_outcomes_built_at_once() -> None:
    unit = Ahead.compact(NUMBERS, ROWS)
    assert unit[0] == LEDGER
    expected = [as_main_built(n, row) for n, row in zip(NUMBERS, ROWS, strict=True)]
    built = expand(unit)
    assert fields(built) == fields(expected)
    assert [type(o.status) for o in built] == [OutcomeStatus] * len(ROWS)
    # one at a time, as ``take`` answers
    assert [expand(Ahead.compact([n], [row]))[0] for n, row in zip(NUMBERS, ROWS, strict=True)] == (
        expected
    )
    # no fingerprint kept, and nothing the cyclic GC keeps walking
    kept: list[object] = [value for column in unit[1:] for value in column]
    assert b"f" * 16 not in kept
    for _ in range(3):  # a tuple is untracked once what it holds is: a pass per level
        gc.collect()
    assert not gc.is_tracked(unit)


def test_a_decided_run_needs_a_value_per_recipient_in_each_column() -> None:
    with pytest.raises(ValueError, match="one value per recipient"):
        compact_decided((1, 2), ("a", "b"), ("accepted",), (None, None), *[(None, None)] * 4)


def test_a_report_of_decided_runs_reads_counts_and_compares_as_its_tuple() -> None:
    """Runs whose indices have gaps (items the usual road took between them), mixed with
    real outcomes: the sequence is the outcomes in input order, its counts theirs."""
    unit = Ahead.compact(NUMBERS, ROWS)
    between = [
        Outcome(to="60199999999", status=OutcomeStatus.ACCEPTED, index=i, message_id=f"x{i}")
        for i in (3, 4, 7, 8)
    ]
    later = Ahead.compact(["60120000011"], [(11, b"", "rejected", 1, "r", None, None, None)])
    report = Outcomes.collected(list(between), [later, unit])
    expected = sorted([*expand(unit), *between, *expand(later)], key=_index_of)
    assert [o.index for o in report] == list(range(12))
    assert fields(report) == fields(expected)
    assert report == tuple(expected)
    assert [report[i] for i in range(-12, 12)] == expected * 2
    assert report.status_counts() == Counter(o.status for o in expected)
    assert pickle.loads(pickle.dumps(report)) == report  # noqa: S301 - our own bytes


async def _finished_job(gateway: TestGateway, path: Path, count: int) -> list[Sms]:
    batch = [Sms(to=f"6012{i:07d}", text=f"hello {i}") for i in range(count)]
    async with (
        SqliteLedger(path) as ledger,
        make_client(transport=gateway.transport(), ledger=ledger) as client,
    ):
        report = await client.send_sms_bulk(batch, job="gc")
    assert report.all_accepted
    return batch


async def test_a_finished_jobs_rerun_report_holds_no_gc_tracked_object_per_recipient(
    gateway: TestGateway, tmp_path: Path
) -> None:
    batch = await _finished_job(gateway, tmp_path / "ledger.db", 1500)
    sent = len(gateway.sent)
    async with (
        SqliteLedger(tmp_path / "ledger.db") as ledger,
        make_client(transport=gateway.transport(), ledger=ledger) as client,
    ):
        report = await client.send_sms_bulk(batch, job="gc")
    assert len(gateway.sent) == sent  # nothing sent again
    assert report.counts["accepted"] == 1500
    for _ in range(3):  # a tuple is untracked once what it holds is: a pass per level
        gc.collect()
    holding = len(gc.get_objects())
    outcomes = list(report.outcomes)
    assert [o.index for o in outcomes] == list(range(1500))
    assert all(o.from_ledger and o.message_id for o in outcomes)
    del report, outcomes
    gc.collect()
    # The report, its sequence and a few lists: not one per recipient (nor per window).
    assert holding - len(gc.get_objects()) <= 8


async def test_a_hook_and_a_stream_see_the_outcomes_the_report_holds(
    gateway: TestGateway, tmp_path: Path
) -> None:
    """A resumed job's decided outcomes reach a hook and a stream at once, as outcomes,
    equal field by field to what the report builds when it is read; a changed item and
    the ones never sent go the usual way between them."""
    batch = await _finished_job(gateway, tmp_path / "ledger.db", 1200)
    batch[700] = Sms(to=batch[700].to, text="changed")
    batch += [Sms(to=f"6013{i:07d}", text="new") for i in range(30)]
    runs: list[list[Outcome]] = []
    for way in ("report", "hook", "stream"):
        with sqlite3.connect(tmp_path / "ledger.db") as a, sqlite3.connect(tmp_path / way) as b:
            a.backup(b)  # each way resumes the same history
        a.close()
        b.close()
        async with (
            SqliteLedger(tmp_path / way) as ledger,
            make_client(transport=gateway.transport(), ledger=ledger) as client,
        ):
            if way == "report":
                runs.append(list((await client.send_sms_bulk(batch, job="gc")).outcomes))
            elif way == "hook":
                hooked: list[Outcome] = []
                await client.send_sms_bulk(batch, job="gc", on_outcome=hooked.append)
                runs.append(sorted(hooked, key=_index_of))
            else:
                streamed = [o async for o in client.stream_sms_bulk(batch, job="gc")]
                runs.append(sorted(streamed, key=_index_of))
    report, hooked, streamed = runs
    assert [o.index for o in report] == list(range(1230))
    assert report[700].status is OutcomeStatus.REJECTED
    assert "input changed" in (report[700].reason or "")
    assert sum(o.from_ledger for o in report) == 1200  # the new ones sent
    for seen in (hooked, streamed):  # the ones sent: new ids from the gateway each way
        assert fields(seen[:1200]) == fields(report[:1200])
        assert [(o.index, o.status, o.from_ledger) for o in seen[1200:]] == [
            (o.index, o.status, o.from_ledger) for o in report[1200:]
        ]


async def test_a_journalled_unit_accepted_whole_builds_outcomes_only_for_a_hook(
    gateway: TestGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger settles a unit accepted whole from its compact form: no ``Outcome`` is
    built for it unless a hook wants them (then once, for the hook)."""
    built: list[int] = []

    def counted(unit: Any, raws: Any = None) -> list[Outcome]:
        built.append(len(unit[1]))
        return expand(unit, raws)

    monkeypatch.setattr(_plan, "expand", counted)
    batch = [Sms(to=f"6012{i:07d}", text=f"hello {i}") for i in range(120)]
    hooked: list[Outcome] = []
    async with (
        SqliteLedger(tmp_path / "ledger.db") as ledger,
        make_client(transport=gateway.transport(), ledger=ledger) as client,
    ):
        report = await client.send_sms_bulk(batch, job="quiet")
        quiet = list(built)
        await client.send_sms_bulk(batch[:70], job="hooked", on_outcome=hooked.append)
        summary = await ledger.summary("quiet")
    assert report.all_accepted
    assert summary.outcomes["accepted"] == 120
    assert quiet == []
    assert built == [50, 20]  # the hook's, once a unit
    assert sorted(o.index for o in hooked) == list(range(70))


class _Holding(SqliteLedger):
    """Notes how many of the runner's pendings are alive while a unit's outcomes wait
    for their commit."""

    alive: list[int]

    async def settle_accepted(self, job: str, *columns: Any) -> None:
        gc.collect()
        mine = {f"6019{i:07d}" for i in range(50)}  # another test's may linger
        self.alive.append(sum(type(o) is Pending and o.to in mine for o in gc.get_objects()))
        await super().settle_accepted(job, *columns)


async def test_a_units_pendings_are_let_go_before_its_outcomes_commit(
    gateway: TestGateway, tmp_path: Path
) -> None:
    """Its request is over: its pendings and its answer are not kept alive while the
    ledger commits (they would be moved to the GC's old generation, whose collections
    walk the whole heap)."""
    batch = [Sms(to=f"6019{i:07d}", text=f"hello {i}") for i in range(50)]
    ledger = _Holding(tmp_path / "ledger.db")
    ledger.alive = []
    async with ledger, make_client(transport=gateway.transport(), ledger=ledger) as client:
        report = await client.send_sms_bulk(batch, job="held")
    assert report.all_accepted
    assert ledger.alive == [0]
