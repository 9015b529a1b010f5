"""Random runs of one job, killed at random units, resumed until done (Hypothesis).

Whatever the schedule: a recipient that may have reached the gateway (in flight at a
kill, or ``unknown``) is never sent again (iSMS has no idempotency key), an accepted or
rejected one is never sent again, every recipient of every run gets exactly one outcome,
and the ledger's counts agree with what the runs were told.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from attrs import evolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging_async import OutcomeStatus
from messaging_async.ledger._owner import Owner
from messaging_async.ledger._postgres import connect as connect_postgres
from messaging_async.ledger._queries import summary
from messaging_async.ledger._schema import connect, migrate
from messaging_async.ledger._store import Store

from ..pgcluster import Cluster
from .conftest import Clock, sms_entries

JOB = "property"
FATES = [
    OutcomeStatus.ACCEPTED,
    OutcomeStatus.REJECTED,
    OutcomeStatus.NOT_SENT,
    OutcomeStatus.UNKNOWN,
    None,  # the run is killed with this unit in flight
]

# Each run's owner: a pid above Linux's largest, so a run that is "killed" (its job never
# closed) is seen dead by the next one, as a SIGKILLed process is (test_crash.py).
DEAD_ON_KILL = Owner(Owner.current().host, 4_194_304 + 7, 1.0)

runs = st.lists(st.lists(st.sampled_from(FATES), min_size=1, max_size=12), min_size=1, max_size=5)


def _sqlite_store(folder: str, clock: Clock) -> Store:
    conn = connect(str(Path(folder) / "ledger.db"))
    migrate(conn)
    return Store(conn, store_text=False, lease_seconds=120, clock=clock)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=runs, unit=st.integers(min_value=1, max_value=7), count=st.integers(1, 40))
def test_resumed_runs_never_resend_what_may_have_left(
    schedule: list[list[OutcomeStatus | None]], unit: int, count: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _check_schedule(lambda clock: _sqlite_store(folder, clock), schedule, unit, count)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=runs, unit=st.integers(min_value=1, max_value=7), count=st.integers(1, 40))
def test_resumed_runs_never_resend_what_may_have_left_in_postgres(
    pg_cluster: Cluster, schedule: list[list[OutcomeStatus | None]], unit: int, count: int
) -> None:
    dsn, schema = pg_cluster.dsn(), "t_" + uuid.uuid4().hex[:16]

    def store(clock: Clock) -> Store:
        return Store(
            connect_postgres(dsn, schema), store_text=False, lease_seconds=120, clock=clock
        )

    _check_schedule(store, schedule, unit, count)


def _check_schedule(
    make_store: Callable[[Clock], Store],
    schedule: list[list[OutcomeStatus | None]],
    unit: int,
    count: int,
) -> None:
    entries = sms_entries(count)
    clock = Clock()
    may_have_left: set[int] = set()  # in flight at a kill, unknown, accepted or rejected
    reached = dict.fromkeys(range(count), 0)  # sends that may have reached the gateway
    last: list[OutcomeStatus | None] = [OutcomeStatus.ACCEPTED]  # the last run ends
    for fates in [*schedule, last]:
        store = make_store(clock)
        store.open_job(JOB, "isms", DEAD_ON_KILL)
        told: dict[int, OutcomeStatus] = {}
        killed = False
        for number, start in enumerate(range(0, count, unit)):
            fate = fates[number % len(fates)]
            plan = store.plan(JOB, entries[start : start + unit], False)
            told.update((o.index, o.status) for o in plan.outcomes)
            assert not {e.position for e in plan.send} & may_have_left
            if not plan.send:
                continue
            store.begin_unit(JOB, plan.send, True)
            for entry in plan.send:
                reached[entry.position] += fate is not OutcomeStatus.NOT_SENT
            if fate is None:  # killed: this unit stays in flight, the rest never runs
                may_have_left.update(e.position for e in plan.send)
                killed = True
                break
            outcomes = [
                evolve(e.outcome(fate, fate.value), message_id=f"m{e.position}") for e in plan.send
            ]
            store.settle_unit(JOB, outcomes)
            told.update((o.index, o.status) for o in outcomes)
            if fate is not OutcomeStatus.NOT_SENT:
                may_have_left.update(e.position for e in plan.send)
        if not killed:
            store.close_job(JOB)
            assert sorted(told) == list(range(count))  # one outcome each
        store.runs.clear()  # a kill: the job is left held by its (dead) run
        store.conn.close()
        clock.advance(1)
    final = make_store(clock)
    counted = summary(final.conn, JOB, clock(), 3600)
    final.conn.close()
    assert counted.total == count
    assert counted.in_flight == 0
    assert sum(counted.outcomes.values()) == count
    assert counted.outcomes["not_sent"] == 0
    assert all(times <= 1 for times in reached.values())
