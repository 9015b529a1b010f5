"""The ledger's value types: what the runner hands in, what it gets back, what users query.

Pure: no storage here. ``Entry`` is a named tuple because the runner makes one per
recipient (a tuple is built in C); its ``content`` (the text or template) is kept out of
its repr, since texts hold OTPs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple, overload

from attrs import field, frozen

from ..models import Outcome, OutcomeStatus, recipient_outcome
from ..phone import mask_number

__all__ = [
    "IN_FLIGHT",
    "KEYS_JOB",
    "MAX_KEY_BYTES",
    "NO_REPORT_EXPECTED",
    "REF_REFUSED",
    "Entry",
    "JobSummary",
    "LedgerRecord",
    "Plan",
    "UnitEntries",
    "all_none",
    "decode_key",
    "key_of",
    "refused_key",
    "repeat_key",
]

IN_FLIGHT = "in_flight"
"""A row's state between its write-ahead claim and its outcome."""

NO_REPORT_EXPECTED = "no_report_expected"
"""The delivery state of a send that asked for no report (sms.com.my NoDR)."""

KEYS_JOB = ""
"""The job-less namespace of idempotent single sends (``key=``)."""

MAX_KEY_BYTES = 1024
"""The longest ``ref`` (UTF-8) or single-send ``key`` the ledger keeps. Keys are indexed:
a PostgreSQL index entry holds at most ~2,700 bytes (6,000 random characters made every
claim of their unit fail), and SQLite's would be slow to compare; an ``int`` ref is kept
up to 989 digits (``_INT_BOUND``)."""

_INT_BOUND = 10**989  # an int ref's key stays under MAX_KEY_BYTES (and Python's 4,300 digits)

REF_REFUSED = (
    "rejected: a journalled recipient's ref must be a str of at most 1,024 bytes (UTF-8) "
    "or an int of at most 989 digits"
)


def all_none(refs: Sequence[Any]) -> bool:
    """Whether every one of ``refs`` is ``None``: counted in C (``count`` meets ``None`` by
    identity first; no object made). A caller's ref whose ``==`` answers something with no
    truth value (``pandas.NA``, as a DataFrame's row gives it) is not ``None``: ``count``
    raised for it, and that failed its whole unit's claim instead of refusing its one
    recipient (``REF_REFUSED``)."""
    try:
        return refs.count(None) == len(refs)
    except Exception:  # such a ref: ``bool()`` of what its ``==`` answered raised
        return False


def key_of(ref: Any, position: int) -> str | None:
    """A recipient's key in its job: its ``ref`` (str or int) if given, else its position.

    The three kinds are tagged so that ``ref="5"``, ``ref=5`` and position 5 never meet.
    ``None`` for a ref the ledger cannot keep (neither str nor int, or longer than
    ``MAX_KEY_BYTES``): it is refused (``REF_REFUSED``).
    """
    if ref is None:
        return f"p:{position:010d}"  # zero-padded: a job's keys grow in order, cheap to append
    if isinstance(ref, str):
        if len(ref) > MAX_KEY_BYTES // 4 and len(ref.encode("utf-8", "surrogatepass")) > (
            MAX_KEY_BYTES
        ):
            return None  # too long to index (``MAX_KEY_BYTES``)
        return f"s:{ref}"
    if isinstance(ref, int) and not isinstance(ref, bool) and -_INT_BOUND < ref < _INT_BOUND:
        return f"i:{ref}"
    return None


def repeat_key(key: str, position: int) -> str:
    """Where the rejection of a repeat of ``key`` at ``position`` is recorded."""
    return f"r:{position}:{key}"


def refused_key(position: int) -> str:
    """Where the rejection of a ref the ledger cannot key (``REF_REFUSED``) at input
    ``position`` is recorded: its own tag, so that no ``key_of`` ever meets it."""
    return f"x:{position:010d}"


def decode_key(key: str) -> tuple[str | int | None, int | None]:
    """``(ref, position)`` back from a key made by ``key_of`` (or ``repeat_key``); a
    single-send key has neither."""
    tag, _, rest = key.partition(":")
    if tag == "r":
        position, _, inner = rest.partition(":")
        return decode_key(inner)[0], int(position)
    if tag == "s":
        return rest, None
    if tag == "i":
        return int(rest), None
    if tag in ("p", "x"):  # a position: no ref, or one the ledger could not keep
        return None, int(rest)
    return None, None


class Entry(NamedTuple):
    """One recipient as the runner claims it: input position, wire number, the caller's
    ``ref``, what is to be sent (an ``Sms``, a WhatsApp message, or a text) and the
    idempotency key it will carry (sms.com.my ``seqno``).

    The ledger keeps a fingerprint of ``to`` + ``content``, not the content itself (unless
    the ledger was opened with ``store_text=True``).
    """

    position: int
    to: str
    ref: Any
    content: object
    seqno: str | None = None

    def __repr__(self) -> str:
        return (
            f"Entry(position={self.position}, to={mask_number(self.to)!r}, ref={self.ref!r}, "
            f"seqno={self.seqno!r})"
        )

    def outcome(self, status: OutcomeStatus, reason: str) -> Outcome:
        return recipient_outcome(self, status, reason)


