"""Blasts across machines from the command line: ``db migrate``, ``jobs submit|status|
cancel`` and ``worker`` (``messaging_async.workers``).

The database comes from ``--dsn`` or ``$MESSAGING_DSN`` (it may hold a password: never
printed); gateway credentials from each worker's own environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio.to_thread

from ..models import Outcome

GATEWAYS = ("isms", "smscommy")

__all__ = ["add_jobs_commands"]

OK, ERROR = 0, 2


def add_jobs_commands(commands: Any) -> None:
    """Wire ``db migrate``, ``jobs …`` and ``worker`` into the CLI's parser."""
    db: argparse.ArgumentParser = commands.add_parser(
        "db", help="the PostgreSQL database of blasts across machines"
    )
    actions = db.add_subparsers(required=True, metavar="ACTION")
    migrate = actions.add_parser(
        "migrate", help="create or upgrade the ledger's schema and install Procrastinate's"
    )
    _dsn_argument(migrate)
    migrate.add_argument("--schema", help="the ledger's PostgreSQL schema (messaging_ledger)")
    migrate.set_defaults(run=_migrate, is_async=True)
    jobs: argparse.ArgumentParser = commands.add_parser(
        "jobs", help="blasts sent by workers on several machines"
    )
    verbs = jobs.add_subparsers(required=True, metavar="ACTION")
    submit = verbs.add_parser("submit", help="stage a CSV file as a blast and queue its slices")
    submit.add_argument("csv", type=Path)
    submit.add_argument("--job", required=True, help="the blast's name")
    submit.add_argument(
        "--text", required=True, help='a template such as "Hi {name}" (CSV columns)'
    )
    submit.add_argument("--gateway", choices=GATEWAYS, default="isms")
    submit.add_argument("--slice", type=_positive, default=1000, help="recipients per slice")
    submit.add_argument(
        "--phone-column", help="the CSV column with the numbers (default: detected)"
    )
    _dsn_argument(submit)
    submit.set_defaults(run=_submit, is_async=True)
    status = verbs.add_parser("status", help="outcomes, delivery states and slices of a blast")
    status.add_argument("job")
    status.add_argument("--json", action="store_true", help="the JobSummary and slices as JSON")
    _dsn_argument(status)
    status.set_defaults(run=_status, is_async=True)
    cancel = verbs.add_parser("cancel", help="stop a blast: slices not started become not_sent")
    cancel.add_argument("job")
    _dsn_argument(cancel)
    cancel.set_defaults(run=_cancel, is_async=True)
    worker: argparse.ArgumentParser = commands.add_parser(
        "worker", help="send blasts' slices (credentials from this machine's environment)"
    )
    worker.add_argument(
        "--concurrency", type=_positive, default=10, help="requests in flight per gateway"
    )
    worker.add_argument("--slices", type=_positive, default=2, help="slices sent at once")
    worker.add_argument(
        "--stalled-after",
        type=float,
        default=30.0,
        help="seconds without a worker's heartbeat before its slices go to another worker",
    )
    _dsn_argument(worker)
    worker.set_defaults(run=_worker, is_async=True)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _dsn_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", help="a postgresql:// URL (default: $MESSAGING_DSN)")


def dsn_of(args: argparse.Namespace) -> str | None:
    """The database: ``--dsn``, else ``$MESSAGING_DSN``; ``None`` (and a message) if neither."""
    dsn = getattr(args, "dsn", None) or os.environ.get("MESSAGING_DSN")
    if not dsn:
        print("error: give the database with --dsn or $MESSAGING_DSN", file=sys.stderr)
    return dsn


def _needs_postgres() -> bool:
    try:
        import procrastinate  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError:
        print(
            "error: this command needs the postgres extra: pip install 'messaging-async[postgres]'",
            file=sys.stderr,
        )
        return False
    return True


