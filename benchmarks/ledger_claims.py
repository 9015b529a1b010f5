"""The event loop's CPU for the ledger alone: a journalled blast's claims and settles
without its HTTP, to tell a change of the claim path from the noise of the whole blast.

50 tasks take units of 50 SMS in turn, as the runner's do: each claims its unit
(``Journal.claim``, on a fresh ``SqliteLedger`` with its writer process), waits
``--sleep`` in place of the request, and hands its accepted outcomes over
(``Journal.settle_accepted``). "none" does the same without the ledger's two calls: the
harness's own share. Printed per message: the event loop's CPU, the writer process's,
and the young collections the run made (their time too).

    PYTHONPATH=. .venv/bin/python benchmarks/ledger_claims.py [--messages 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import anyio

from messaging_async import Sms, SqliteLedger
from messaging_async._journal import Journal
from messaging_async._outcomes_seq import compact_accepted
from messaging_async._plan import new_pending

CONCURRENCY = 50
PLAN = types.SimpleNamespace(
    gateway="isms", same_text=None, keeps_content=True, reseq=None, expect_reports=True
)  # what ``Journal`` reads of an iSMS SMS plan

COLLECTED = [0, 0.0]  # young collections and their seconds, since ``gc.collect``
_STARTED: list[float] = []


def _count(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _STARTED.append(time.perf_counter())
    elif info["generation"] == 0:
        COLLECTED[0] += 1
        COLLECTED[1] += time.perf_counter() - _STARTED.pop()
    else:
        _STARTED.pop()


def units_of(count: int) -> list[list[Any]]:
    messages = [
        Sms(to=f"6012{i:07d}", text=f"Hi customer {i}, code {i % 999_999:06d}")
        for i in range(count)
    ]
    return [
        [new_pending(i, m.to, None, m, m) for i, m in enumerate(messages[s : s + 50], s)]
        for s in range(0, count, 50)
    ]


def writer_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(
    path: Path, units: list[list[Any]], sleep: float, ledger_on: bool
) -> tuple[float, float]:
    """The event loop's CPU seconds for ``units``, and the writer process's."""
    async with SqliteLedger(path, writer="process") as ledger:
        await ledger.open_job("warm-up", gateway="isms")  # starts the writer process
        await ledger.close_job("warm-up")
        journal = Journal(ledger, "bench", PLAN, resend_unknown=False)  # type: ignore[arg-type]
        await journal.open()
        todo = iter(units)

        async def work() -> None:
            for unit in todo:
                send = (await journal.claim(unit))[0] if ledger_on else unit
                await anyio.sleep(sleep)
                ids = tuple(f"id{pending.position}" for pending in send)
                accepted = compact_accepted("isms", send, ids, 2000, "")
                if ledger_on:
                    await journal.settle_accepted(accepted)

        assert ledger._writer is not None
        pid = ledger._writer.pid
        gc.collect()
        COLLECTED[:] = [0, 0.0]
        child, loop = writer_cpu(pid), time.thread_time()
        async with anyio.create_task_group() as tasks:
            for _ in range(CONCURRENCY):
                tasks.start_soon(work)
        await journal.close()
        return time.thread_time() - loop, writer_cpu(pid) - child


def main(count: int, rounds: int, sleep: float) -> None:
    units = units_of(count)
    gc.callbacks.append(_count)
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(rounds):
            for name in ("ledger", "none"):
                path = Path(folder) / f"{round_number}-{name}.db"
                loop, child = anyio.run(run, path, units, sleep, name == "ledger")
                print(
                    f"{round_number + 1} {name}: event loop {loop / count * 1e6:.2f} µs/msg,"
                    f" writer {child / count * 1e6:.2f} µs/msg, {COLLECTED[0]} young"
                    f" collections ({COLLECTED[1] / count * 1e6:.2f} µs/msg)",
                    flush=True,
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.002, help="in place of a request")
    arguments = parser.parse_args()
    main(arguments.messages, arguments.rounds, arguments.sleep)
