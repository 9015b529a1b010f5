"""Three real worker processes (``messaging-async worker``) send one blast against the sandbox
on a loopback socket; one of them is SIGKILLed — or SIGTERMed — in the middle of a slice,
with a request in flight. The others finish the job. Reconciled with the sandbox's records:
no recipient recorded twice, every recipient exactly one final outcome.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import anyio
import psycopg
import pytest

from messaging_async import Outcome, OutcomeStatus, PostgresLedger, Sms
from messaging_async.testing import SANDBOX_PASSWORD, SANDBOX_USERNAME, FakeGateway, reconcile
from messaging_async.testing._records import Fault, FaultRule
from messaging_async.workers import blast_status, submit_blast
from messaging_async.workers._app import slice_job

# The console script's command line, run by a script that dumps its stacks on demand.
CLI = [sys.executable, str(Path(__file__).with_name("debuggable_cli.py"))]
JOB = "promo"
RECIPIENTS, SLICE, UNIT = 1_200, 200, 50  # 6 slices of 4 requests (iSMS: 50 numbers each)
LATENCY = 0.25  # each request: slow enough to kill a worker with one in flight


def blast() -> list[Sms]:
    return [Sms(to=f"6012{n:07d}", text=f"Hi {n}, your order shipped") for n in range(RECIPIENTS)]


class Worker:
    """One ``messaging-async worker`` process; its output is read in a thread."""

    def __init__(self, dsn: str, url: str, concurrency: int):
        env = {
            **os.environ,
            "MESSAGING_DSN": dsn,
            "ISMS_USERNAME": SANDBOX_USERNAME,
            "ISMS_PASSWORD": SANDBOX_PASSWORD,
            "ISMS_BASE_URL": url,
            "SMSCOMMY_USERNAME": SANDBOX_USERNAME,
            "SMSCOMMY_PASSWORD": SANDBOX_PASSWORD,
            "SMSCOMMY_BASE_URL": url,
        }
        command = [*CLI, "worker", "--concurrency", str(concurrency), "--slices", "1"]
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            [*command, "--stalled-after", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if line.startswith("worker ready"):
                self.ready.set()

    def exit_code(self, timeout: float) -> int:
        """The worker's exit status once it exits; if it does not within ``timeout``
        seconds, the test fails with where it hangs: its threads' stacks (SIGUSR1), its
        tasks' awaits (SIGUSR2) and everything it printed."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        for dump in (signal.SIGUSR1, signal.SIGUSR2):
            self.process.send_signal(dump)
            time.sleep(2)  # a loaded machine: let it write before it is killed
        self.stop()
        output = "\n".join(self.lines)
        pytest.fail(f"worker {self.process.pid} still running after {timeout} s:\n{output}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        self._reader.join(30)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def workers(pg_dsn: str, sandbox: tuple[FakeGateway, str]) -> Iterator[list[Worker]]:
    """Three workers, one iSMS request (50 numbers) in flight each at most."""
    yield from _workers(pg_dsn, sandbox, concurrency=1)


@pytest.fixture
def smscommy_workers(pg_dsn: str, sandbox: tuple[FakeGateway, str]) -> Iterator[list[Worker]]:
    """Three workers, ten sms.com.my requests (one number each) in flight each at most."""
    yield from _workers(pg_dsn, sandbox, concurrency=10)


def _workers(
    dsn: str, sandbox: tuple[FakeGateway, str], *, concurrency: int
) -> Iterator[list[Worker]]:
    fake, url = sandbox
    fake.add_fault_rule(FaultRule(Fault.SLOW, times=None, delay=LATENCY))
    with ExitStack() as stack:
        started = [Worker(dsn, url, concurrency) for _ in range(3)]
        for worker in started:
            stack.callback(worker.stop)
        for worker in started:
            assert worker.ready.wait(60), worker.lines
        yield started


def _first_unit_in_flight(dsn: str, pid: int) -> tuple[int, int] | None:
    """``(ledger job id, recipients)`` if the worker process ``pid`` has the first request
    of a slice in flight right now (the rest of that slice is still to send)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT s.job, count(*) FROM messaging_ledger.sends s JOIN messaging_ledger.runs r"
            " ON r.id = s.run WHERE s.state = 'in_flight' AND r.pid = %s AND s.position < %s"
            " GROUP BY s.job",
            (pid, UNIT),
        ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def _senders(dsn: str, job: int) -> set[int]:
    """The processes that settled recipients of one slice (its ledger job)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT DISTINCT r.pid FROM messaging_ledger.sends s JOIN messaging_ledger.runs r"
            " ON r.id = s.run WHERE s.job = %s AND s.state = 'accepted'",
            (job,),
        ).fetchall()
    return {int(pid) for (pid,) in rows}


async def _wait_mid_slice(dsn: str, worker: Worker) -> tuple[int, int]:
    with anyio.fail_after(120):
        while True:
            found = await anyio.to_thread.run_sync(_first_unit_in_flight, dsn, worker.process.pid)
            if found is not None:
                return found
            await anyio.sleep(0.01)


async def _wait_done(dsn: str) -> None:
    with anyio.fail_after(180):
        while True:
            status = await blast_status(dsn, JOB)
            assert status is not None
            if status.slices["done"] == RECIPIENTS // SLICE:
                return
            await anyio.sleep(0.2)


