"""One runner per job: a live run holds it; a dead one is found (same host: at once;
elsewhere: after its lease); a run that lost its job cannot write into it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from messaging_async import JobRunningError, LedgerError, OutcomeStatus, ValidationError
from messaging_async.ledger import Owner

from .conftest import Clock, LedgerFactory, accepted, sms_entries

pytestmark = pytest.mark.anyio

JOB = "newsletter"


def _elsewhere() -> Owner:
    return Owner("another-machine", 4242, 1.0)


async def test_a_second_live_run_of_the_same_job_is_refused(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as first, make_ledger() as second:
        await first.open_job(JOB, gateway="isms")
        with pytest.raises(JobRunningError, match="being run by pid") as caught:
            await second.open_job(JOB, gateway="isms")
        assert caught.value.job == JOB
        assert str(os.getpid()) in caught.value.owner
        await second.open_job("another-job", gateway="isms")  # other jobs are free
        await first.close_job(JOB)
        await second.open_job(JOB, gateway="isms")  # a closed job resumes at once


async def test_the_same_ledger_refuses_to_open_a_job_twice(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        with pytest.raises(JobRunningError):
            await ledger.open_job(JOB, gateway="isms")


async def test_closing_the_ledger_lets_go_of_its_jobs(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")


async def test_a_dead_owner_on_this_host_is_detected_at_once(make_ledger: LedgerFactory) -> None:
    dead = Owner(Owner.current().host, _exited_pid(), 12345.0)
    async with make_ledger() as crashed, make_ledger() as ledger:
        await crashed.open_job(JOB, gateway="isms", owner=dead)  # and never closes it
        await ledger.open_job(JOB, gateway="isms")  # the lease still runs: the pid decides


async def test_a_reused_pid_is_not_mistaken_for_the_owner(make_ledger: LedgerFactory) -> None:
    """Our own pid with another start time: an owner that died long ago, pid recycled."""
    me = Owner.current()
    parent = Owner(me.host, os.getppid(), -5.0)  # alive, but not the process that started
    async with make_ledger() as crashed, make_ledger() as ledger:
        await crashed.open_job(JOB, gateway="isms", owner=parent)
        await ledger.open_job(JOB, gateway="isms")


async def test_a_live_process_on_this_host_holds_the_job(make_ledger: LedgerFactory) -> None:
    with _sleeper() as child:
        try:
            started = _process_start(child.pid)
            owner = Owner(Owner.current().host, child.pid, started)
            async with make_ledger() as holder, make_ledger() as ledger:
                await holder.open_job(JOB, gateway="isms", owner=owner)
                with pytest.raises(JobRunningError, match=str(child.pid)):
                    await ledger.open_job(JOB, gateway="isms")
                child.kill()
                child.wait()
                await ledger.open_job(JOB, gateway="isms")
        finally:
            child.kill()


def _exited_pid() -> int:
    """The pid of a process that has come and gone."""
    code = "import os; print(os.getpid())"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)  # noqa: S603
    return int(done.stdout)


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _process_start(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        text = stat.read()
    return float(text[text.rindex(b")") + 2 :].split()[19])


async def test_an_owner_elsewhere_holds_the_job_until_its_lease_runs_out(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    async with make_ledger(lease_seconds=60) as there, make_ledger(lease_seconds=60) as here:
        await there.open_job(JOB, gateway="isms", owner=_elsewhere())
        clock.advance(30)
        await there.renew_job(JOB)
        clock.advance(59)  # the other machine goes silent from here
        with pytest.raises(JobRunningError, match="another-machine"):
            await here.open_job(JOB, gateway="isms")
        clock.advance(2)
        await here.open_job(JOB, gateway="isms")


async def test_writing_a_unit_renews_the_lease(make_ledger: LedgerFactory, clock: Clock) -> None:
    entries = sms_entries(2)
    async with make_ledger(lease_seconds=60) as ledger, make_ledger(lease_seconds=60) as other:
        await ledger.open_job(JOB, gateway="isms", owner=_elsewhere())
        clock.advance(50)
        await ledger.begin_unit(JOB, entries[:1])
        clock.advance(50)
        await ledger.settle_unit(JOB, accepted(entries[:1]))
        clock.advance(50)
        with pytest.raises(JobRunningError):
            await other.open_job(JOB, gateway="isms")


async def test_a_run_whose_job_was_taken_over_cannot_write_into_it(
    make_ledger: LedgerFactory, clock: Clock
) -> None:
    entries = sms_entries(2)
    async with make_ledger(lease_seconds=60) as stale, make_ledger(lease_seconds=60) as fresh:
        await stale.open_job(JOB, gateway="isms", owner=_elsewhere())
        await stale.begin_unit(JOB, entries)
        clock.advance(61)
        await fresh.open_job(JOB, gateway="isms")
        with pytest.raises(LedgerError, match="taken over"):
            await stale.settle_unit(JOB, accepted(entries))
        with pytest.raises(LedgerError, match="taken over"):
            await stale.begin_unit(JOB, sms_entries(1, start=5))
        plan = await fresh.plan(JOB, entries)
    assert [o.status for o in plan.outcomes] == [OutcomeStatus.UNKNOWN] * 2


async def test_a_job_stays_on_its_gateway(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        await ledger.open_job(JOB, gateway="isms")
        await ledger.close_job(JOB)
        with pytest.raises(LedgerError, match="started on isms"):
            await ledger.open_job(JOB, gateway="smscommy")


async def test_a_job_needs_a_name(make_ledger: LedgerFactory) -> None:
    async with make_ledger() as ledger:
        with pytest.raises(ValidationError):
            await ledger.open_job("", gateway="isms")
