"""``messaging-async report NAME``: what a journalled job became, read from the ledger.

A table of outcomes and of the accepted messages' delivery states; the recipients that
need attention (not accepted, or not delivered) below it. ``--json`` prints the summary
and every record (through the SDK's one converter, ``_convert``); ``--csv OUT`` writes
every record to a file. Message texts never leave the ledger here.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import attrs

from .._convert import to_json
from ..ledger import JobSummary, LedgerRecord, SqliteLedger
from ._jobs import DEFAULT_LEDGER, add_ledger_argument, ledger_path

__all__ = ["add_report_command"]

SHOWN = 50  # records needing attention printed under the table; --csv for all
_GOOD_DELIVERY = {None, "delivered", "read", "sent", "queued", "no_report_expected"}


def add_report_command(commands: Any) -> None:
    report: argparse.ArgumentParser = commands.add_parser(
        "report", help="a journalled job's outcomes and delivery states, from the ledger"
    )
    report.add_argument("job", metavar="NAME")
    add_ledger_argument(report)
    out = report.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="the summary and every record as JSON")
    out.add_argument("--csv", type=Path, metavar="OUT", help="write every record to OUT")
    report.set_defaults(run=run_report, is_async=True)


async def run_report(args: argparse.Namespace) -> int:
    path = ledger_path(args)
    if not path.exists():
        print(f"error: no ledger at {path} (default: {DEFAULT_LEDGER})", file=sys.stderr)
        return 2
    async with SqliteLedger(path) as ledger:
        summary = await ledger.summary(args.job)
        if summary.total == 0 and summary.in_flight == 0:
            print(f"error: the ledger {path} has no job {args.job!r}", file=sys.stderr)
            return 2
        records = [record async for record in ledger.records(args.job)]
    if args.json:
        data = {"summary": to_json(summary), "records": [to_json(r) for r in records]}
        print(json.dumps(data, ensure_ascii=False, indent=2))
    elif args.csv is not None:
        write_csv(records, args.csv)
        print_table(summary, sys.stdout)
        print(f"{len(records):,} records written to {args.csv}")
    else:
        print_table(summary, sys.stdout)
        print_attention(records, sys.stdout)
    return 0


def print_table(summary: JobSummary, out: TextIO) -> None:
    print(f"job {summary.job!r}: {summary.total:,} recipients", file=out)
    print(f"{'outcome':<20} {'count':>9}", file=out)
    for status, count in summary.outcomes.items():
        print(f"{status:<20} {count:>9,}", file=out)
    if summary.in_flight:
        print(f"{'in flight':<20} {summary.in_flight:>9,}", file=out)
    print(f"{'delivery (accepted)':<20} {'count':>9}", file=out)
    for state, count in summary.delivery.items():
        if count:
            print(f"{state:<20} {count:>9,}", file=out)


def _needs_attention(record: LedgerRecord) -> bool:
    accepted = record.outcome is not None and record.outcome.value == "accepted"
    return not accepted or record.delivery not in _GOOD_DELIVERY


def print_attention(records: list[LedgerRecord], out: TextIO) -> None:
    flagged = [r for r in records if _needs_attention(r)]
    if not flagged:
        return
    print(f"{'index':>7} {'recipient':<15} {'outcome':<10} {'delivery':<15} reason", file=out)
    for record in flagged[:SHOWN]:
        outcome = record.outcome.value if record.outcome is not None else "in flight"
        print(
            f"{record.index if record.index is not None else '':>7} {record.recipient:<15} "
            f"{outcome:<10} {record.delivery or '':<15} {record.reason or ''}",
            file=out,
        )
    if len(flagged) > SHOWN:
        print(f"… {len(flagged) - SHOWN:,} more (--csv OUT writes every record)", file=out)


def write_csv(records: list[LedgerRecord], path: Path) -> None:
    names = [f.name for f in attrs.fields(LedgerRecord) if f.name != "text"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow(to_json(record))
