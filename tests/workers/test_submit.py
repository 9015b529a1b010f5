"""Submitting a blast (the recipients into the database, a Procrastinate task per slice),
its status, and cancelling it before any worker ran — no gateway involved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from messaging_async import Sms
from messaging_async.errors import ValidationError
from messaging_async.ledger import JobSummary
from messaging_async.workers import blast_status, cancel_blast, submit_blast
from messaging_async.workers._control import combine

pytestmark = pytest.mark.anyio

SECRET = "Your code is 551234"


def messages(count: int, *, fail_at: int | None = None) -> Iterator[Sms]:
    for n in range(count):
        if n == fail_at:
            raise RuntimeError("the input broke off")
        yield Sms(to=f"6012{n:07d}", text=f"{SECRET} #{n}")


def _tasks(dsn: str) -> list[tuple[str, dict[str, object]]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT status::text, args FROM procrastinate_jobs ORDER BY id"
        ).fetchall()
    return [(status, args) for status, args in rows]


def _staged(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT position FROM messaging_ledger.blast_inputs ORDER BY position"
        ).fetchall()
    return [int(position) for (position,) in rows]


async def test_a_blast_is_staged_in_slices_each_with_its_task(pg_dsn: str) -> None:
    blast = await submit_blast(pg_dsn, "promo", messages(2_500), slice_size=1_000)
    assert (blast.total, blast.slices, blast.submitted, blast.state) == (2_500, 3, True, "running")
    tasks = _tasks(pg_dsn)
    assert tasks == [("todo", {"blast": "promo", "slice": n}) for n in range(3)]
    assert SECRET not in repr(tasks)  # texts never travel in a task's arguments
    assert _staged(pg_dsn) == list(range(2_500))
    status = await blast_status(pg_dsn, "promo")
    assert status is not None
    assert status.slices == {"done": 0, "running": 0, "waiting": 3}
    assert status.summary.total == 0  # nothing sent yet


async def test_the_input_is_read_a_slice_at_a_time(pg_dsn: str) -> None:
    """Bounded memory: slices are staged while the input is still being read."""
    seen: list[int] = []

    def watched() -> Iterator[Sms]:
        for n, message in enumerate(messages(3_000)):
            if n == 2_500:
                seen.extend(_staged(pg_dsn))
            yield message

    await submit_blast(pg_dsn, "promo", watched(), slice_size=1_000)
    assert seen == list(range(2_000))


async def test_an_interrupted_submission_goes_on_where_it_stopped(pg_dsn: str) -> None:
    with pytest.raises(RuntimeError, match="broke off"):
        await submit_blast(pg_dsn, "promo", messages(2_500, fail_at=1_500), slice_size=1_000)
    assert _staged(pg_dsn) == list(range(1_000))  # whole slices only
    blast = await submit_blast(pg_dsn, "promo", messages(2_500), slice_size=1_000)
    assert (blast.total, blast.slices) == (2_500, 3)
    assert _staged(pg_dsn) == list(range(2_500))
    assert [args["slice"] for _, args in _tasks(pg_dsn)] == [0, 1, 2]
    again = await submit_blast(pg_dsn, "promo", messages(2_500), slice_size=1_000)
    assert again == blast  # submitted whole: nothing more
    assert len(_tasks(pg_dsn)) == 3


async def test_a_blast_stays_on_its_gateway(pg_dsn: str) -> None:
    await submit_blast(pg_dsn, "promo", messages(3))
    with pytest.raises(Exception, match="submitted for isms"):
        await submit_blast(pg_dsn, "promo", messages(3), gateway="smscommy")
    with pytest.raises(ValidationError):
        await submit_blast(pg_dsn, "promo", messages(3), gateway="carrier-pigeon")


async def test_cancelling_before_any_worker_settles_every_recipient_as_not_sent(
    pg_dsn: str,
) -> None:
    await submit_blast(pg_dsn, "promo", messages(2_500), slice_size=1_000)
    assert await cancel_blast(pg_dsn, "promo") == 3
    status = await blast_status(pg_dsn, "promo")
    assert status is not None
    assert status.blast.state == "cancelled"
    assert status.summary.total == 2_500
    assert status.summary.outcomes["not_sent"] == 2_500
    assert status.slices["done"] == 3
    assert _staged(pg_dsn) == []  # the texts are gone with their slices
    assert [state for state, _ in _tasks(pg_dsn)] == ["cancelled"] * 3
    assert await cancel_blast(pg_dsn, "promo") == 0
    assert await cancel_blast(pg_dsn, "no-such-blast") is None


def test_a_blasts_summary_adds_up_its_slices() -> None:
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    one = JobSummary(
        job="p#000000",
        total=3,
        outcomes={"accepted": 2, "unknown": 1},
        delivery={"delivered": 1, "awaiting": 1},
        first_activity=late,
        last_activity=late,
    )
    two = JobSummary(
        job="p#000001",
        total=2,
        outcomes={"accepted": 1},
        delivery={"delivered": 1},
        in_flight=1,
        first_activity=early,
        last_activity=early,
    )
    both = combine("p", [one, two, JobSummary(job="p#000002", total=0, outcomes={}, delivery={})])
    assert (both.job, both.total, both.in_flight) == ("p", 5, 1)
    assert both.outcomes == {"accepted": 3, "unknown": 1, "rejected": 0, "not_sent": 0}
    assert both.delivery == {"delivered": 2, "awaiting": 1}
    assert (both.first_activity, both.last_activity) == (early, late)
