"""The CSV files of a blast: the recipients read, and the rows written back for the user.

A recipients file is checked whole before anything is sent (it must exist, be UTF-8 and
have the columns the template names), then streamed row by row. The rows that were not
accepted go to two files, never one: ``not_accepted`` (``rejected`` and ``not_sent``:
fix and resend) and ``unknown`` (the gateway may have sent them: resending can deliver
twice). Either file can be given back as the recipients file: the columns this module
adds (``RESEND_COLUMNS``) are recognised and dropped, so they never double up.
"""

from __future__ import annotations

import contextlib
import csv
import string
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Generic, TextIO, TypeVar

from ..errors import ValidationError
from ..models import Outcome, OutcomeStatus, Sms, WhatsAppTemplate

PHONE_COLUMNS = ("phone", "mobile", "number", "to", "dstno", "msisdn")
RESEND_COLUMNS = ("status", "code", "reason", "seqno")

Record = Callable[[Outcome], None]
Message = TypeVar("Message", Sms, WhatsAppTemplate)


class _CsvRows(Generic[Message]):
    """A recipients file read as messages: its header, its phone column, the columns a
    message is filled from (``fields``, checked before anything is sent), and the rows,
    streamed. ``_build`` makes a row's message (a text template's SMS, a WhatsApp template).
    """

    fields: tuple[str, ...] = ()

    def __init__(self, path: Path, phone_column: str | None = None) -> None:
        self.path = path
        self.header = self._read_header()
        self.columns = _without_added_columns(self.header)
        if phone_column is not None and phone_column not in self.columns:
            raise ValidationError(
                f"{path.name} has no column {phone_column!r}; its columns are "
                f"{', '.join(self.columns)}",
                field="phone_column",
            )
        self.phone_column = phone_column or _find_phone_column(self.columns)
        # Reading it all now finds a bad byte before anything is sent.
        self.total, self.unknown_rows = self._count()
        self.read = 0  # rows handed on so far
        self.last_line = 1  # the file line the last row read ended on
        self._stopping = False

    def _open(self) -> TextIO:
        try:
            return self.path.open(newline="", encoding="utf-8-sig")
        except OSError as error:
            raise ValidationError(
                f"cannot read {self.path}: {error.strerror or error}", field="csv"
            ) from None

    def _read_header(self) -> list[str]:
        with self._open() as handle, _decoding(self.path):
            header = next(csv.reader(handle), None)
        if not header:
            raise ValidationError(f"{self.path} has no header row", field="csv")
        return header

    def _count(self) -> tuple[int, int]:
        """Rows, and rows a previous blast marked ``unknown`` (0 unless it wrote this file)."""
        status = len(self.columns) if len(self.header) > len(self.columns) else None
        rows = unknown = 0
        with self._open() as handle, _decoding(self.path):
            reader = csv.reader(handle)
            next(reader, None)
            for row in reader:
                if row:
                    rows += 1
                    if status is not None and status < len(row) and row[status] == "unknown":
                        unknown += 1
        return rows, unknown

    def count(self) -> int:
        return self.total

    def stop(self) -> None:
        """Read no further row (Ctrl-C, SIGTERM): what was read is still sent and accounted."""
        self._stopping = True

    @property
    def stopped(self) -> bool:
        return self._stopping

    def messages(self, reject: Record | None = None) -> Iterator[Message]:
        """One message per row, with the row as ``ref``. A row lacking a column its message
        is filled from is given to ``reject`` as a ``rejected`` outcome and not sent."""
        with self._open() as handle, _decoding(self.path):
            reader = csv.reader(handle)
            next(reader, None)
            while not self._stopping:
                values = next(reader, None)
                if values is None:
                    return
                if not values:
                    continue  # a blank line
                self.read, self.last_line = self.read + 1, reader.line_num
                message = self._message(values, reject)
                if message is not None:
                    yield message

    def _message(self, values: list[str], reject: Record | None) -> Message | None:
        given = dict(zip(self.header, values, strict=False))
        row = {column: given.get(column, "") for column in self.columns}
        missing = [name for name in (self.phone_column, *self.fields) if name not in given]
        if missing:
            problem = f"line {self.last_line} has no value for {', '.join(missing)}"
            if reject is not None:
                reject(_rejected(row.get(self.phone_column, ""), problem, row))
            return None
        return self._build(given, row)

    def _build(self, given: dict[str, str], row: dict[str, str]) -> Message:
        raise NotImplementedError


class CsvSource(_CsvRows[Sms]):
    """A recipients file for a text template such as ``"Hi {name}"``, checked against its
    columns; each row becomes an ``Sms``.

    ``reuse_seqno``: a row written to the ``unknown`` file with the seqno it went with is
    sent again with that seqno (sms.com.my: within 24 hours the gateway does not deliver
    it twice). Every other row gets a new one.
    """

    def __init__(
        self,
        path: Path,
        template: str,
        phone_column: str | None = None,
        *,
        reuse_seqno: bool = False,
    ):
        super().__init__(path, phone_column)
        self.template, self.reuse_seqno = template, reuse_seqno
        self._pieces = _check_template(template, self.columns, path)
        self.fields = tuple(sorted({name for _, name in self._pieces if name is not None}))

    def _build(self, given: dict[str, str], row: dict[str, str]) -> Sms:
        seqno = None
        if self.reuse_seqno and given.get("status") == OutcomeStatus.UNKNOWN.value:
            seqno = given.get("seqno") or None
        text = "".join(literal + (given[name] if name else "") for literal, name in self._pieces)
        return Sms(to=given[self.phone_column], text=text, ref=row, seqno=seqno)


