"""Frozen value types: the messages callers hand in and the results they get back.

Message texts are kept out of every ``repr``: they hold OTPs, and reprs end up in logs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from attrs import field, fields, frozen

from . import _outcomes_seq
from .text import Encoding, check_encoding

if TYPE_CHECKING:
    from .errors import GatewayError

__all__ = [
    "Balance",
    "BulkReport",
    "CreditTransfer",
    "Credits",
    "Outcome",
    "OutcomeStatus",
    "Sms",
    "WhatsAppFile",
    "WhatsAppMessage",
    "WhatsAppTemplate",
    "WhatsAppText",
]


class OutcomeStatus(enum.StrEnum):
    """Where one recipient's message ended; every recipient ends in exactly one."""

    ACCEPTED = "accepted"
    """The gateway accepted it and gave an id. Do not send it again."""
    REJECTED = "rejected"
    """The gateway (or our validation) refused it with a reason. Fix the cause, then resend."""
    NOT_SENT = "not_sent"
    """It never reached the gateway. Safe to send again as it is."""
    UNKNOWN = "unknown"
    """It may have reached the gateway; no usable answer came back. Resending may duplicate."""


def _known_encoding(value: Encoding | str | None) -> Encoding | None:
    return check_encoding(value)


@frozen(kw_only=True)
class Sms:
    """One SMS to one recipient. ``ref`` is yours: it comes back on the recipient's outcome.

    ``encoding`` forces GSM or Unicode for this message; by default the SDK picks the
    cheapest encoding that cannot garble the text; ``"gsm"`` and ``"unicode"`` are taken
    as the ``Encoding`` they name, anything else is a ``ValidationError``. ``seqno`` is
    sms.com.my's idempotency key (≤ 20 characters): give the one from an ``unknown``
    outcome to resend it safely within 24 hours. iSMS has no such key, so ``IsmsClient`` refuses it.
    """

    to: str
    text: str = field(repr=False)
    ref: Any = None
    encoding: Encoding | None = field(default=None, converter=_known_encoding)
    seqno: str | None = None


@frozen(kw_only=True)
class WhatsAppTemplate:
    """An approved WhatsApp template, sendable at any time (charged per message).

    ``params`` fill the template's variables: a mapping sent as it is, or a sequence that
    becomes ``param1`` … ``paramN``. Values go as strings; numbers, dates and datetimes are
    formatted for you. They are kept out of reprs: authentication templates carry OTPs.
    """

    to: str
    template_code: str
    language: str = "en"
    params: Mapping[str, object] | Sequence[object] | None = field(default=None, repr=False)
    ref: Any = None


@frozen(kw_only=True)
class WhatsAppText:
    """Free text; only delivered inside the 24-hour window opened by the user's last message."""

    to: str
    text: str = field(repr=False)
    ref: Any = None


@frozen(kw_only=True)
class WhatsAppFile:
    """A file (image, PDF…) by direct public URL; only inside the 24-hour window."""

    to: str
    url: str
    file_name: str
    ref: Any = None


WhatsAppMessage = WhatsAppTemplate | WhatsAppText | WhatsAppFile


@frozen(kw_only=True)
class Outcome:
    """What became of one recipient's message.

    ``to`` is the number as it went on the wire (digits only); ``index`` the message's
    position in the caller's input, so outcomes that arrive as chunks finish can be matched
    to it; ``code`` the gateway's code (``None`` where it gave none); ``reason`` a readable
    explanation; ``request_id`` the gateway's id for the request (WhatsApp); ``seqno`` the
    idempotency key the message went with (sms.com.my): resending an ``unknown`` outcome
    with it cannot deliver twice within 24 hours; ``error`` the
    typed ``GatewayError`` of a ``rejected`` outcome, so bulk callers can branch on it as
    single-send callers do with ``except``; ``raw`` the gateway's own per-recipient result,
    kept for fields this SDK does not name. ``from_ledger`` is true when nothing was sent
    for it in this call: the ledger decided it (an outcome recorded by an earlier run, a
    recipient a dead run left in flight, input that changed, a repeated ``ref``).
    """

    to: str
    status: OutcomeStatus
    index: int = 0
    message_id: str | None = None
    code: int | None = None
    reason: str | None = None
    ref: Any = None
    request_id: str | None = None
    seqno: str | None = None
    error: GatewayError | None = field(default=None, repr=False, eq=False)
    raw: Any = field(default=None, repr=False)
    from_ledger: bool = False

    @property
    def ok(self) -> bool:
        """True when the gateway accepted the message."""
        return self.status is OutcomeStatus.ACCEPTED

    @property
    def safe_to_resend(self) -> bool:
        """True when sending this message again cannot deliver it twice."""
        return self.status is OutcomeStatus.NOT_SENT


class Recipient(Protocol):
    """What an outcome is made from: the runner's ``Pending`` and the ledger's ``Entry``."""

    @property
    def position(self) -> int: ...
    @property
    def to(self) -> str: ...
    @property
    def ref(self) -> Any: ...
    @property
    def seqno(self) -> str | None: ...


def recipient_outcome(recipient: Recipient, status: OutcomeStatus, reason: str) -> Outcome:
    """The one way an outcome is built for a recipient that has no gateway id."""
    return new_outcome(
        recipient.to,
        status,
        recipient.position,
        None,
        None,
        reason,
        recipient.ref,
        None,
        recipient.seqno,
        None,
        None,
        False,
    )


