"""A personalised blast from a CSV file, for the command line and the demo.

Rows are streamed, never all held: each row rides on its message as ``ref`` until its
outcome comes back, and every recipient that was not accepted is written to a CSV the
user can fix and resend.
"""

from __future__ import annotations

import csv
import math
import string
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import anyio
from attrs import define

from ..errors import ValidationError
from ..isms import IsmsClient
from ..models import Outcome, OutcomeStatus, Sms
from ..phone import normalize_number
from ..smscommy import SmsComMyClient
from ..text import Encoding, choose_encoding, estimate_credits

PHONE_COLUMNS = ("phone", "mobile", "number", "to", "dstno", "msisdn")
RESEND_COLUMNS = ("status", "code", "reason", "seqno")


@define
class BlastSummary:
    counts: Counter[str]
    seconds: float
    resend_path: Path | None
    resend_rows: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def exit_code(self) -> int:
        """0 all accepted, 1 partly, 2 none (of a non-empty file)."""
        accepted = self.counts[OutcomeStatus.ACCEPTED.value]
        if accepted == self.total:
            return 0
        return 1 if accepted else 2


class CsvSource:
    """A recipients file: its phone column, and the text template checked against it."""

    def __init__(self, path: Path, template: str, phone_column: str | None = None):
        self.path, self.template = path, template
        with self._open() as handle:
            header = next(csv.reader(handle), None)
        if not header:
            raise ValidationError(f"{path} has no header row", field="csv")
        self.columns = header
        self.phone_column = phone_column or _find_phone_column(header)
        missing = sorted(_fields(template) - set(header))
        if missing:
            raise ValidationError(
                f"the text uses {', '.join('{' + m + '}' for m in missing)}, which "
                f"{path.name} lacks; its columns are {', '.join(header)}",
                field="text",
            )

    def _open(self) -> TextIO:
        return self.path.open(newline="", encoding="utf-8-sig")

    def rows(self) -> Iterator[dict[str, str]]:
        with self._open() as handle:
            yield from csv.DictReader(handle)

    def count(self) -> int:
        with self._open() as handle:
            return max(0, sum(1 for _ in csv.reader(handle)) - 1)

    def messages(self) -> Iterator[Sms]:
        for row in self.rows():
            yield Sms(
                to=row.get(self.phone_column) or "", text=self.template.format_map(row), ref=row
            )


def _find_phone_column(header: list[str]) -> str:
    for column in header:
        if column.strip().lower() in PHONE_COLUMNS:
            return column
    raise ValidationError(
        f"no phone column: name one {', '.join(PHONE_COLUMNS)} or pass --phone-column", field="csv"
    )


def _fields(template: str) -> set[str]:
    try:
        return {
            name.split(".")[0].split("[")[0]
            for _, name, _, _ in string.Formatter().parse(template)
            if name
        }
    except ValueError as error:
        raise ValidationError(f"the text template is malformed: {error}", field="text") from None


def dry_run(
    source: CsvSource, *, default_country: str | None, per_request: int, out: TextIO
) -> int:
    """What a blast would send, without sending: recipients, requests, encodings, credits."""
    counts: Counter[Encoding] = Counter()
    credits, invalid = 0, 0
    code = None if default_country is None else _calling(default_country)
    for message in source.messages():
        try:
            normalize_number(message.to, default_calling_code=code)
        except ValidationError:
            invalid += 1
            continue
        encoding = choose_encoding(message.text)
        counts[encoding] += 1
        credits += estimate_credits(message.text, encoding)
    requests = sum(math.ceil(n / per_request) for n in counts.values())
    print(
        f"recipients:        {sum(counts.values()) + invalid:,} ({invalid:,} with invalid numbers)",
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


def _calling(country: str) -> str:
    from ..phone import calling_code

    return calling_code(country)


async def run_blast(
    sender: IsmsClient | SmsComMyClient, source: CsvSource, *, resend_path: Path, progress: Progress
) -> BlastSummary:
    """Send every row, drawing progress, writing the rows not accepted to ``resend_path``."""
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    written = 0
    with resend_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=[*source.columns, *RESEND_COLUMNS], extrasaction="ignore"
        )
        writer.writeheader()
        async for outcome in sender.stream_sms_bulk(source.messages()):
            counts[outcome.status.value] += 1
            if not outcome.ok:
                writer.writerow(_resend_row(outcome))
                written += 1
            progress.update(counts.total())
    progress.done(counts.total())
    if not written:
        await anyio.Path(resend_path).unlink()
    return BlastSummary(
        counts, time.perf_counter() - started, resend_path if written else None, written
    )


def _resend_row(outcome: Outcome) -> dict[str, Any]:
    row = dict(outcome.ref) if isinstance(outcome.ref, dict) else {}
    row.update(
        status=outcome.status.value, code=outcome.code, reason=outcome.reason, seqno=outcome.seqno
    )
    return row


def print_summary(summary: BlastSummary, out: TextIO, credits: Any = None) -> None:
    print(f"{'outcome':<10} {'count':>9}", file=out)
    for status in OutcomeStatus:
        print(f"{status.value:<10} {summary.counts[status.value]:>9,}", file=out)
    rate = summary.total / summary.seconds if summary.seconds else 0.0
    print(
        f"{summary.total:,} recipients in {summary.seconds:.1f} s ({rate:,.0f} messages/s)",
        file=out,
    )
    if credits is not None:
        print(f"credits used (gateway's figure): {credits}", file=out)
    if summary.resend_path is not None:
        print(
            f"not accepted: {summary.resend_rows:,} rows written to {summary.resend_path}", file=out
        )


class Progress:
    """A progress bar with rate and ETA on a terminal; a line per 10% elsewhere (logs, CI)."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30):
        # sys.stderr is looked up now, not at import, so a redirected stderr is honoured.
        self.total, self.stream, self.width = max(total, 1), stream or sys.stderr, width
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._last_tenth = 0  # in logs, a line per further tenth
        self._tty = self.stream.isatty()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if self._tty and now - self._last_draw >= 0.1:
            self._last_draw = now
            self.stream.write("\r" + self.line(done, now))
            self.stream.flush()
        elif not self._tty and done * 10 // self.total > self._last_tenth:
            self._last_tenth = done * 10 // self.total
            print(self.line(done, now), file=self.stream)

    def done(self, done: int) -> None:
        line = self.line(done, time.perf_counter())
        self.stream.write(("\r" + line + "\n") if self._tty else "")
        self.stream.flush()

    def line(self, done: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        filled = min(self.width, done * self.width // self.total)
        eta = (self.total - done) / rate if rate else 0.0
        bar = "#" * filled + "." * (self.width - filled)
        percent = done * 100 // self.total
        return f"[{bar}] {done:,}/{self.total:,} {percent:3d}% {rate:,.0f} msg/s ETA {eta:.0f}s"
