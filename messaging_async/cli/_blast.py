"""A personalised blast from a CSV file, for the command line and the demo (what it prints
at the end and while it runs: ``_summary``).

Rows are streamed, never all held: each row rides on its message as ``ref`` until its
outcome comes back, and every recipient that was not accepted is written to a CSV the
user can fix and resend (``_csvfiles``). Ctrl-C or SIGTERM stops the reading, lets the
requests in flight finish for up to ``grace`` seconds (a second signal: at once), and
still writes every row read and prints the summary: an interrupted blast must say what
the gateway has, or the user resends what was already delivered.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol, TextIO, TypeVar, cast

import anyio
from anyio.abc import TaskStatus

from .._checks import MAX_CONCURRENCY_LIMIT
from .._stream import BulkStream
from ..errors import ValidationError
from ..isms import IsmsClient
from ..models import Outcome, Sms, WhatsAppTemplate
from ..phone import calling_code, normalize_number
from ..smscommy import SmsComMyClient
from ..text import Encoding, choose_encoding, estimate_credits
from ._csvfiles import PHONE_COLUMNS, RESEND_COLUMNS, CsvSource, ResendFiles, WhatsAppCsvSource
from ._jobs import add_job_arguments, by_position, ledger_path, open_ledger
from ._summary import INTERRUPTED, BlastSummary, Progress, print_summary

__all__ = [
    "INTERRUPTED",
    "PHONE_COLUMNS",
    "RESEND_COLUMNS",
    "BlastSummary",
    "CsvSource",
    "Progress",
    "dry_run",
    "print_summary",
    "run_blast",
]

Sender = IsmsClient | SmsComMyClient
Source = CsvSource | WhatsAppCsvSource
DEFAULT_GRACE = 30.0


BLAST_HELP = """Send a personalised SMS to every row of a UTF-8 CSV file. Rows not accepted
are written to two files: CSV.not_accepted.csv (rejected or not sent: fix and resend it)
and CSV.unknown.csv (the gateway may have sent them: do not resend these blindly; iSMS
needs --resend-unknown for them, sms.com.my reuses their seqno). Either file can be given
back as CSV; the status/code/reason/seqno columns are dropped on reading. Ctrl-C or
SIGTERM stops reading, waits --grace seconds for requests in flight, writes both files and
exits 130. With --job NAME the blast is journalled in a ledger (--ledger, default
messaging-async.db): running the same command again resumes it, sending nothing already
accepted or possibly sent, and both files then list what the ledger holds for every row.
Exit codes: 0 all accepted, 1 some not accepted, 2 error."""


def add_blast_arguments(blast: argparse.ArgumentParser) -> None:
    blast.description = BLAST_HELP
    blast.add_argument("csv", type=Path)
    blast.add_argument(
        "--text",
        required=True,
        help='a template such as "Hi {name}": plain {column} fields of the CSV only',
    )
    add_row_arguments(blast, concurrency=10, seqno=True)


def add_row_arguments(blast: argparse.ArgumentParser, *, concurrency: int, seqno: bool) -> None:
    """What every blast of a CSV's rows takes (``sms blast``, ``whatsapp blast``); ``seqno``:
    whether the command can go through sms.com.my (``--gateway``), whose seqno makes a
    resent unknown row safe; without it the help must not point to that road."""
    blast.add_argument(
        "--dry-run", action="store_true", help="show what would be sent; send nothing"
    )
    blast.add_argument("--phone-column", help="the CSV column with the numbers (default: detected)")
    blast.add_argument(
        "--resend-csv",
        type=Path,
        help="where to write rows rejected or not sent, to fix and resend "
        "(default: CSV.not_accepted.csv)",
    )
    blast.add_argument(
        "--unknown-csv",
        type=Path,
        help="where to write rows the gateway may have sent (no usable answer): do not "
        "resend these blindly"
        + (
            "; with --gateway smscommy, resending this file within 24 hours reuses each "
            "row's seqno, so the gateway drops duplicates"
            if seqno
            else ""
        )
        + " (default: CSV.unknown.csv)",
    )
    blast.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        help="on Ctrl-C/SIGTERM, seconds to let requests in flight finish (default: %(default)s)",
    )
    blast.add_argument(
        "--resend-unknown",
        action="store_true",
        help="send rows a previous blast marked unknown although iSMS may have delivered "
        "them already"
        + (" (sms.com.my needs no such flag: the seqno prevents duplicates)" if seqno else ""),
    )
    blast.add_argument(
        "--concurrency",
        type=_concurrency,
        default=concurrency,
        help="requests at a time (default: %(default)s)",
    )
    add_job_arguments(blast)


def _concurrency(value: str) -> int:
    """``--concurrency`` checked as the option it is: the client's own check would name
    ``max_concurrency``, an argument a CLI user never sees."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_CONCURRENCY_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number from 1 to {MAX_CONCURRENCY_LIMIT}"
        )
    return number


