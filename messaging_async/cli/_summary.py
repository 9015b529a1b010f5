"""What a blast tells its user when it ends, and while it runs: the summary of outcomes
(with how to resume an interrupted journalled job), and a progress line.

Split from ``_blast`` (which runs the blast) so the running and the telling can change apart.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from attrs import define

from ..models import OutcomeStatus

__all__ = ["INTERRUPTED", "BlastSummary", "Progress", "print_summary"]

INTERRUPTED = 130  # 128 + SIGINT, as shells report it


@define
class BlastSummary:
    counts: Counter[str]
    seconds: float
    resend_path: Path | None
    resend_rows: int
    unknown_path: Path | None = None
    unknown_rows: int = 0
    interrupted_by: str | None = None
    rows_read: int = 0
    rows_total: int = 0
    source: Path | None = None
    next_line: int = 0
    job: str | None = None
    ledger: Path | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def exit_code(self) -> int:
        """130 interrupted; else 0 all accepted, 1 some (or all) recipients not accepted.
        2 is for errors (arguments, files, template), raised before a summary exists."""
        if self.interrupted_by is not None:
            return INTERRUPTED
        return 0 if self.counts[OutcomeStatus.ACCEPTED.value] == self.total else 1


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
    if summary.interrupted_by is not None:
        unread = max(0, summary.rows_total - summary.rows_read)
        name = summary.source.name if summary.source else "the file"
        print(
            f"interrupted by {summary.interrupted_by}: read {summary.rows_read:,} of "
            f"{summary.rows_total:,} rows; the other {unread:,} (from line "
            f"{summary.next_line:,} of {name}) were not read and not sent",
            file=out,
        )
    if summary.interrupted_by is not None and summary.job is not None:
        print(
            f"the ledger {summary.ledger} holds every outcome so far; to resume job "
            f"{summary.job!r}, run the same command again: rows already settled are not sent "
            "again",
            file=out,
        )
    if summary.resend_path is not None:
        print(
            f"not accepted: {summary.resend_rows:,} rows written to {summary.resend_path} "
            f"(rejected or not sent: {_resend_advice(summary)})",
            file=out,
        )
    if summary.unknown_path is not None:
        print(
            f"unknown: {summary.unknown_rows:,} rows written to {summary.unknown_path}: the "
            "gateway may have sent them; do not resend these blindly",
            file=out,
        )


def _resend_advice(summary: BlastSummary) -> str:
    """How to send the not-accepted rows again. A journalled blast keys each row by its line
    in the file: the not-accepted file run under the same job would put its rows at other
    rows' lines, each one "input changed" and not sent."""
    if summary.job is None:
        return "fix and resend"
    name = summary.source.name if summary.source else "the file"
    return (
        "the same command sends the not-sent ones again; send fixed rows under a new --job, "
        f"as job {summary.job!r} keys rows by their line in {name}"
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
