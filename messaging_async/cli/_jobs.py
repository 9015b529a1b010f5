"""Journalled blasts on the command line: ``--job NAME [--ledger PATH]``.

The CLI keys a journalled row by its line in the file (the row itself is not a ``ref``
the ledger can keep; its line number is), and brings the row back to its outcome by its
position in the run, so the not-accepted and unknown files are written from what the
ledger decided. Not by its position among the rows sent: a row too short to fill the
message is rejected before the runner sees it, and fixed in place it would shift every
later row onto another's key (one that landed where an invalid number had been, which
claims nothing, was sent twice).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

from attrs import evolve

from ..ledger import SqliteLedger
from ..models import Outcome, Sms, WhatsAppTemplate

__all__ = ["DEFAULT_LEDGER", "add_job_arguments", "by_position", "ledger_path", "open_ledger"]

DEFAULT_LEDGER = Path("messaging-async.db")
Message = TypeVar("Message", bound=Sms | WhatsAppTemplate)


def add_job_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--job", help="journal the blast under this name: run it again to resume it"
    )
    add_ledger_argument(command)


def add_ledger_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument("--ledger", type=Path, help=f"the ledger file (default: {DEFAULT_LEDGER})")


def ledger_path(args: argparse.Namespace) -> Path:
    path: Path | None = getattr(args, "ledger", None)
    return path or DEFAULT_LEDGER


@contextlib.asynccontextmanager
async def open_ledger(args: argparse.Namespace) -> AsyncIterator[None]:
    """With ``--job``, the ledger the client is made with (``args.ledger_store``)."""
    if getattr(args, "job", None) is None:
        args.ledger_store = None
        yield
        return
    async with SqliteLedger(ledger_path(args)) as ledger:
        args.ledger_store = ledger
        try:
            yield
        finally:
            args.ledger_store = None


def by_position(
    messages: Iterator[Message], record: Callable[[Outcome], None], line: Callable[[], int]
) -> tuple[Iterator[Message], Callable[[Outcome], None]]:
    """``messages`` keyed by their line in the file (``line()`` as each is read, as the
    ``ref``), and a hook that gives each outcome its row back before ``record`` writes it."""
    rows: dict[int, object] = {}

    def keyed() -> Iterator[Message]:
        for index, message in enumerate(messages):
            rows[index] = message.ref
            yield evolve(message, ref=line())

    def restore(outcome: Outcome) -> None:
        record(evolve(outcome, ref=rows.pop(outcome.index, None)))

    return keyed(), restore