async def blast_command(
    args: argparse.Namespace, make_client: Callable[[argparse.Namespace], Sender]
) -> int:
    """``sms blast``: a dry run, or the blast and its summary; the exit code."""
    source = CsvSource(
        args.csv, args.text, args.phone_column, reuse_seqno=args.gateway == "smscommy"
    )
    per_request = 50 if args.gateway == "isms" else 1
    if args.dry_run:
        return dry_run(
            source, default_country=args.default_country, per_request=per_request, out=sys.stdout
        )
    return await send_rows(args, source, make_client)


async def send_rows(
    args: argparse.Namespace, source: Source, make_client: Callable[[argparse.Namespace], Sender]
) -> int:
    """The blast of ``source``'s rows, after checking what could go wrong before the first
    request, and its summary; the exit code (``sms blast`` and ``whatsapp blast``)."""
    reuse_seqno = isinstance(source, CsvSource) and source.reuse_seqno
    if source.unknown_rows and not reuse_seqno and not args.resend_unknown:
        raise ValidationError(
            f"{source.unknown_rows:,} rows of {args.csv.name} are marked unknown: the gateway "
            "may have delivered them already and iSMS has no idempotency key; check the "
            "delivery reports, then pass --resend-unknown to send them again anyway",
            field="csv",
        )
    resend = args.resend_csv or args.csv.with_suffix(".not_accepted.csv")
    unknown = args.unknown_csv or args.csv.with_suffix(".unknown.csv")
    if len({path.resolve() for path in (args.csv, resend, unknown)}) < 3:
        raise ValidationError(
            "the recipients file, --resend-csv and --unknown-csv must be three files",
            field="resend_csv",
        )
    if not (math.isfinite(args.grace) and args.grace >= 0):
        raise ValidationError(
            "--grace must be a finite number of seconds, 0 or more", field="grace"
        )
    async with open_ledger(args), make_client(args) as client:
        summary = await run_blast(
            client,
            source,
            resend_path=resend,
            unknown_path=unknown,
            progress=Progress(source.count()),
            grace=args.grace,
            job=args.job,
            resend_unknown=args.resend_unknown,
        )
    summary.ledger = ledger_path(args) if args.job else None
    print_summary(summary, sys.stdout)
    return summary.exit_code


def dry_run(
    source: CsvSource, *, default_country: str | None, per_request: int, out: TextIO
) -> int:
    """What a blast would send, without sending: recipients, requests, encodings, credits."""
    counts: Counter[Encoding] = Counter()
    credits = 0
    unfilled: list[Outcome] = []  # rows the template cannot be filled from
    numbers = NumberCheck(default_country)
    for message in numbers.valid(source.messages(unfilled.append)):
        encoding = choose_encoding(message.text)
        counts[encoding] += 1
        credits += estimate_credits(message.text, encoding)
    requests = sum(math.ceil(n / per_request) for n in counts.values())
    invalid = numbers.invalid
    recipients = sum(counts.values()) + invalid + len(unfilled)
    unusable = f", {len(unfilled):,} missing a template column" if unfilled else ""
    print(
        f"recipients:        {recipients:,} ({invalid:,} with invalid numbers{unusable})",
        file=out,
    )
    print(
        f"encodings:         GSM {counts[Encoding.GSM]:,} · Unicode {counts[Encoding.UNICODE]:,}",
        file=out,
    )
    print(
        f"requests:          {requests:,} (≤ {per_request} recipients, one encoding each)", file=out
    )
    print(f"estimated credits: {credits:,}", file=out)
    print("nothing was sent (dry run)", file=out)
    return 0


class _Addressed(Protocol):
    @property
    def to(self) -> str: ...


M = TypeVar("M", bound=_Addressed)