class WhatsAppCsvSource(_CsvRows[WhatsAppTemplate]):
    """A recipients file for an approved WhatsApp template: the ``params`` columns fill
    its ``param1``, ``param2``… in that order, each row's own values."""

    def __init__(
        self,
        path: Path,
        template_code: str,
        params: Sequence[str] = (),
        phone_column: str | None = None,
        *,
        language: str = "en",
    ):
        super().__init__(path, phone_column)
        if not template_code:
            raise ValidationError("a template code is needed", field="template_code")
        missing = [name for name in params if name not in self.columns]
        if missing:
            raise ValidationError(
                f"--param-column {', '.join(missing)}: {path.name} has no such column; its columns "
                f"are {', '.join(self.columns)}",
                field="param",
            )
        self.template_code, self.language = template_code, language
        self.fields = tuple(params)

    def _build(self, given: dict[str, str], row: dict[str, str]) -> WhatsAppTemplate:
        params = [given[name] for name in self.fields] or None
        return WhatsAppTemplate(
            to=given[self.phone_column],
            template_code=self.template_code,
            language=self.language,
            params=params,
            ref=row,
        )


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Turns a decoding or CSV error into one line naming the file."""
    try:
        yield
    except UnicodeDecodeError as error:
        raise ValidationError(
            f"{path} is not UTF-8 text (byte 0x{error.object[error.start]:02x} cannot be "
            "decoded); save it as UTF-8 CSV",
            field="csv",
        ) from None
    except csv.Error as error:
        raise ValidationError(f"{path} is not a readable CSV file: {error}", field="csv") from None


def _rejected(to: str, problem: str, row: dict[str, str]) -> Outcome:
    return Outcome(
        to=to, status=OutcomeStatus.REJECTED, reason=f"invalid input: {problem}", ref=row
    )


def _without_added_columns(header: list[str]) -> list[str]:
    """The recipients' own columns: those this module appended to a file it wrote go."""
    added = list(RESEND_COLUMNS)
    while len(header) > len(added) and header[-len(added) :] == added:
        header = header[: -len(added)]
    return header


def _find_phone_column(header: list[str]) -> str:
    for column in header:
        if column.strip().lower() in PHONE_COLUMNS:
            return column
    raise ValidationError(
        f"no phone column: name one {', '.join(PHONE_COLUMNS)} or pass --phone-column", field="csv"
    )


Pieces = list[tuple[str, str | None]]  # (literal text, then the column after it or None)


def _check_template(template: str, columns: list[str], path: Path) -> Pieces:
    """The template as literal text and the columns it names; a malformed template, or one
    naming a column the file lacks, is refused before anything is sent.

    Only plain ``{column}`` fields: ``str.format`` would also do ``{name.__class__}``,
    ``{name[0]}``, ``{name!r}`` and ``{name:…}`` (a spec may nest further fields), which
    send what no column holds; the rows are filled by ``_message``, not ``format``."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValidationError(f"the text template is malformed: {error}", field="text") from None
    pieces: Pieces = []
    for literal, name, spec, conversion in parsed:
        if name == "" or (name is not None and name.isdigit()):
            raise ValidationError(
                "the text template has a positional field ({} or {0}): name a column, e.g. {name}",
                field="text",
            )
        if name is not None and (spec or conversion or any(c in name for c in ".[]")):
            raise ValidationError(
                "the text template is malformed: only plain {column} fields are allowed "
                "(no attribute, index, conversion or format spec)",
                field="text",
            )
        pieces.append((literal, name))
    missing = sorted({name for _, name in pieces if name is not None} - set(columns))
    if missing:
        raise ValidationError(
            f"the text uses {', '.join('{' + m + '}' for m in missing)}, which "
            f"{path.name} lacks; its columns are {', '.join(columns)}",
            field="text",
        )
    return pieces


class ResendFiles:
    """The rows not accepted, written as outcomes arrive: ``unknown`` apart from the rest.

    Both files are created at once (a path that cannot be written fails before anything
    is sent); one that stays empty is removed on ``close``.
    """

    def __init__(self, columns: list[str], not_accepted: Path, unknown: Path):
        self.paths = {"not_accepted": not_accepted, "unknown": unknown}
        self.rows = dict.fromkeys(self.paths, 0)
        self._handles: dict[str, TextIO] = {}
        self._writers: dict[str, csv.DictWriter[str]] = {}
        fieldnames = [*columns, *RESEND_COLUMNS]
        try:
            for kind, path in self.paths.items():
                self._handles[kind] = path.open("w", newline="", encoding="utf-8")
                writer = csv.DictWriter(
                    self._handles[kind], fieldnames=fieldnames, extrasaction="ignore"
                )
                writer.writeheader()
                self._writers[kind] = writer
        except OSError as error:
            self.close()
            raise ValidationError(
                f"cannot write {error.filename}: {error.strerror or error}", field="resend_csv"
            ) from None

    def write(self, outcome: Outcome) -> None:
        if outcome.ok:
            return
        kind = "unknown" if outcome.status is OutcomeStatus.UNKNOWN else "not_accepted"
        row = dict(outcome.ref) if isinstance(outcome.ref, dict) else {}
        row.update(
            status=outcome.status.value,
            code=outcome.code,
            reason=outcome.reason,
            seqno=outcome.seqno,
        )
        self._writers[kind].writerow(row)
        self.rows[kind] += 1

    def close(self) -> None:
        for kind, handle in self._handles.items():
            handle.close()
            if not self.rows[kind]:
                self.paths[kind].unlink(missing_ok=True)
        self._handles.clear()

    def written(self, kind: str) -> Path | None:
        """The file ``kind`` rows were written to, or ``None`` when there were none."""
        return self.paths[kind] if self.rows[kind] else None
