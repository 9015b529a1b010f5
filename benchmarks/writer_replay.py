"""The SQLite ledger's writer process, replayed in one process: its CPU per recipient by
stage, steady enough to compare two checkouts on a shared machine (and to run under
callgrind, whose instruction counts are steadier still).

- ``--capture FILE``: a journalled blast (``ledger_blast.py``'s ``send_sms_bulk`` of
  ``--messages`` SMS at concurrency 50, the gateway in its own process) with every frame
  its parent sends the writer process kept, pickled, in ``FILE``;
- ``--replay FILE``: those frames answered by ``_writer._Writer.answer`` on a fresh ledger
  file, as the child answers them, without pipes: CPU µs per recipient of unpickling
  (``load``), each op (``plan_and_begin``: the claims; ``settle_accepted``: the outcomes),
  the trips' own work (``BEGIN``, the lease, ``COMMIT``), pickling the answers and the
  close (``close``: the last checkpoint, which SQLite runs when the writer's connection
  closes; a policy that checkpoints less during the trips leaves more of it there); best
  of ``--rounds``. ``--pragma NAME=VALUE`` (repeatable) is run on the writer's connection
  once opened (``wal_autocheckpoint=0``, say), to compare a setting on the same frames.

Replay another checkout's code with ``PYTHONPATH=that/checkout`` (the same frames, before /
after in the same minutes); under callgrind, subtract a replay of the first frame alone.

    .venv/bin/python benchmarks/writer_replay.py --capture frames.pkl [--messages 20000]
    .venv/bin/python benchmarks/writer_replay.py --replay frames.pkl [--rounds 5] [--pragma …]
"""

from __future__ import annotations

import argparse
import io
import pickle
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from messaging_async.ledger import _writer
from messaging_async.ledger._writer_serve import Inbox, Writer


def capture(count: int, out: Path) -> None:
    import anyio
    import ledger_blast
    from _common import gateway_process

    from messaging_async import SqliteLedger
    from messaging_async.ledger._writer_calls import dumps
    from messaging_async.ledger._writer_client import WriterProcess

    sent: list[bytes] = []
    request = WriterProcess.request

    async def kept(self: WriterProcess, message: object, **how: Any) -> Any:
        # the frame's pickle as the child reads it (the parent pickles a trip itself)
        sent.append(message if type(message) is bytes else dumps(message))
        return await request(self, message, **how)

    WriterProcess.request = kept  # type: ignore[method-assign]

    async def blast(url: str, path: Path) -> None:
        async with SqliteLedger(path) as ledger, ledger_blast.client(url, ledger) as isms:
            report = await isms.send_sms_bulk(ledger_blast.messages(count), job="bench")
            assert report.all_accepted, report.counts

    with gateway_process() as url, tempfile.TemporaryDirectory() as folder:
        anyio.run(blast, url, Path(folder) / "ledger.db")
    out.write_bytes(pickle.dumps(sent))
    print(f"{len(sent)} frames, {sum(map(len, sent)):,} bytes")


def _adopt(writer: Writer, message: Any) -> None:
    """The job and run an ``adopt`` names, made as the parent's store made them."""
    _, job, job_id, run_id, gateway, _ = message
    assert writer.store is not None
    conn = writer.store.conn
    conn.execute(
        "INSERT INTO runs (id, host, pid, started, opened_at, lease_until)"
        " VALUES (?, 'replay', 1, 1, 1, 9e12)",
        (run_id,),
    )
    conn.execute(
        "INSERT INTO jobs (id, name, gateway, run, created_at) VALUES (?, ?, ?, ?, 1)",
        (job_id, job, gateway, run_id),
    )


def replay_once(
    frames: list[bytes], path: Path, pragmas: tuple[str, ...] = ()
) -> tuple[int, dict[str, float]]:
    """Recipients claimed, and CPU seconds by stage, of one replay on a new file, the
    writer's connection given ``pragmas`` (``NAME=VALUE``) once opened."""
    spent: dict[str, float] = defaultdict(float)
    ops = dict(_writer.OPS)

    def timed(name: str) -> Any:
        function = ops[name]

        def run(*args: Any) -> Any:
            started = time.process_time()
            try:
                return function(*args)
            finally:
                spent[name] += time.process_time() - started

        return run

    _writer.OPS.update({name: timed(name) for name in ops})
    writer = Writer(Inbox(), io.BytesIO())  # answers written nowhere; ``frame`` timed below
    writer.open(str(path), False, 120.0)
    assert writer.store is not None
    for pragma in pragmas:
        writer.store.conn.execute(f"PRAGMA {pragma}")
    recipients = 0
    try:
        for data in frames:
            started = time.process_time()
            message = _writer.load(data)
            loaded = time.process_time()
            if message[0] == "adopt":
                _adopt(writer, message)
            answering = time.process_time()
            result = writer.answer(message)
            answered = time.process_time()
            _writer.frame(0, (True, result))
            spent["reply"] += time.process_time() - answered
            spent["load"] += loaded - started
            spent["trip"] += answered - answering
            if message[0] == "trip":
                assert all(error is None for _, error in result), result
                claims = [args for op, args in message[2] if op == "plan_and_begin"]
                recipients += sum(len(args[1][0]) for args in claims)
    finally:
        closing = time.process_time()
        writer.close()
        spent["close"] += time.process_time() - closing
        _writer.OPS.update(ops)
    spent["trip"] -= sum(spent[name] for name in ops)  # BEGIN, the lease, COMMIT
    return recipients, spent


def replay(source: Path, rounds: int, pragmas: tuple[str, ...] = ()) -> None:
    frames: list[bytes] = pickle.loads(source.read_bytes())  # noqa: S301 (our own capture)
    best: dict[str, float] = {}
    recipients = 0
    with tempfile.TemporaryDirectory() as folder:
        for number in range(rounds):
            recipients, spent = replay_once(frames, Path(folder) / f"replay-{number}.db", pragmas)
            spent["total"] = sum(spent.values())
            for stage, seconds in spent.items():
                best[stage] = min(best.get(stage, float("inf")), seconds)
    per = {stage: seconds / max(recipients, 1) * 1e6 for stage, seconds in best.items()}
    print(f"{recipients:,} recipients: " + " | ".join(f"{s} {v:.2f}" for s, v in per.items() if v))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path)
    parser.add_argument("--replay", type=Path)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pragma", action="append", default=[], metavar="NAME=VALUE")
    options = parser.parse_args()
    if options.capture:
        capture(options.messages, options.capture)
    if options.replay:
        replay(options.replay, options.rounds, tuple(options.pragma))
