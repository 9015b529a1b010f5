"""Blasts across machines: 1 vs 3 worker processes on this machine, against a gateway that
answers every request after 50 ms (concurrency, not CPU, bounds throughput), with the
ledger in a throwaway PostgreSQL cluster; and the PostgreSQL ledger's own cost per
recipient (its bytes, and the time of the runner's calls with no network).

    .venv/bin/python benchmarks/workers.py [--recipients 20000] [--concurrency 1]

Each worker sends ``--concurrency`` requests at once (50 numbers each), so one worker tops
out near ``concurrency * 50 / 0.05 s``; three should come close to three times that while
the machine's cores keep up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anyio
import psycopg
from _common import machine, write_section
from attrs import evolve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test suite's throwaway cluster (tests/pgcluster.py)

from messaging_async import OutcomeStatus, PostgresLedger, Sms  # noqa: E402
from messaging_async.ledger import Entry  # noqa: E402
from messaging_async.testing import (  # noqa: E402
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    FakeGateway,
)
from messaging_async.testing._records import Fault, FaultRule  # noqa: E402
from messaging_async.workers import blast_status, migrate_database, submit_blast  # noqa: E402
from tests.gateway import serve_in_a_thread  # noqa: E402
from tests.pgcluster import Cluster, find_bindir, running_cluster  # noqa: E402

LATENCY = 0.05
SLICE = 1000
SCRIPT = Path(sys.executable).parent / "messaging-async"


@contextmanager
def sandbox() -> Iterator[tuple[FakeGateway, str]]:
    """The sandbox on a loopback port, in a thread, answering after ``LATENCY`` seconds."""
    fake = FakeGateway(isms_credits=10**9)
    fake.add_fault_rule(FaultRule(Fault.SLOW, times=None, delay=LATENCY))
    with serve_in_a_thread(fake) as url:
        yield fake, url


def blast(count: int) -> list[Sms]:
    return [
        Sms(to=f"6012{n:07d}", text=f"Hi {n}, your promo code is {n:06d}") for n in range(count)
    ]


def run_workers(dsn: str, url: str, workers: int, concurrency: int, count: int) -> float:
    """Seconds from the blast's submission (the workers started and waiting) to its last
    slice done."""
    env = {
        **os.environ,
        "MESSAGING_DSN": dsn,
        "ISMS_USERNAME": SANDBOX_USERNAME,
        "ISMS_PASSWORD": SANDBOX_PASSWORD,
        "ISMS_BASE_URL": url,
    }
    job = f"bench-{workers}"
    command = [str(SCRIPT), "worker", "--concurrency", str(concurrency), "--slices", "1"]
    with ExitStack() as stack:
        for _ in range(workers):
            process = subprocess.Popen(  # noqa: S603
                command, env=env, stdout=subprocess.PIPE, text=True
            )
            assert process.stdout is not None
            stack.callback(process.stdout.close)  # last: it prints as it stops
            stack.callback(process.wait, 30)
            stack.callback(process.terminate)
            assert process.stdout.readline().startswith("worker ready")
        started = time.perf_counter()
        anyio.run(lambda: submit_blast(dsn, job, blast(count), slice_size=SLICE))
        slices = -(-count // SLICE)
        while True:
            status = anyio.run(blast_status, dsn, job)
            assert status is not None
            if status.slices["done"] == slices:
                elapsed = time.perf_counter() - started
                break
            time.sleep(0.05)
    assert status.summary.outcomes["accepted"] == count, status.summary
    return elapsed


def ledger_bytes(dsn: str, count: int) -> float:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_total_relation_size('messaging_ledger.sends')").fetchone()
    assert row is not None
    return int(row[0]) / count


async def journal_cost(dsn: str, count: int) -> float:
    """Microseconds per recipient of the runner's calls (plan, begin, settle) per unit of
    50, 10 units at once, no network."""
    entries = [
        Entry(n, f"6012{n:07d}", None, Sms(to=f"6012{n:07d}", text=f"Hi {n}")) for n in range(count)
    ]
    async with PostgresLedger(dsn, schema="journal_" + uuid.uuid4().hex[:8]) as ledger:
        await ledger.open_job("journal", gateway="isms")
        limit = anyio.Semaphore(10)

        async def unit(start: int) -> None:
            async with limit:
                plan = await ledger.plan("journal", entries[start : start + 50])
                await ledger.begin_unit("journal", plan.send)
                outcomes = [
                    evolve(e.outcome(OutcomeStatus.ACCEPTED, "ok"), message_id=f"m{e.position}")
                    for e in plan.send
                ]
                await ledger.settle_unit("journal", outcomes)

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for start in range(0, count, 50):
                group.start_soon(unit, start)
        return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL's initdb/pg_ctl are missing: `make tools` installs them")
    rows = []
    with running_cluster(bindir) as cluster, sandbox() as (_fake, url):
        for workers in (1, 3):
            dsn = fresh(cluster)
            migrate_database(dsn)
            seconds = run_workers(dsn, url, workers, args.concurrency, args.recipients)
            rate = args.recipients / seconds
            rows.append((workers, seconds, rate, ledger_bytes(dsn, args.recipients)))
            print(f"{workers} worker(s): {rate:,.0f} messages/s", flush=True)
        micros = anyio.run(journal_cost, fresh(cluster), 20_000)
    one = rows[0][2]
    table = "\n".join(
        f"| {w} | {s:.1f} | {r:,.0f} | {r / one:.2f}x | {b:.0f} |" for w, s, r, b in rows
    )
    write_section(
        "Blasts across machines: Procrastinate workers, PostgreSQL ledger",
        f"{machine()}; {args.recipients:,} recipients in slices of {SLICE}, a gateway answering "
        f"after {LATENCY * 1000:.0f} ms, each worker {args.concurrency} request(s) of 50 at once, "
        "all on this one machine, timed from the submission (workers waiting) to the last "
        "slice done (`benchmarks/workers.py`).\n\n"
        "| workers | seconds | messages/s | vs 1 worker | ledger bytes per recipient |\n"
        "|---|---|---|---|---|\n"
        f"{table}\n\n"
        f"The PostgreSQL ledger's own time for the runner's calls (plan, claim, outcomes per "
        f"unit of 50, 10 units at once, no network): {micros:.0f} µs per recipient.",
    )


def fresh(cluster: Cluster) -> str:
    return cluster.create_database()


if __name__ == "__main__":
    main()
