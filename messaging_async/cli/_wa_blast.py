"""``whatsapp blast``: an approved WhatsApp template to every row of a CSV file.

The same road as ``sms blast`` (``_blast.send_rows``: the rows streamed, the two files of
rows not accepted, Ctrl-C's grace, ``--job`` to resume from the ledger), with each row a
``WhatsAppTemplate`` whose ``param1``, ``param2``… come from the ``--param-column``
columns. Templates are charged per message: a row left ``unknown`` by a crash is never
sent again by a resume, and a file holding such rows is refused without
``--resend-unknown``, as for iSMS SMS.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..errors import ValidationError
from ..isms._waba import template
from ..models import Outcome
from ._blast import NumberCheck, Sender, add_row_arguments, send_rows
from ._csvfiles import WhatsAppCsvSource

__all__ = ["WHATSAPP_BLAST_HELP", "add_whatsapp_blast_arguments", "whatsapp_blast_command"]

WHATSAPP_BLAST_HELP = """Send an approved WhatsApp template to every row of a UTF-8 CSV
file, through iSMS (ISMS_APP_ID, ISMS_APP_SECRET, ISMS_WABA_NUMBER, and the account's
ISMS_USERNAME and ISMS_PASSWORD or --username and a password). Each --param-column,
in the order given, fills the template's next parameter (param1, param2…) from the row.
Rows not accepted go to CSV.not_accepted.csv and CSV.unknown.csv as for `sms blast`; a
template is charged per message, so rows marked unknown are only sent again with
--resend-unknown. With --job NAME the blast is journalled in a ledger (--ledger, default
messaging-async.db): running the same command again resumes it. Exit codes: 0 all
accepted, 1 some not accepted, 2 error, 130 interrupted."""


def add_whatsapp_blast_arguments(blast: argparse.ArgumentParser) -> None:
    blast.description = WHATSAPP_BLAST_HELP
    blast.add_argument("csv", type=Path)
    blast.add_argument("template_code", help="the approved template's code")
    blast.add_argument("--language", default="en", help="the template's language (default: en)")
    blast.add_argument(
        "--param-column",
        action="append",
        default=[],
        dest="param_columns",
        metavar="COLUMN",
        help="the CSV column that fills the next parameter; repeat for param1, param2…",
    )
    add_row_arguments(blast, concurrency=32, seqno=False)


async def whatsapp_blast_command(
    args: argparse.Namespace, make_client: Callable[[argparse.Namespace], Sender]
) -> int:
    """``whatsapp blast``: a dry run, or the blast and its summary; the exit code."""
    try:  # the same for every row: an argument error, not each row rejected in turn
        template(args.template_code, args.language, None, None)
    except ValidationError as error:
        named = "--language" if error.field == "language" else "TEMPLATE_CODE"
        print(f"error: {named}: {error}", file=sys.stderr)
        return 2
    source = WhatsAppCsvSource(
        args.csv,
        args.template_code,
        args.param_columns,
        args.phone_column,
        language=args.language,
    )
    if args.dry_run:
        return whatsapp_dry_run(source, default_country=args.default_country, out=sys.stdout)
    return await send_rows(args, source, make_client)


def whatsapp_dry_run(source: WhatsAppCsvSource, *, default_country: str | None, out: TextIO) -> int:
    """What a WhatsApp blast would send, without sending: recipients and requests. A row
    the send would refuse (a number, or a parameter empty or unusable: the same check the
    send makes) is not counted as a request."""
    unfilled: list[Outcome] = []  # rows lacking a parameter's column
    valid = unusable = 0
    numbers = NumberCheck(default_country)
    for message in numbers.valid(source.messages(unfilled.append)):
        try:
            template(message.template_code, message.language, message.params, None)
        except ValidationError:
            unusable += 1
            continue
        valid += 1
    problems = f"{numbers.invalid:,} with invalid numbers"
    if unusable:
        problems += f", {unusable:,} with an empty or unusable parameter"
    if unfilled:
        problems += f", {len(unfilled):,} missing a parameter's column"
    recipients = valid + numbers.invalid + unusable + len(unfilled)
    print(f"recipients:        {recipients:,} ({problems})", file=out)
    print(
        f"template:          {source.template_code} ({source.language}), "
        f"{len(source.fields)} parameters from {', '.join(source.fields) or 'no column'}",
        file=out,
    )
    print(f"requests:          {valid:,} (one message each, charged per message)", file=out)
    print("nothing was sent (dry run)", file=out)
    return 0
