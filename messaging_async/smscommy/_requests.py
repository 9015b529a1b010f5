"""How ``SmsComMyClient`` builds, posts and reads each request; mixed into the client.

The client's public methods (``client.py``) describe a call; this module holds what every
call shares: preparing a message (seqnos checked once per call), posting a form with the
right "may the gateway have acted?" test, and turning an answer into outcomes. Moved here
unchanged from ``client.py`` to keep each module small.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from attrs import evolve

from .._client import BaseClient, unreadable_answer
from .._parse import parse_decimal
from .._plan import BulkPlan, Pending, UnitResult
from .._secrets import Redactor
from .._transport import Answer, SendProgress
from ..errors import (
    GatewayError,
    TransportError,
    UnexpectedAnswerError,
    UnreachableError,
    ValidationError,
)
from ..models import Outcome, OutcomeStatus, Sms
from ..phone import normalize_number
from ..text import Encoding, check_encoding, checked_payload
from . import _wire

_Text = tuple[str, Encoding]  # a validated text and the encoding it goes with


class RequestMethods(BaseClient):
    """The request machinery of ``SmsComMyClient``; its settings are set by the client."""

    _redactor: Redactor  # the client's secret: the password
    _sender: str | None
    _base_urls: tuple[str, ...]
    _no_dr_batch_size: int

    async def _single(
        self,
        prepare: Callable[[], Pending[_wire.Request]],
        key: str | None,
        content: object,
        timeout: object,
    ) -> Outcome:
        """``content``: what the ledger fingerprints for ``key`` (each endpoint tagged)."""
        self._ensure_open()
        checked_key = self._check_key(key)
        try:
            pending = prepare()
        except ValidationError as exc:
            exc.index = None
            raise
        pending = pending._replace(content=content)
        return await self._keyed(
            checked_key, "smscommy", pending, self._send_request, timeout, _reseq, _wire.CODES
        )

    def _text_plan(self, flash: bool, encoding: Encoding | None) -> BulkPlan[_wire.Request]:
        return BulkPlan(
            prepare=partial(self._prepare_text, flash, check_encoding(encoding), set()),
            send_unit=self._send_request,
            unit_size=1,
            concurrency=self._max_concurrency,
            gateway="smscommy",
            reseq=_reseq,
        )

    def _prepare_text(
        self, flash: bool, forced: Encoding | None, seqnos: set[str], index: int, item: object
    ) -> Pending[_wire.Request]:
        """``seqnos``: the caller's seqnos already used in this call. A second message with
        the same seqno is refused before sending: the gateway would answer it 1718, which
        reads as "accepted" (the gateway has a message with the caller's seqno) though it
        never recorded that message."""
        if not isinstance(item, Sms):
            raise ValidationError(
                f"message {index} is a {type(item).__name__}, not an Sms",
                field="messages",
                index=index,
            )
        text, encoding = checked_payload(
            item.text, item.encoding or forced, max_length=_wire.MAX_TEXT, index=index
        )
        seqno = _wire.seqno_for(item.seqno, index)
        request = _wire.text_request(text, encoding, flash=flash, seqno=seqno)
        pending = self._pending(
            index, item.to, item.ref, request, caller_seqno=item.seqno is not None
        )
        if item.seqno is not None:
            if seqno in seqnos:
                raise ValidationError(
                    f"seqno {seqno!r} is already used by an earlier message of this call; "
                    "each message needs its own",
                    field="seqno",
                    index=index,
                )
            seqnos.add(seqno)
        return pending

    def _pending(
        self, index: int, to: object, ref: Any, message: Any, *, caller_seqno: bool = False
    ) -> Pending[Any]:
        number = normalize_number(to, default_calling_code=self._calling_code, index=index)
        if caller_seqno:
            message = evolve(message, caller_seqno=True)
        seqno = message.seqno if isinstance(message, _wire.Request) else None
        return Pending(position=index, to=number, ref=ref, message=message, seqno=seqno)

    async def _send_request(
        self, unit: list[Pending[_wire.Request]], progress: SendProgress
    ) -> UnitResult:
        (pending,) = unit
        request = pending.message
        form = _wire.build_form(
            username=self._username,
            password=self._password,
            sender=self._sender,
            mobile=pending.to,
            request=request,
        )
        redact = self._redactor.including(request.secrets, (pending.to,))
        answer = await self._post(request.path, form, progress, redact)
        try:
            code, message_id = _wire.parse_answer(answer.text)[0]
        except _wire.UnrecognisedAnswer:
            return UnitResult(unreadable_answer(unit, answer, _note(answer, redact)))
        outcome = _wire.outcome(
            pending.position,
            pending.to,
            pending.ref,
            request.seqno,
            code,
            message_id,
            retried=progress.ambiguous,
            raw=answer.text,
            redact=redact,
            caller_seqno=request.caller_seqno,
        )
        return UnitResult([outcome], None, _fatal(outcome))

    async def _send_no_dr_batch(
        self, flash: bool, unit: list[Pending[_Text]], progress: SendProgress
    ) -> UnitResult:
        text, encoding = unit[0].message
        request = _wire.no_dr_request(text, encoding, flash=flash, seqno=_wire.seqno_for(None))
        form = _wire.build_form(
            username=self._username,
            password=self._password,
            sender=self._sender,
            mobile=",".join(pending.to for pending in unit),
            request=request,
        )
        redact = self._redactor.including(request.secrets, [pending.to for pending in unit])
        try:
            answer = await self._post(request.path, form, progress, redact)
        except TransportError as exc:  # the runner would not know this batch's seqno
            unreachable = isinstance(exc, UnreachableError)
            status = OutcomeStatus.NOT_SENT if unreachable else OutcomeStatus.UNKNOWN
            return UnitResult(
                [evolve(p.outcome(status, str(exc)), seqno=request.seqno) for p in unit]
            )
        try:
            answers = _wire.parse_answer(answer.text, many=True)
        except _wire.UnrecognisedAnswer:
            return UnitResult(unreadable_answer(unit, answer, _note(answer, redact)))
        per_number = answers if len(answers) == len(unit) else [answers[0]] * len(unit)
        outcomes = [
            _no_dr_outcome(pending, request.seqno, code, progress.ambiguous, answer.text, redact)
            for pending, (code, _) in zip(unit, per_number, strict=True)
        ]
        fatal = next((f for f in map(_fatal, outcomes) if f is not None), None)
        return UnitResult(outcomes, None, fatal)

    async def _post(
        self, path: str, form: bytes, progress: SendProgress, redact: Redactor
    ) -> Answer:
        ambiguous = (
            _is_ambiguous_credits_answer
            if path == _wire.CREDITS_PATH
            else partial(_is_ambiguous_send_answer, many=path == _wire.NO_DR_PATH)
        )
        return await self._transport.post(
            self._base_urls,
            path,
            content=form,
            content_type=_wire.CONTENT_TYPE,
            retry_after_send=True,
            redact=redact,
            progress=progress,
            ambiguous_answer=ambiguous,
        )

    @staticmethod
    def _unexpected(answer: Answer, redact: Redactor, hint: str = "") -> UnexpectedAnswerError:
        return UnexpectedAnswerError(f"{_note(answer, redact)} (HTTP {answer.status}){hint}")


def _reseq(pending: Pending[_wire.Request], seqno: str) -> Pending[_wire.Request]:
    """``pending`` to be sent again under the seqno a ledger recorded for it: a given seqno,
    so a 1718 means the earlier attempt was accepted (``caller_seqno``)."""
    fields = {**pending.message.fields, "seqno": seqno}
    request = evolve(pending.message, fields=fields, caller_seqno=True)
    return pending._replace(message=request, seqno=seqno)


def _note(answer: Answer, redact: Redactor) -> str:
    return _wire.describe_unrecognised(answer.text, redact)


def _over_the_network_in_clear(url: str) -> bool:
    """Plain http to anywhere but this machine (a sandbox on loopback is fine)."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def _is_ambiguous_send_answer(answer: Answer, *, many: bool) -> bool:
    """1703, or a 2xx body that is not exactly a return code (a maintenance page, an answer
    cut short such as ``1701:11``): the gateway may have acted, and with a seqno a retry
    cannot send twice."""
    if not 200 <= answer.status < 300:
        return False
    if _wire.is_internal_error(answer.text):
        return True
    try:
        _wire.parse_answer(answer.text, many=many)
    except _wire.UnrecognisedAnswer:
        return True
    return False


def _is_ambiguous_credits_answer(answer: Answer) -> bool:
    if not 200 <= answer.status < 300 or answer.text.strip() == "1702":
        return False
    try:
        _wire.parse_credits(answer.text)
    except _wire.UnrecognisedAnswer:
        return True
    except GatewayError:
        return answer.text.strip() == "1703"
    return False


def _fatal(outcome: Outcome) -> GatewayError | None:
    return outcome.error if outcome.error is not None and outcome.error.fatal else None


def _no_dr_outcome(
    pending: Pending[_Text], seqno: str, code: int, retried: bool, raw: str, redact: Redactor
) -> Outcome:
    outcome = _wire.outcome(
        pending.position,
        pending.to,
        pending.ref,
        seqno,
        code,
        None,
        retried=retried,
        raw=raw,
        redact=redact,
    )
    if outcome.status is OutcomeStatus.ACCEPTED and outcome.reason is None:
        reason = "accepted; ISendSMSNoDR.aspx gives no message id and no delivery report"
        return evolve(outcome, reason=reason)
    return outcome


MAX_TRANSFER_CREDITS = Decimal(1_000_000_000)


def check_transfer_amount(credits: object) -> Decimal:
    """A positive amount of at most ``MAX_TRANSFER_CREDITS`` with at most two decimals.

    Bounded before anything else touches it: ``Decimal("1e100000000")`` is a valid, finite
    number whose plain form is a hundred million digits (formatting it for the request
    would exhaust memory), and ``10**5000`` cannot even be turned into a string.
    """
    amount: Decimal | None = None
    if isinstance(credits, Decimal):
        amount = credits if credits.is_finite() else None
    elif isinstance(credits, int) and not isinstance(credits, bool):
        amount = Decimal(credits) if abs(credits) <= MAX_TRANSFER_CREDITS else None
    elif isinstance(credits, float | str) and len(str(credits)) <= 32:
        amount = parse_decimal(credits)
    exponent = amount.as_tuple().exponent if amount is not None else 0
    if (
        amount is None
        or not 0 < amount <= MAX_TRANSFER_CREDITS
        or not isinstance(exponent, int)
        or exponent < -2
    ):
        raise ValidationError(
            f"credits must be a positive number of at most {MAX_TRANSFER_CREDITS:,} "
            "with at most two decimals",
            field="credits",
        )
    return amount