# ``Outcome``'s fields in ``new_outcome``'s argument order; checked against attrs at import.
_OUTCOME_FIELDS = (
    "to",
    "status",
    "index",
    "message_id",
    "code",
    "reason",
    "ref",
    "request_id",
    "seqno",
    "error",
    "raw",
    "from_ledger",
)


def slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """The setters of the slots of attrs class ``cls``, for a constructor that sets them
    positionally instead of through attrs' keyword ``__init__`` (``new_outcome``, the
    webhook events). ``names`` must be every field, in order, or this refuses at import:
    a field added later can never be left unset."""
    if tuple(f.name for f in fields(cls)) != names:
        raise AssertionError(f"{cls.__name__}'s fields are not {names}")
    return tuple(cls.__dict__[name].__set__ for name in names)


(
    _set_to,
    _set_status,
    _set_index,
    _set_message_id,
    _set_code,
    _set_reason,
    _set_ref,
    _set_request_id,
    _set_seqno,
    _set_error,
    _set_raw,
    _set_from_ledger,
) = slot_setters(Outcome, _OUTCOME_FIELDS)
_new = object.__new__


def new_outcome(
    to: str,
    status: OutcomeStatus,
    index: int,
    message_id: str | None,
    code: int | None,
    reason: str | None,
    ref: Any,
    request_id: str | None,
    seqno: str | None,
    error: GatewayError | None,
    raw: Any,
    from_ledger: bool,
) -> Outcome:
    """``Outcome(...)`` for the SDK's own hot paths (one per recipient): every field given,
    positionally, set through the slots' own descriptors.

    attrs' frozen ``__init__`` takes keywords and sets each slot through
    ``object.__setattr__``; this costs 0.69 µs an outcome against its 1.67 (measured,
    Python 3.11, attrs 26). The values are the SDK's, already of the right types, and
    ``Outcome`` has no validators or converters, so nothing is skipped. The field list is
    checked against attrs when this module loads.
    """
    outcome = _new(Outcome)
    _set_to(outcome, to)
    _set_status(outcome, status)
    _set_index(outcome, index)
    _set_message_id(outcome, message_id)
    _set_code(outcome, code)
    _set_reason(outcome, reason)
    _set_ref(outcome, ref)
    _set_request_id(outcome, request_id)
    _set_seqno(outcome, seqno)
    _set_error(outcome, error)
    _set_raw(outcome, raw)
    _set_from_ledger(outcome, from_ledger)
    return outcome


def _as_outcomes(outcomes: Iterable[Outcome]) -> _outcomes_seq.Outcomes:
    return _outcomes_seq.Outcomes.of(outcomes)


@frozen(kw_only=True)
class BulkReport:
    """Every recipient of a bulk call, in input order, with counts and credits.

    ``outcomes`` is an immutable sequence (``Outcomes``): ``len``, indexing, slicing,
    iteration and ``==`` with a tuple of the same outcomes work as on the tuple it once
    was; the SDK builds the usual accepted recipients' ``Outcome`` objects as they are
    read, so a large report costs the garbage collector nothing while it is kept.
    ``stopped_by`` is the fatal gateway error (authentication, credits…) that stopped the
    run early, if one did; every recipient after it is ``not_sent``. ``credits_used`` is
    the gateway's own figure, summed over requests, where it gave one.
    """

    outcomes: _outcomes_seq.Outcomes = field(converter=_as_outcomes)
    credits_used: Decimal | None = None
    stopped_by: GatewayError | None = field(default=None, eq=False)
    counts: Mapping[str, int] = field(init=False, repr=True, eq=False)
    """Outcomes per status, every status present: ``{"accepted": 2, "rejected": 0, …}``;
    ``counts[OutcomeStatus.ACCEPTED]`` works too (the statuses are strings)."""

    @counts.default
    def _count_statuses(self) -> Mapping[str, int]:
        counted = self.outcomes.status_counts()
        return {status.value: counted.get(status, 0) for status in OutcomeStatus}

    def __len__(self) -> int:
        return len(self.outcomes)

    def with_status(self, status: OutcomeStatus) -> tuple[Outcome, ...]:
        """The outcomes that ended in ``status``, in input order."""
        return tuple(outcome for outcome in self.outcomes if outcome.status is status)

    @property
    def accepted(self) -> tuple[Outcome, ...]:
        return self.with_status(OutcomeStatus.ACCEPTED)

    @property
    def rejected(self) -> tuple[Outcome, ...]:
        return self.with_status(OutcomeStatus.REJECTED)

    @property
    def not_sent(self) -> tuple[Outcome, ...]:
        return self.with_status(OutcomeStatus.NOT_SENT)

    @property
    def unknown(self) -> tuple[Outcome, ...]:
        return self.with_status(OutcomeStatus.UNKNOWN)

    @property
    def all_accepted(self) -> bool:
        return self.counts[OutcomeStatus.ACCEPTED] == len(self.outcomes)


@frozen(kw_only=True)
class Credits:
    """sms.com.my credits: used to date and remaining (``used`` is ``None`` when the gateway
    gave only one figure); ``raw`` is its whole answer, the format being undocumented."""

    remaining: Decimal
    used: Decimal | None = None
    raw: Any = field(default=None, repr=False)


@frozen(kw_only=True)
class CreditTransfer:
    """A completed sms.com.my credit transfer (1707). ``seqno`` made it idempotent."""

    customer: str
    credits: Decimal
    seqno: str
    raw: Any = field(default=None, repr=False)


@frozen(kw_only=True)
class Balance:
    """An account's credit balance as the gateway reported it; ``raw`` is its whole answer."""

    credits: Decimal
    raw: Any = field(default=None, repr=False)
