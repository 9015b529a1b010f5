"""The SQLite ledger's own cost, no network: recipients/s the runner's calls sustain.

- journal: a fresh job, per unit of 50: ``plan`` + ``begin_unit`` + ``settle_unit`` (what
  the runner adds to a blast), units written by ``--concurrency`` tasks at once;
- resume: the same job run again with 90% settled: ``plan`` per unit skips them.

Targets (issue 14): a blast with the ledger ≥ 0.7 x without it, so the journal must cost
well under a third of the SDK's ~20-30 µs per recipient; resume ≥ 200,000 recipients/s.

    .venv/bin/python benchmarks/ledger.py [--recipients 200000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import anyio
from attrs import evolve

from messaging_async import OutcomeStatus, Sms, SqliteLedger
from messaging_async.ledger import Entry

UNIT = 50
JOB = "bench"


def entries(start: int, count: int) -> list[Entry]:
    return [
        Entry(n, f"6012{n:07d}", None, Sms(to=f"6012{n:07d}", text=f"Hi {n}, promo code {n}"))
        for n in range(start, start + count)
    ]


async def journal(ledger: SqliteLedger, total: int, concurrency: int, settle_upto: int) -> None:
    """Plan, claim and settle every unit; recipients at or past ``settle_upto`` stay never
    reached (their unit is not written at all), as a run stopped at 90% leaves them."""
    limiter = anyio.CapacityLimiter(concurrency)

    async def unit(start: int) -> None:
        async with limiter:
            part = entries(start, UNIT)
            plan = await ledger.plan(JOB, part)
            await ledger.begin_unit(JOB, plan.send)
            outcomes = [
                evolve(e.outcome(OutcomeStatus.ACCEPTED, "ok"), message_id=f"m{e.position}")
                for e in plan.send
            ]
            await ledger.settle_unit(JOB, outcomes)

    async with anyio.create_task_group() as tasks:
        for start in range(0, min(total, settle_upto), UNIT):
            tasks.start_soon(unit, start)


async def resume(ledger: SqliteLedger, total: int, concurrency: int) -> int:
    limiter = anyio.CapacityLimiter(concurrency)
    to_send = 0

    async def unit(part: list[Entry]) -> None:
        nonlocal to_send
        async with limiter:
            plan = await ledger.plan(JOB, part)
            to_send += len(plan.send)

    async with anyio.create_task_group() as tasks:
        for start in range(0, total, UNIT):
            tasks.start_soon(unit, entries(start, UNIT))
    return to_send


def build_cost(total: int) -> float:
    """CPU seconds spent only building the entries (subtracted: the runner has them
    anyway); the best of three, the machine being shared."""
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        for start in range(0, total, UNIT):
            entries(start, UNIT)
        best = min(best, time.process_time() - began)
    return best


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


async def main(total: int, concurrency: int) -> None:
    building = build_cost(total)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.db"
        async with SqliteLedger(path) as ledger:
            await ledger.open_job(JOB, gateway="isms")
            began, cpu = time.perf_counter(), time.process_time()
            await journal(ledger, total, concurrency, settle_upto=total * 9 // 10)
            spent = time.perf_counter() - began - building * 0.9
            cpu = time.process_time() - cpu - building * 0.9
            await ledger.close_job(JOB)
        size = _size(Path(folder))
        written = total * 9 // 10
        print(
            f"journal (plan + begin + settle): {written / spent:,.0f} recipients/s "
            f"({spent / written * 1e6:.1f} µs each, CPU {cpu / written * 1e6:.1f} µs), "
            f"{size / written:.0f} bytes per recipient"
        )
        async with SqliteLedger(path) as ledger:
            await ledger.open_job(JOB, gateway="isms")
            began, cpu = time.perf_counter(), time.process_time()
            to_send = await resume(ledger, total, concurrency)
            spent = time.perf_counter() - began - building
            cpu = time.process_time() - cpu - building
        assert to_send == total - written, to_send
        print(
            f"resume with 90% settled (plan): {total / spent:,.0f} recipients/s "
            f"(CPU {cpu / total * 1e6:.1f} µs each; {to_send:,} left to send)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--backend", default=os.environ.get("BACKEND", "asyncio"))
    options = parser.parse_args()
    anyio.run(main, options.recipients, options.concurrency, backend=options.backend)
