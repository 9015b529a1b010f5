"""sms.com.my HTTP Specification 1.84 (CONTRACT C): form bodies, types, codes, answers.

Pure: no I/O. Parameter names are case-sensitive and lower-case, as the document's
parameter list gives them (its examples misspell some).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from attrs import field, frozen

from .._codes import Code, CodeTable
from .._parse import parse_decimal
from .._secrets import Redactor
from ..errors import (
    AuthenticationError,
    CreditTransferError,
    DuplicateRequestError,
    GatewayError,
    InsufficientCreditsError,
    InvalidMessageError,
    InvalidNumberError,
    ValidationError,
)
from ..models import Outcome, OutcomeStatus, new_outcome
from ..text import Encoding, to_ucs2_hex

SEND_PATH = "ISendSMS.aspx"
NO_DR_PATH = "ISendSMSNoDR.aspx"
UNICODE_PATH = "ISendSMSUnicode.aspx"
BARCODE_PATH = "ISendSMS2D.aspx"
CREDITS_PATH = "creditsLeft.aspx"
CONTENT_TYPE = "application/x-www-form-urlencoded"

SENT, INTERNAL_ERROR, TRANSFERRED, DUPLICATE = 1701, 1703, 1707, 1718
MAX_SEQNO = 20
# The document gives no length limit; ten concatenated parts is what handsets reassemble.
MAX_TEXT = 1530
MAX_BINARY_OCTETS = 140  # one SMS: UDH included
BARCODE_TYPES = {name.lower(): name for name in ("EMS", "Nokia", "MMS", "textmsg", "textlink")}
_SEQNO = re.compile(r"[A-Za-z0-9_\-]{1,20}")
_SENDER = re.compile(r"\d{1,13}|[A-Za-z0-9]{1,11}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")


CODES = CodeTable(
    "sms.com.my",
    {
        1702: Code(AuthenticationError, True, "invalid username or password"),
        1703: Code(GatewayError, False, "internal server error"),
        1704: Code(InsufficientCreditsError, True, "insufficient credits"),
        1705: Code(InvalidNumberError, False, "invalid mobile number"),
        1706: Code(InvalidMessageError, False, "invalid message or invalid sender ID"),
        1708: Code(CreditTransferError, False, "invalid account for credit transfer"),
        1709: Code(CreditTransferError, False, "invalid credit value for credit transfer"),
        1718: Code(
            DuplicateRequestError, False, "duplicate record: seqno seen in the last 24 hours"
        ),
    },
)


class UnrecognisedAnswer(Exception):
    """The body is not an answer of HTTP Specification 1.84."""


@frozen
class Request:
    """One validated request: its endpoint, its own fields (``seqno`` among them) and what
    must never be quoted back."""

    path: str
    fields: dict[str, str] = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False)
    # The caller gave ``seqno``: a 1718 to it, even on the first attempt, is the gateway
    # saying it already has this message (see ``outcome``).
    caller_seqno: bool = False

    @property
    def seqno(self) -> str:
        return self.fields["seqno"]


def error_for(
    code: int | None, gateway_message: str | None = None, raw: Any = None, *, redact: Redactor
) -> GatewayError:
    """The typed error for a code of this gateway (see ``CODES``), its text redacted."""
    return CODES.error_for(code, gateway_message, raw, redact=redact)


# ---------------------------------------------------------------- validation
def check_sender(sender: str | None) -> str | None:
    if sender is not None and (not isinstance(sender, str) or not _SENDER.fullmatch(sender)):
        raise ValidationError(
            "sender must be up to 13 digits, or up to 11 letters and digits", field="sender"
        )
    return sender


def seqno_for(given: object, index: int | None = None) -> str:
    """The caller's seqno, checked, or a new random one (20 hex characters, 80 bits)."""
    if given is None:
        return secrets.token_hex(MAX_SEQNO // 2)
    if not isinstance(given, str) or not _SEQNO.fullmatch(given):
        raise ValidationError(
            f"seqno must be 1 to {MAX_SEQNO} letters, digits, '_' or '-'",
            field="seqno",
            index=index,
        )
    return given


def text_request(text: str, encoding: Encoding, *, flash: bool, seqno: str) -> Request:
    """ISendSMS.aspx: type 1/2 with the text as it is, or 3/4 with the text as UCS-2 hex."""
    if encoding is Encoding.GSM:
        fields = {"message": text, "type": "2" if flash else "1"}
    else:
        fields = {"message": to_ucs2_hex(text), "type": "4" if flash else "3"}
    return Request(SEND_PATH, {**fields, "seqno": seqno}, (text, fields["message"]))


def unicode_request(text: str, *, flash: bool, seqno: str) -> Request:
    """ISendSMSUnicode.aspx: Unicode sent as it is, for callers who prefer no hex."""
    fields = {"message": text, "type": "4" if flash else "3", "seqno": seqno}
    return Request(UNICODE_PATH, fields, (text,))


def binary_request(payload: object, *, udh: bool, seqno: str) -> Request:
    """Types 5 (with UDH) and 6 (without): the payload is hex, one SMS at most."""
    if not isinstance(payload, str) or not _HEX.fullmatch(payload):
        raise ValidationError("a binary payload must be hex digits, two per octet", field="payload")
    if len(payload) > 2 * MAX_BINARY_OCTETS:
        raise ValidationError(
            f"a binary payload is at most {MAX_BINARY_OCTETS} octets (one SMS)", field="payload"
        )
    fields = {"message": payload.upper(), "type": "5" if udh else "6", "seqno": seqno}
    return Request(SEND_PATH, fields, (payload,))


def barcode_request(text: str, msgtype: object, *, seqno: str) -> Request:
    """ISendSMS2D.aspx; ``msgtype`` is matched case-insensitively to the document's names."""
    name = BARCODE_TYPES.get(msgtype.lower()) if isinstance(msgtype, str) else None
    if name is None:
        raise ValidationError(
            f"msgtype must be one of {', '.join(BARCODE_TYPES.values())}", field="msgtype"
        )
    return Request(BARCODE_PATH, {"message": text, "msgtype": name, "seqno": seqno}, (text,))


def no_dr_request(text: str, encoding: Encoding, *, flash: bool, seqno: str) -> Request:
    """ISendSMSNoDR.aspx: one text to many numbers (``mobile`` joined by ``,``); no message
    id, no delivery report."""
    single = text_request(text, encoding, flash=flash, seqno=seqno)
    return Request(NO_DR_PATH, single.fields, single.secrets)


# ---------------------------------------------------------------- wire
def build_form(
    *, username: str, password: str, sender: str | None, mobile: str | None, request: Request
) -> bytes:
    """The form in the contract's order: username, password, message, mobile, sender, then
    the request's own fields (type, msgtype, cust, credit, seqno)."""
    fields = dict(request.fields)
    form = {"username": username, "password": password}
    if "message" in fields:
        form["message"] = fields.pop("message")
    if mobile is not None:
        form["mobile"] = mobile
    if sender is not None:
        form["sender"] = sender
    form.update(fields)
    return urlencode(form).encode()


# The document's return codes (its "SMS Return Code" table); any other 17xx is no answer.
DOCUMENTED_CODES = frozenset({*range(1701, 1710), DUPLICATE})
# Decision (CONTRACT C gives ``1701:[MSG ID]`` and no length): a MsgId is letters, digits
# or ``-``, at least ``MIN_MSGID`` long. The only ids the seeds show are 10 and 11+ digits
# (iSMS ``1143007207``, WhatsApp ``20231188285…``); anything shorter is taken to be an
# answer cut short (``1701:1143000001`` read as ``1701:11``), never an id to report.
MIN_MSGID = 6
_MSGID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9\-]{{{MIN_MSGID - 1},63}}")
_ANSWER = re.compile(r"\s*(17\d\d)\s*(?::\s*([^\s,;|]*))?\s*")