async def _migrate(args: argparse.Namespace) -> int:
    dsn = dsn_of(args)
    if dsn is None or not _needs_postgres():
        return ERROR
    from ..workers._db import migrate_database

    try:
        done = await anyio.to_thread.run_sync(
            lambda: migrate_database(dsn, schema=args.schema), abandon_on_cancel=True
        )
    except Exception as error:  # psycopg's errors name the server, never the password
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return ERROR
    steps = (
        f"version {done.ledger_from} -> {done.ledger_to}"
        if done.ledger_from != done.ledger_to
        else f"version {done.ledger_to}, up to date"
    )
    print(f"ledger schema: {steps}")
    print(
        "procrastinate schema: "
        + ("installed" if done.procrastinate_installed else "present, left as it is")
    )
    return OK


async def _submit(args: argparse.Namespace) -> int:
    dsn = dsn_of(args)
    if dsn is None or not _needs_postgres():
        return ERROR
    from ..workers import submit_blast
    from ._csvfiles import CsvSource

    source = CsvSource(args.csv, args.text, args.phone_column)
    invalid: list[Outcome] = []
    blast = await submit_blast(
        dsn, args.job, source.messages(invalid.append), gateway=args.gateway, slice_size=args.slice
    )
    for outcome in invalid[:10]:
        print(f"not submitted: {outcome.reason}", file=sys.stderr)
    if len(invalid) > 10:
        print(f"... and {len(invalid) - 10} more rows not submitted", file=sys.stderr)
    print(
        f"job {blast.name}: {blast.total} recipients in {blast.slices} slices of "
        f"{blast.slice_size} on {blast.gateway}; run `messaging-async worker` on any machine, "
        f"follow with `messaging-async jobs status {blast.name}`"
    )
    return OK


async def _status(args: argparse.Namespace) -> int:
    dsn = dsn_of(args)
    if dsn is None or not _needs_postgres():
        return ERROR
    from .._convert import to_json
    from ..workers import blast_status

    status = await blast_status(dsn, args.job)
    if status is None:
        print(f"error: no blast named {args.job!r}", file=sys.stderr)
        return ERROR
    if args.json:
        data = to_json(status.summary)
        data.update(slices=dict(status.slices), state=status.blast.state)
        if status.blast.reason:
            data["reason"] = status.blast.reason
        print(json.dumps(data, indent=2))
        return OK
    summary, blast = status.summary, status.blast
    stopped = f" ({blast.reason})" if blast.reason else ""
    print(f"job {blast.name} on {blast.gateway}: {blast.state}{stopped}")
    print(f"slices: {_counts(status.slices)}")
    print(
        f"recipients: {blast.total} submitted, {summary.total} with an outcome, "
        f"{summary.in_flight} in flight"
    )
    print(f"outcomes: {_counts(summary.outcomes)}")
    print(f"delivery: {_counts({k: v for k, v in summary.delivery.items() if v}) or 'none yet'}")
    return OK


def _counts(counts: Any) -> str:
    return ", ".join(f"{count} {state}" for state, count in counts.items())


async def _cancel(args: argparse.Namespace) -> int:
    dsn = dsn_of(args)
    if dsn is None or not _needs_postgres():
        return ERROR
    from ..workers import cancel_blast

    cancelled = await cancel_blast(dsn, args.job)
    if cancelled is None:
        print(f"error: no blast named {args.job!r}", file=sys.stderr)
        return ERROR
    print(
        f"job {args.job} cancelled: {cancelled} slices not started are not_sent; slices being "
        "sent finish their requests in flight and stop"
    )
    return OK


async def _worker(args: argparse.Namespace) -> int:
    dsn = dsn_of(args)
    if dsn is None or not _needs_postgres():
        return ERROR
    from ..workers import run_worker

    def ready() -> None:
        print("worker ready: sending slices (SIGTERM to stop)", flush=True)

    await run_worker(
        dsn,
        concurrency=args.concurrency,
        slices=args.slices,
        stalled_after=args.stalled_after,
        ready=ready,
    )
    print("worker stopped", flush=True)
    return OK
