"""A bulk report costs the cyclic GC nothing per accepted recipient (issue 17, fourth pass).

Each iSMS unit accepted whole is kept as tuples of ints and strs and the answer's text,
which CPython untracks; the ``Outcome`` objects are built when the report is read, and
they are the outcomes a hook, a stream or main's report see for the same run.
"""

from __future__ import annotations

import gc
import pickle
import sys
from operator import attrgetter
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
import respx

from messaging_async import IsmsClient, Outcome, Outcomes, Sms, SqliteLedger

from .conftest import JSON_URL, all_accepted, make_client
from .gateway import TestGateway

pytestmark = pytest.mark.anyio
_index_of = attrgetter("index")


def messages(count: int) -> list[Any]:
    """GSM and Unicode interleaved (units of each encoding hold every other index) and
    an invalid item now and then: units whose recipients are not consecutive."""
    batch: list[Any] = []
    for i in range(count):
        if i % 97 == 5:
            batch.append(Sms(to="not a number", text="x", ref=i))
        elif i % 2:
            batch.append(Sms(to=f"6012{i:07d}", text=f"hello {i}", ref=i))
        else:
            batch.append(Sms(to=f"6013{i:07d}", text=f"h\u00e9llo {i}", ref=str(i)))
    return batch


async def test_an_accepted_report_holds_no_gc_tracked_object_per_recipient(
    client: IsmsClient,
) -> None:
    batch = [Sms(to=f"6012{i:07d}", text="hello", ref=i) for i in range(1000)]
    report = await client.send_sms_bulk(batch)
    assert report.all_accepted
    assert isinstance(report.outcomes, Outcomes)  # the public name of the sequence's type
    for _ in range(3):  # a tuple is untracked once what it holds is: a pass per level
        gc.collect()
    holding = len(gc.get_objects())
    del report
    gc.collect()
    # The report itself, its sequence and a few lists: not one per recipient, nor per unit.
    assert holding - len(gc.get_objects()) <= 8


async def test_a_journalled_report_holds_no_gc_tracked_object_per_recipient(
    gateway: TestGateway, tmp_path: Path
) -> None:
    """The ledger is handed real outcomes; the report still keeps the compact units, equal
    to what a run without a ledger reports."""
    batch = [Sms(to=f"6012{i:07d}", text="hello", ref=i) for i in range(1000)]
    async with (
        SqliteLedger(tmp_path / "ledger.db") as ledger,
        make_client(transport=gateway.transport(), ledger=ledger) as client,
    ):
        report = await client.send_sms_bulk(batch, job="gc")
        summary = await ledger.summary("gc")
    assert report.all_accepted
    assert summary.outcomes["accepted"] == 1000
    for _ in range(3):
        gc.collect()
    holding = len(gc.get_objects())
    outcomes = list(report.outcomes)
    assert [o.index for o in outcomes] == list(range(1000))
    assert all(o.message_id for o in outcomes)
    assert not any(o.from_ledger for o in outcomes)
    del report, outcomes
    gc.collect()
    assert holding - len(gc.get_objects()) <= 8


async def test_the_outcomes_read_from_a_report_are_those_a_hook_and_a_stream_see() -> None:
    """The same run three ways (the gateway's ids depend only on the request): the report
    built from compact units equals, field by field, the outcomes built at once."""
    batch = messages(700)
    with respx.mock(assert_all_called=False) as mock:
        mock.post(JSON_URL).mock(side_effect=all_accepted)
        async with make_client(max_concurrency=3) as client:
            report = await client.send_sms_bulk(batch)
            hooked: list[Outcome] = []
            with_hook = await client.send_sms_bulk(batch, on_outcome=hooked.append)
            streamed = [outcome async for outcome in client.stream_sms_bulk(batch)]
    expected = sorted(hooked, key=_index_of)
    assert report.counts == {"accepted": 692, "rejected": 8, "not_sent": 0, "unknown": 0}
    for seen in (list(report.outcomes), list(with_hook.outcomes), sorted(streamed, key=_index_of)):
        assert seen == expected
        for one, other in zip(seen, expected, strict=True):
            assert attrs.asdict(one, recurse=False) == attrs.asdict(other, recurse=False)
    assert report == with_hook
    assert [outcome.index for outcome in report.outcomes] == list(range(700))
    assert {outcome.raw["sms_id"] for outcome in report.accepted} >= {"id-0", "id-49"}


async def test_a_report_pickles_and_reads_back_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """A report kept compact goes through pickle whole, and reads back in another process
    (the package's import registers every gateway's reader)."""
    batch = [Sms(to=f"6012{i:07d}", text="hello", ref=i) for i in range(120)]
    with respx.mock(assert_all_called=False) as mock:
        mock.post(JSON_URL).mock(side_effect=all_accepted)
        async with make_client() as client:
            report = await client.send_sms_bulk(batch)
    assert pickle.loads(pickle.dumps(report)) == report  # noqa: S301 - our own bytes
    saved = tmp_path / "report.pickle"
    saved.write_bytes(pickle.dumps(report))
    read = (
        "import pickle, sys; report = pickle.loads(open(sys.argv[1], 'rb').read()); "
        "print(len(report), report.outcomes[-1].raw['sms_id'], report.outcomes[-1].ref)"
    )
    finished = await anyio.run_process([sys.executable, "-c", read, str(saved)], check=True)
    shown = finished.stdout.decode().split()
    assert shown == ["120", report.outcomes[-1].raw["sms_id"], "119"]