def parse_answer(text: str, *, many: bool = False) -> list[tuple[int, str | None]]:
    """The return code(s) of a body that is exactly a documented answer, else
    ``UnrecognisedAnswer`` (a send is then retried with the same seqno, as for any answer
    saying nothing certain).

    A single send's body is one code; ``1701`` must carry a whole MsgId (``MIN_MSGID``), and
    no other code carries anything. ``many``: ``ISendSMSNoDR.aspx``, whose ``1701`` has no
    MsgId and which may answer once per number (undocumented: read tolerantly).
    """
    stripped = text.strip()
    parts = [part for part in re.split(r"[\r\n,;]+", stripped) if part.strip()]
    if not parts or (len(parts) > 1 and not many):
        raise UnrecognisedAnswer("not a return code")
    answers = []
    for part in parts:
        match = _ANSWER.fullmatch(part)
        if match is None or int(match.group(1)) not in DOCUMENTED_CODES:
            raise UnrecognisedAnswer("not a return code")
        code, message_id = int(match.group(1)), match.group(2)
        if not many and (
            (message_id is not None and code != SENT)
            or (code == SENT and (message_id is None or not _MSGID.fullmatch(message_id)))
        ):
            raise UnrecognisedAnswer("a return code with a missing, cut or stray MsgId")
        answers.append((code, None if many else message_id))
    return answers


def is_internal_error(text: str) -> bool:
    """1703: the gateway failed midway; with a seqno, a retry cannot duplicate."""
    return text.strip().startswith(str(INTERNAL_ERROR))


