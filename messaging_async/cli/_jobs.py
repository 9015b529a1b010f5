"""Blasts across machines from the command line: ``db migrate`` now; ``jobs …`` and
``worker`` with ``messaging_async.workers``.

The database comes from ``--dsn`` or ``$MESSAGING_DSN`` (it may hold a password: never
printed); gateway credentials from each worker's own environment.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import anyio.to_thread

__all__ = ["add_jobs_commands"]

OK, ERROR = 0, 2


def add_jobs_commands(commands: Any) -> None:
    """Wire ``db migrate`` into the CLI's parser."""
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