class UnitEntries(Sequence[Entry]):
    """A unit's entries as the runner hands them in: held as columns, an ``Entry`` made a
    recipient only when a store reads them one by one (then once, and kept).

    Why: a store that takes columns (the SQLite writer process's encoder reads
    ``columns``) needs no ``Entry`` at all, and a journalled blast made 50 tuples a unit
    that lived through the claim's trip: what the young collections found alive and moved
    on to older generations (a 50,000-SMS blast: 137-145 young collections and two full
    ones, against 88-95 and one without them; ~40 ms of collecting).

    ``of_rows``: the same entries read from the runner's own rows (its pendings) only when
    ``columns`` is asked for (by the writer process's encoder, as it pickles the claim):
    the columns were five tuples a unit alive through the claim's wait, about a third of
    the references the young collections walked (``benchmarks/ledger_claims.py``, 50,000
    SMS: 439,000-462,000 -> 306,000-318,000 in its 21-22 young collections). The runner's
    rows are not changed once its unit is claimed.
    """

    __slots__ = ("_columns", "_contents", "_entries", "_fields", "_rows")

    def __init__(
        self,
        positions: Sequence[int],
        numbers: Sequence[str],
        refs: Sequence[Any],
        contents: Sequence[object],
        seqnos: Sequence[str | None],
    ):
        self._columns: tuple[Sequence[Any], ...] | None = (
            positions,
            numbers,
            refs,
            contents,
            seqnos,
        )
        self._rows: Sequence[tuple[Any, ...]] = ()
        self._fields: tuple[int, ...] = ()
        self._contents: Sequence[object] | None = None
        self._entries: list[Entry] | None = None

    @classmethod
    def of_rows(
        cls,
        rows: Sequence[tuple[Any, ...]],
        fields: tuple[int, int, int, int, int],
        contents: Sequence[object] | None = None,
    ) -> UnitEntries:
        """The entries of ``rows``, tuples whose items at ``fields`` are an ``Entry``'s
        position, number, ref, content and seqno; ``contents``: theirs instead, one a row."""
        self = cls.__new__(cls)
        self._columns, self._entries = None, None
        self._rows, self._fields, self._contents = rows, fields, contents
        return self

    @property
    def columns(self) -> tuple[Sequence[Any], ...]:
        """The entries' fields, a sequence each (the runner's: tuples), in ``Entry``'s
        order; of rows (``of_rows``), read from them each time it is asked for."""
        if self._columns is not None:
            return self._columns
        read = tuple(zip(*self._rows, strict=True))
        columns: list[Sequence[Any]] = [read[at] if read else () for at in self._fields]
        if self._contents is not None:
            columns[3] = self._contents
        return tuple(columns)

    def __len__(self) -> int:
        columns = self._columns
        return len(columns[0]) if columns is not None else len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Entry: ...
    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...
    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        return self._made()[index]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._made())

    def __repr__(self) -> str:
        return f"UnitEntries({self._made()!r})"

    def _made(self) -> list[Entry]:
        if self._entries is None:  # each made in C, as the runner made them before
            self._entries = list(
                map(partial(tuple.__new__, Entry), zip(*self.columns, strict=True))
            )
        return self._entries


@frozen
class Plan:
    """What to do with a unit's candidates.

    ``send``: the entries to send, in their input order; where a run that died left one in
    flight with an idempotency key still honoured, its ``seqno`` is the recorded one.
    ``outcomes``: the rest, final without sending — recorded outcomes of settled
    recipients, ``unknown`` for ones a dead run left in flight, ``rejected`` for input
    that changed since the job started or a ``ref`` repeated within the job.
    """

    send: Sequence[Entry]
    outcomes: tuple[Outcome, ...]


@frozen(kw_only=True)
class JobSummary:
    """A job counted: ``outcomes`` has every ``OutcomeStatus`` value; ``delivery`` every
    delivery state of its accepted messages — each ``DeliveryStatus`` value, plus
    ``awaiting`` (no report yet, within the horizon), ``no_report`` (none past the
    horizon) and ``no_report_expected`` (sent without asking for one). ``in_flight``
    counts recipients claimed by a run and not settled yet.
    """

    job: str
    total: int
    outcomes: Mapping[str, int]
    delivery: Mapping[str, int]
    in_flight: int = 0
    first_activity: datetime | None = None
    last_activity: datetime | None = None


@frozen(kw_only=True)
class LedgerRecord:
    """One recipient of a job (or one keyed single send, where ``job`` is ``None``).

    ``outcome`` is ``None`` while the recipient is in flight. ``delivery`` is the latest
    state its delivery reports reached (a ``DeliveryStatus`` value, ``no_report_expected``,
    or ``None`` while none came); ``reported_at`` when. ``fingerprint`` identifies what
    was sent; ``text`` is only kept with ``store_text=True`` and stays out of the repr.
    """

    job: str | None
    key: str
    gateway: str
    recipient: str
    outcome: OutcomeStatus | None
    ref: str | int | None = None
    index: int | None = None
    code: int | None = None
    reason: str | None = None
    message_id: str | None = None
    request_id: str | None = None
    seqno: str | None = None
    delivery: str | None = None
    delivery_code: str | None = None
    reported_at: datetime | None = None
    attempts: int = 0
    began_at: datetime | None = None
    settled_at: datetime | None = None
    fingerprint: str | None = None
    text: str | None = field(default=None, repr=False)

    @property
    def in_flight(self) -> bool:
        return self.outcome is None
