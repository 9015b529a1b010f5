"""The SQLite store's stages in process, no threads and no event loop: CPU µs per recipient
as a trip runs them (ten units of 50 a trip), best of ``--rounds``.

- claim: a fresh job's ``plan_and_begin`` per unit (what the runner asks before a request);
- settle: ``settle_unit`` per unit (its outcomes);
- resume, plan: the job run again with 90% settled, ``plan`` per unit of prepared entries;
- resume, read ahead: the same through ``read_ahead`` (512 positions a trip) and
  ``Ahead.take`` per raw entry, where the store has it (as a resumed job's runner
  asks it, before preparing anything).

Run it against another checkout's code with ``PYTHONPATH=that/checkout``: the same
script, before / after in the same minutes.

    .venv/bin/python benchmarks/ledger_stages.py [--recipients 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from messaging_async import OutcomeStatus, Sms
from messaging_async.ledger import Entry
from messaging_async.ledger._batch import Call
from messaging_async.ledger._owner import Owner
from messaging_async.ledger._schema import connect, migrate
from messaging_async.ledger._store import Store
from messaging_async.models import new_outcome

UNIT, TRIP, WINDOW = 50, 10, 512


def _entries(start: int, stop: int) -> list[Entry]:
    return [
        Entry(n, f"6012{n:07d}", None, Sms(to=f"6012{n:07d}", text=f"Hi {n}, code {n}"))
        for n in range(start, stop)
    ]


def _accepted(entries: list[Entry]) -> list[Any]:
    status = OutcomeStatus.ACCEPTED
    return [
        new_outcome(e.to, status, e.position, f"m{e.position}", 2000, *(None,) * 6, False)
        for e in entries
    ]


def _trips(store: Store, calls: list[Call[Any]]) -> float:
    spent = time.process_time()
    for start in range(0, len(calls), TRIP):
        store.run_trip(calls[start : start + TRIP])
    return time.process_time() - spent


def one_round(total: int) -> dict[str, float]:
    units = [_entries(start, min(total, start + UNIT)) for start in range(0, total, UNIT)]
    settled = units[: len(units) * 9 // 10]
    found: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        conn = connect(str(Path(folder) / "ledger.db"))
        migrate(conn)
        store = Store(conn, store_text=False, lease_seconds=120, clock=time.time)
        store.open_job("j", "isms", Owner("bench", 4_194_311, 1.0))
        claims = [Call(store.plan_and_begin, ("j", part, False, True)) for part in settled]
        settles = [Call(store.settle_unit, ("j", _accepted(part))) for part in settled]
        written = sum(len(part) for part in settled)
        claim = settle = 0.0
        for start in range(0, len(claims), TRIP):  # alternated, as a blast's trips are
            claim += _trips(store, claims[start : start + TRIP])
            settle += _trips(store, settles[start : start + TRIP])
        found["claim"], found["settle"] = claim / written, settle / written
        store.close_job("j")
        store.open_job("j", "isms", Owner("bench", 4_194_312, 1.0))
        plans = [Call(store.plan, ("j", part, False)) for part in units]
        found["resume, plan"] = _trips(store, plans) / total
        try:
            from messaging_async.ledger._settled import read_ahead
        except ImportError:  # a checkout without it
            return found
        every = [entry for part in units for entry in part]
        spent, taken = time.process_time(), 0
        for start in range(0, total, WINDOW):  # as the runner asks: ahead, then per item
            call = Call(read_ahead, (store, "j", start, WINDOW))
            store.run_trip([call])
            ahead = call.result
            assert ahead is not None
            for entry in every[start : start + WINDOW]:
                taken += ahead.take(entry.position, entry.to, entry.ref, entry.content) is not None
        found["resume, read ahead"] = (time.process_time() - spent) / total
        assert taken == written, taken
    return found


def main(total: int, rounds: int) -> None:
    best: dict[str, float] = {}
    for _ in range(rounds):
        for stage, seconds in one_round(total).items():
            best[stage] = min(best.get(stage, float("inf")), seconds)
    print(" | ".join(f"{stage} {seconds * 1e6:.2f} µs" for stage, seconds in best.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    main(options.recipients, options.rounds)