async def _outcomes(dsn: str) -> list[Outcome]:
    """Every recipient's outcome, from the ledger (each slice is a job of its own)."""
    outcomes = []
    async with PostgresLedger(dsn) as ledger:
        for number in range(RECIPIENTS // SLICE):
            async for record in ledger.records(slice_job(JOB, number)):
                assert record.outcome is not None, record  # nothing left in flight
                assert isinstance(record.ref, int)
                outcomes.append(
                    Outcome(
                        to=record.recipient,
                        status=record.outcome,
                        index=record.ref,
                        message_id=record.message_id,
                        code=record.code,
                    )
                )
    return outcomes


async def test_a_worker_killed_mid_slice_leaves_the_job_to_the_others(
    pg_dsn: str, sandbox: tuple[FakeGateway, str], workers: list[Worker]
) -> None:
    fake, _ = sandbox
    await submit_blast(pg_dsn, JOB, blast(), slice_size=SLICE)
    victim = workers[0]
    job, held = await _wait_mid_slice(pg_dsn, victim)
    victim.process.send_signal(signal.SIGKILL)
    assert victim.process.wait(30) == -signal.SIGKILL

    await _wait_done(pg_dsn)  # the others finish, the victim's slice after --stalled-after
    outcomes = await _outcomes(pg_dsn)
    counts = reconcile(blast(), outcomes, fake.sent).check()
    assert sum(counts.values()) == RECIPIENTS  # every recipient exactly one final outcome
    # iSMS has no idempotency key: the request the victim had in flight is unknown, never
    # sent again; everything else was accepted exactly once.
    assert counts[OutcomeStatus.UNKNOWN] == held == UNIT
    assert counts[OutcomeStatus.ACCEPTED] == RECIPIENTS - UNIT
    assert Counter(message.text for message in fake.sent).most_common(1)[0][1] == 1
    assert victim.process.pid not in _senders(pg_dsn, job)  # the rest: another worker


async def test_an_smscommy_slice_retried_after_a_kill_goes_again_under_its_seqnos(
    pg_dsn: str, sandbox: tuple[FakeGateway, str], smscommy_workers: list[Worker]
) -> None:
    """sms.com.my remembers a seqno for 24 hours: what the victim had in flight is sent
    again with the same seqno by the worker that takes the slice over, and the gateway
    keeps one of each — every recipient accepted, exactly once."""
    fake, _ = sandbox
    await submit_blast(pg_dsn, JOB, blast(), gateway="smscommy", slice_size=SLICE)
    victim = smscommy_workers[0]
    job, held = await _wait_mid_slice(pg_dsn, victim)
    victim.process.send_signal(signal.SIGKILL)
    assert victim.process.wait(30) == -signal.SIGKILL

    await _wait_done(pg_dsn)
    counts = reconcile(blast(), await _outcomes(pg_dsn), fake.sent).check()
    assert held >= 1
    assert counts[OutcomeStatus.ACCEPTED] == RECIPIENTS
    assert Counter(message.text for message in fake.sent).most_common(1)[0][1] == 1
    assert _senders(pg_dsn, job) - {victim.process.pid}  # another worker finished the slice


async def test_a_worker_terminated_mid_slice_finishes_its_requests_and_lets_go(
    pg_dsn: str, sandbox: tuple[FakeGateway, str], workers: list[Worker]
) -> None:
    fake, _ = sandbox
    await submit_blast(pg_dsn, JOB, blast(), slice_size=SLICE)
    victim = workers[0]
    job, _ = await _wait_mid_slice(pg_dsn, victim)
    started = time.monotonic()
    victim.process.send_signal(signal.SIGTERM)
    assert await anyio.to_thread.run_sync(victim.exit_code, 60) == 0, victim.lines
    assert time.monotonic() - started < 30  # it did not wait for its whole slice's peers
    assert "worker stopped" in victim.lines

    await _wait_done(pg_dsn)
    outcomes = await _outcomes(pg_dsn)
    counts = reconcile(blast(), outcomes, fake.sent).check()
    assert counts[OutcomeStatus.ACCEPTED] == RECIPIENTS  # nothing in doubt: requests finished
    # Its request in flight finished (accepted by it), the rest of its slice was let go and
    # sent by another worker.
    senders = _senders(pg_dsn, job)
    assert victim.process.pid in senders
    assert len(senders) >= 2


async def test_a_fatal_answer_stops_every_slice_on_every_worker(
    pg_dsn: str, sandbox: tuple[FakeGateway, str], workers: list[Worker]
) -> None:
    """Credits run out on one worker: the blast stops on all of them; nothing is in doubt."""
    fake, _ = sandbox
    fake.isms_credits = Decimal(300)
    await submit_blast(pg_dsn, JOB, blast(), slice_size=SLICE)
    await _wait_done(pg_dsn)
    status = await blast_status(pg_dsn, JOB)
    assert status is not None
    assert status.blast.state == "stopped"
    assert status.summary.total == RECIPIENTS
    counts = reconcile(blast(), await _outcomes(pg_dsn), fake.sent).check()
    assert counts[OutcomeStatus.ACCEPTED] == len(fake.sent) <= 300
    assert counts[OutcomeStatus.UNKNOWN] == 0
    assert counts[OutcomeStatus.NOT_SENT] >= RECIPIENTS - 300 - 3 * UNIT  # + units in flight
    # The slices not started when the credits ran out never ran: cancelled at once.
    with psycopg.connect(pg_dsn) as conn:
        cancelled = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'cancelled'"
        ).fetchone()
    assert cancelled is not None
    assert cancelled[0] >= 1