def outcome(
    index: int,
    to: str,
    ref: Any,
    seqno: str,
    code: int,
    message_id: str | None,
    *,
    retried: bool,
    raw: str,
    redact: Redactor,
    caller_seqno: bool = False,
) -> Outcome:
    """One recipient's outcome. ``retried``: an earlier attempt of ours may have been taken,
    so a 1718 duplicate is that attempt's acceptance, not someone else's record.
    ``caller_seqno``: the caller gave this seqno (a resend of an ``unknown`` message, say);
    a 1718 then means the gateway accepted it earlier and created no duplicate, so it is
    ``accepted`` too, its message id unknown."""
    if code == SENT:  # the usual answer: built without a keyword dict (see new_outcome)
        return new_outcome(
            to,
            OutcomeStatus.ACCEPTED,
            index,
            message_id,
            code,
            None,
            ref,
            None,
            seqno,
            None,
            raw,
            False,
        )
    common: dict[str, Any] = {
        "to": to,
        "index": index,
        "ref": ref,
        "seqno": seqno,
        "code": code,
        "raw": raw,
    }
    if code == INTERNAL_ERROR:  # still failing midway after our retries: maybe sent
        reason = f"the gateway kept answering 1703 (internal error); resend with seqno={seqno}"
        return Outcome(status=OutcomeStatus.UNKNOWN, reason=reason, **common)
    if code == DUPLICATE and retried:
        reason = (
            "accepted on an earlier attempt: the retry with the same seqno was answered 1718; "
            "the gateway does not repeat the message id"
        )
        return Outcome(status=OutcomeStatus.ACCEPTED, reason=reason, **common)
    if code == DUPLICATE and caller_seqno:
        reason = (
            "already accepted earlier (1718): the gateway has this seqno from the last 24 "
            "hours and created no duplicate; its message id is not repeated"
        )
        return Outcome(status=OutcomeStatus.ACCEPTED, reason=reason, **common)
    error = error_for(code, raw.strip(), raw, redact=redact)
    common["raw"] = error.raw
    return Outcome(status=OutcomeStatus.REJECTED, reason=str(error), error=error, **common)


_USED = re.compile(r"used[^0-9\-]*(-?[\d,]+(?:\.\d+)?)", re.IGNORECASE)
_LEFT = re.compile(
    r"(?:remain\w*|left|balance|available)[^0-9\-]*(-?[\d,]+(?:\.\d+)?)", re.IGNORECASE
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def parse_credits(text: str) -> tuple[Decimal | None, Decimal]:
    """creditsLeft.aspx, format undocumented: ``(used, remaining)`` from a JSON object,
    labelled figures, or bare figures in the document's order (used, then remaining).

    A body that is only 1702 or 1703 is that error code, not a balance.
    """
    stripped = text.strip()
    if stripped in ("1702", "1703"):  # a bare code: nothing of the request to quote back
        raise error_for(int(stripped), stripped, text, redact=Redactor())
    try:
        data = json.loads(stripped)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return _credits_from_mapping(data)
    used, left = _USED.search(stripped), _LEFT.search(stripped)
    if left:
        return (parse_decimal(used.group(1)) if used else None), _decimal(left.group(1))
    numbers = _NUMBER.findall(stripped) if "<" not in stripped else []
    if len(numbers) == 2:
        return _decimal(numbers[0]), _decimal(numbers[1])
    if len(numbers) == 1 and _NUMBER.fullmatch(stripped):
        return None, _decimal(numbers[0])
    raise UnrecognisedAnswer("no credit figures in the answer")


def _credits_from_mapping(data: Mapping[str, Any]) -> tuple[Decimal | None, Decimal]:
    used: Decimal | None = None
    left: Decimal | None = None
    for key, value in data.items():
        name = str(key).lower()
        if "used" in name:
            used = parse_decimal(value)
        elif any(word in name for word in ("remain", "left", "balance", "available", "credit")):
            left = parse_decimal(value) if left is None else left
    if left is None:
        raise UnrecognisedAnswer("no remaining-credit field")
    return used, left


def _decimal(text: str) -> Decimal:
    number = parse_decimal(text)
    if number is None:
        raise UnrecognisedAnswer("not a number")
    return number


def transfer_request(customer: object, credits: object, *, path: object, seqno: str) -> Request:
    """Credit transfer: the document gives no URL, so the caller names the endpoint."""
    if (
        not isinstance(path, str)
        or not re.fullmatch(r"[A-Za-z0-9_\-./]+", path)
        or path.startswith(("/", "."))
    ):
        raise ValidationError(
            "path must be the transfer endpoint relative to the base URL, "
            "e.g. 'ITransferCredits.aspx'",
            field="path",
        )
    if not isinstance(customer, str) or not customer.strip():
        raise ValidationError("customer must be the customer's username", field="customer")
    amount = parse_decimal(credits) if not isinstance(credits, Decimal) else credits
    if amount is None or not amount.is_finite() or amount <= 0:
        raise ValidationError("credits must be a positive number", field="credits")
    fields = {"cust": customer, "credit": format(amount, "f"), "seqno": seqno}
    return Request(path, fields, ())


def describe_unrecognised(text: str, redact: Redactor) -> str:
    return f"unrecognised answer from sms.com.my: {redact.snippet(text)}"
