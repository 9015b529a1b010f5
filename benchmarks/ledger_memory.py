"""Peak memory of a journalled streamed blast: 1,000,000 recipients vs 100,000, and the
ledger's size per recipient.

Like ``memory.py`` (same generator, same in-process gateway answering at once), with
``job=`` on a fresh ``SqliteLedger``: each size in a fresh process (peak RSS is per
process). Flat memory means the two peaks are within 10% (issue 14); the ledger file
(with its WAL, after close) divided by the recipients is what a job costs on disk.

    .venv/bin/python benchmarks/ledger_memory.py [--no-write]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import anyio
from _common import machine, measure_in_child, write_section
from memory import AnswerAll, recipients

from messaging_async import IsmsClient, RetryPolicy, SqliteLedger


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


async def blast(count: int, path: Path) -> int:
    seen = 0
    async with SqliteLedger(path) as ledger:
        isms = IsmsClient(
            username="u",
            password="p",
            transport=AnswerAll(),
            retry=RetryPolicy.no_wait(),
            ledger=ledger,
        )
        async with isms:
            async for outcome in isms.stream_sms_bulk(recipients(count), job="memory"):
                seen += outcome.ok
        if ledger._writer is not None:  # its peak, read before the ledger ends it
            WRITER_PEAK_KIB.append(_peak_kib(ledger._writer.pid))
    return seen


WRITER_PEAK_KIB: list[int] = []


def _peak_kib(pid: int) -> int:
    """Process ``pid``'s peak resident set (``VmHWM``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        accepted = anyio.run(blast, count, Path(folder) / "ledger.db")
        spent = time.perf_counter() - began
        size = _size(Path(folder))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    writer_kib = WRITER_PEAK_KIB[0] if WRITER_PEAK_KIB else 0
    figures = {
        "accepted": accepted,
        "peak_mib": peak_kib / 1024,
        "writer_mib": writer_kib / 1024,
        "bytes": size,
        "s": spent,
    }
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", type=int)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    small, large = measure_in_child(__file__, args.small), measure_in_child(__file__, args.large)
    ratio = large["peak_mib"] / small["peak_mib"]
    writer_ratio = large["writer_mib"] / max(small["writer_mib"], 1e-9)
    rows = "\n".join(
        f"| {count:,} | {f['peak_mib']:.1f} MiB | {f['writer_mib']:.1f} MiB |"
        f" {f['bytes'] / count:.0f} | {count / f['s']:,.0f} |"
        for count, f in ((args.small, small), (args.large, large))
    )
    body = (
        f"`stream_sms_bulk(..., job=)` over a generator with a fresh `SqliteLedger`, in a"
        f" fresh process each; an in-process gateway answering at once. {machine()}.\n\n"
        "| recipients | peak RSS | its writer process's peak RSS | ledger bytes per recipient"
        " | recipients/s |\n"
        f"|---:|---:|---:|---:|---:|\n{rows}\n\n"
        f"Peak RSS ratio {args.large:,} / {args.small:,}: {ratio:.2f} (flat: within 10%,"
        f" {'met' if ratio <= 1.10 else 'NOT met'}); the writer process's:"
        f" {writer_ratio:.2f} ({'met' if writer_ratio <= 1.10 else 'NOT met'})."
    )
    print(body)
    if not args.no_write:
        write_section("Ledger memory", body)


if __name__ == "__main__":
    main()