class NumberCheck:
    """A dry run's number check, as the send makes it: the messages whose number
    normalises (with the default country's calling code), the others counted."""

    def __init__(self, default_country: str | None):
        self.code = None if default_country is None else calling_code(default_country)
        self.invalid = 0

    def valid(self, messages: Iterable[M]) -> Iterator[M]:
        for message in messages:
            try:
                normalize_number(message.to, default_calling_code=self.code)
            except ValidationError:
                self.invalid += 1
                continue
            yield message


async def run_blast(
    sender: IsmsClient | SmsComMyClient,
    source: Source,
    *,
    resend_path: Path,
    unknown_path: Path,
    progress: Progress,
    grace: float = DEFAULT_GRACE,
    job: str | None = None,
    resend_unknown: bool = False,
) -> BlastSummary:
    """Send every row, drawing progress; rows not accepted go to ``resend_path``, those
    whose fate is unknown to ``unknown_path``. Every outcome is recorded through the
    ``on_outcome`` hook, which also sees those settled while the blast is cancelled.

    Under ``job`` (the client has a ledger) each row is keyed by its position in the file,
    and every outcome comes from or through the ledger: the files list what it holds."""
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    files = ResendFiles(source.columns, resend_path, unknown_path)
    interrupt = _Interrupt(source, grace)

    def record(outcome: Outcome) -> None:
        counts[outcome.status.value] += 1
        files.write(outcome)
        progress.update(counts.total())

    messages: Iterator[Sms | WhatsAppTemplate] = source.messages(record)
    on_outcome: Callable[[Outcome], None] = record
    if job is not None:
        messages, on_outcome = by_position(messages, record, lambda: source.last_line)

    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as watchers:
            await watchers.start(interrupt.watch)
            try:
                with interrupt.blast:
                    stream = cast(
                        AsyncGenerator[Outcome, None],
                        _stream(sender, source, messages, on_outcome, job, resend_unknown),
                    )
                    async with contextlib.aclosing(stream):
                        async for _ in stream:
                            pass
            except Exception as error:  # re-raised as it is, not in an ExceptionGroup
                failure = error
            finally:
                watchers.cancel_scope.cancel()
    finally:
        files.close()
    if failure is not None:
        raise failure
    progress.done(counts.total())
    return BlastSummary(
        counts,
        time.perf_counter() - started,
        files.written("not_accepted"),
        files.rows["not_accepted"],
        files.written("unknown"),
        files.rows["unknown"],
        interrupted_by=interrupt.signal_name,
        rows_read=source.read,
        rows_total=source.total,
        source=source.path,
        next_line=source.last_line + 1,
        job=job,
    )


def _stream(
    sender: Sender,
    source: Source,
    messages: Iterator[Sms | WhatsAppTemplate],
    on_outcome: Callable[[Outcome], None],
    job: str | None,
    resend_unknown: bool,
) -> BulkStream:
    """The sender's stream for the kind of message ``source`` makes of its rows."""
    if isinstance(source, WhatsAppCsvSource):
        if not isinstance(sender, IsmsClient):
            raise ValidationError("WhatsApp goes through iSMS only", field="gateway")
        return sender.stream_whatsapp_bulk(
            cast(Iterator[WhatsAppTemplate], messages),
            on_outcome=on_outcome,
            job=job,
            resend_unknown=resend_unknown,
        )
    return sender.stream_sms_bulk(
        cast(Iterator[Sms], messages),
        on_outcome=on_outcome,
        job=job,
        resend_unknown=resend_unknown,
    )


class _Interrupt:
    """SIGINT/SIGTERM during a blast: the first stops the reading and bounds the wait for
    requests in flight; a second cancels them (they end ``unknown``, still written)."""

    def __init__(self, source: Source, grace: float):
        self.source, self.grace = source, grace
        self.blast = anyio.CancelScope()
        self.signal_name: str | None = None

    async def watch(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with contextlib.ExitStack() as stack:
            try:
                signals = stack.enter_context(
                    anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
                )
            except (NotImplementedError, ValueError):  # Windows; not the main thread
                task_status.started()
                return
            task_status.started()
            async for number in signals:
                self._on_signal(signal.Signals(number).name)

    def _on_signal(self, name: str) -> None:
        if self.signal_name is not None:
            print(f"\n{name} again: stopping now", file=sys.stderr)
            self.blast.cancel()
            return
        self.signal_name = name
        self.source.stop()
        self.blast.deadline = min(self.blast.deadline, anyio.current_time() + self.grace)
        print(
            f"\n{name}: reading no more rows; waiting up to {self.grace:g} s for the requests "
            "in flight (send it again to stop at once)",
            file=sys.stderr,
        )
