"""The SQLite ledger's own cost, no network: recipients/s the runner's calls sustain.

- journal: a fresh job, per unit of 50: ``plan`` + ``begin_unit`` (one call,
  ``plan_and_begin_unit``, where the store has it, as the runner does) + ``settle_unit``
  (what the runner adds to a blast), units written by ``--concurrency`` tasks at once;
- resume: the same job run again with 90% settled: ``plan`` per unit skips them; and
  ``read_ahead`` per 512 positions and each entry asked, as the runner does first.

Targets (issue 14): a blast with the ledger ≥ 0.7 x without it, so the journal must cost
well under a third of the SDK's ~20-30 µs per recipient; resume ≥ 200,000 recipients/s.

    .venv/bin/python benchmarks/ledger.py [--recipients 100000] [--concurrency 50] [--backend trio]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import anyio

from messaging_async import Outcome, OutcomeStatus, Sms, SqliteLedger
from messaging_async.ledger import Entry

UNIT = 50
JOB = "bench"


def entries(start: int, count: int) -> list[Entry]:
    return [
        Entry(n, f"6012{n:07d}", None, Sms(to=f"6012{n:07d}", text=f"Hi {n}, promo code {n}"))
        for n in range(start, start + count)
    ]


Unit = tuple[list[Entry], list[Outcome]]


def units(total: int) -> list[Unit]:
    """Every unit's entries and outcomes, made before the clock starts: the runner has
    them anyway, and the figures are the ledger's alone."""
    made = []
    for start in range(0, total, UNIT):
        part = entries(start, min(UNIT, total - start))
        made.append((part, [accepted(entry) for entry in part]))
    return made


def accepted(entry: Entry) -> Outcome:
    return Outcome(
        to=entry.to,
        status=OutcomeStatus.ACCEPTED,
        index=entry.position,
        message_id=f"m{entry.position}",
        code=2000,
    )


async def journal(ledger: SqliteLedger, work: list[Unit], concurrency: int) -> None:
    """What the runner adds per unit: plan, claim (write-ahead), settle."""
    limiter = anyio.CapacityLimiter(concurrency)

    one_trip = getattr(ledger, "plan_and_begin_unit", None)  # older stores: two calls

    async def unit(part: list[Entry], outcomes: list[Outcome]) -> None:
        async with limiter:
            if one_trip is not None:
                await one_trip(JOB, part)
            else:
                plan = await ledger.plan(JOB, part)
                await ledger.begin_unit(JOB, plan.send)
            await ledger.settle_unit(JOB, outcomes)

    async with anyio.create_task_group() as tasks:
        for part, outcomes in work:
            tasks.start_soon(unit, part, outcomes)


async def resume(ledger: SqliteLedger, work: list[Unit], concurrency: int) -> int:
    limiter = anyio.CapacityLimiter(concurrency)
    to_send = 0

    async def unit(part: list[Entry]) -> None:
        nonlocal to_send
        async with limiter:
            plan = await ledger.plan(JOB, part)
            to_send += len(plan.send)

    async with anyio.create_task_group() as tasks:
        for part, _ in work:
            tasks.start_soon(unit, part)
    return to_send


async def skip(ledger: SqliteLedger, work: list[Unit]) -> int:
    """A resume as the runner makes it where the store has ``read_ahead``: 512 positions
    of settled rows a trip, then each entry asked (the rest would be prepared and planned)."""
    every = [entry for part, _ in work for entry in part]
    to_send = 0
    for start in range(0, len(every), 512):
        ahead = await ledger.read_ahead(JOB, start, 512)
        for entry in every[start : start + 512]:
            to_send += (
                ahead is None
                or ahead.take(entry.position, entry.to, entry.ref, entry.content) is None
            )
    return to_send


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


async def main(total: int, concurrency: int) -> None:
    work = units(total)
    settled = work[: len(work) * 9 // 10]  # the first run stops at 90%
    written = sum(len(part) for part, _ in settled)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.db"
        async with SqliteLedger(path) as ledger:
            await ledger.open_job(JOB, gateway="isms")
            began, cpu = time.perf_counter(), time.process_time()
            await journal(ledger, settled, concurrency)
            spent, cpu = time.perf_counter() - began, time.process_time() - cpu
            await ledger.close_job(JOB)
        size = _size(Path(folder))
        print(
            f"journal (plan + begin + settle): {written / spent:,.0f} recipients/s "
            f"({spent / written * 1e6:.1f} µs each, CPU {cpu / written * 1e6:.1f} µs), "
            f"{size / written:.0f} bytes per recipient"
        )
        async with SqliteLedger(path) as ledger:
            await ledger.open_job(JOB, gateway="isms")
            began, cpu = time.perf_counter(), time.process_time()
            to_send = await resume(ledger, work, concurrency)
            spent, cpu = time.perf_counter() - began, time.process_time() - cpu
            await ledger.close_job(JOB)
            assert to_send == total - written, to_send
            print(
                f"resume with 90% settled (plan): {total / spent:,.0f} recipients/s "
                f"(CPU {cpu / total * 1e6:.1f} µs each; {to_send:,} left to send)"
            )
            if not hasattr(ledger, "read_ahead"):  # another checkout's store
                return
            await ledger.open_job(JOB, gateway="isms")
            began, cpu = time.perf_counter(), time.process_time()
            left = await skip(ledger, work)
            spent, cpu = time.perf_counter() - began, time.process_time() - cpu
        assert left == total - written, left
        print(
            f"resume with 90% settled (read_ahead): {total / spent:,.0f} recipients/s "
            f"(CPU {cpu / total * 1e6:.1f} µs each)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--backend", default=os.environ.get("BACKEND", "asyncio"))
    options = parser.parse_args()
    anyio.run(main, options.recipients, options.concurrency, backend=options.backend)
