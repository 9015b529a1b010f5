"""``SmsComMyClient``: sms.com.my HTTP Specification 1.84, every endpoint.

Every send carries a ``seqno`` that the gateway remembers for 24 hours, so unlike iSMS
this client may retry a send whose first attempt may have reached the gateway: a retry
answered 1718 "duplicate" means the earlier attempt was accepted.
"""

from __future__ import annotations

import ipaddress
import ssl
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from attrs import evolve

from .._client import (
    BaseClient,
    OnOutcome,
    check_concurrency,
    check_urls,
    unreadable_answer,
)
from .._options import (
    DEFAULT_SINGLE_SEND_CAPACITY,
    from_environment,
    required_setting,
    traffic_settings,
)
from .._parse import parse_decimal
from .._plan import BulkPlan, Pending, UnitResult
from .._secrets import Redactor
from .._transport import DEFAULT_KEEPALIVE_EXPIRY, Answer, SendProgress
from ..errors import (
    GatewayError,
    PlainHttpWarning,
    TransportError,
    UnexpectedAnswerError,
    UnreachableError,
    ValidationError,
)
from ..hooks import Hooks
from ..ledger import Ledger
from ..models import BulkReport, Credits, CreditTransfer, Outcome, OutcomeStatus, Sms
from ..phone import normalize_number
from ..rate import RateLimit
from ..retry import RetryPolicy
from ..text import Encoding, check_encoding, check_text, checked_payload
from . import _wire

__all__ = ["SMSCOMMY_BASE_URL", "SmsComMyClient"]

SMSCOMMY_BASE_URL = "http://www.sms.com.my/websmsapi"

_Text = tuple[str, Encoding]  # a validated text and the encoding it goes with


class SmsComMyClient(BaseClient):
    """Async client for sms.com.my. Share one instance: it holds the connection pool.

    Personalised bulk sends go one ``ISendSMS.aspx`` request per message (each with its
    own message id and seqno), ``max_concurrency`` at a time; one text to many numbers
    goes through ``ISendSMSNoDR.aspx`` in batches of ``no_dr_batch_size``. With a
    ``ledger``, ``job=`` makes bulk calls resumable and ``key=`` single sends idempotent: a
    send a crash left in flight goes again with its recorded seqno (1718 then means it was
    accepted).
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        sender: str | None = None,
        sender_id: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_concurrency: int = 10,
        no_dr_batch_size: int = 50,
        single_send_capacity: int = DEFAULT_SINGLE_SEND_CAPACITY,
        max_connections: int | None = None,
        rate_limit: RateLimit | None = None,
        retry: RetryPolicy | None = None,
        hooks: Hooks | Sequence[Hooks] | None = None,
        default_country: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_backend: Literal["httpx", "aiohttp"] = "httpx",
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        proxy: str | None = None,
        verify: bool | str | ssl.SSLContext = True,
        trust_env: bool = False,
        ledger: Ledger | None = None,
    ):
        """Settings left out come from the environment where the CLI reads them:
        ``SMSCOMMY_USERNAME``, ``SMSCOMMY_PASSWORD``, ``SMSCOMMY_BASE_URL``. ``sender_id`` is
        ``sender`` under the name ``IsmsClient`` uses. See the README's "In a web service"
        for the traffic settings."""
        if sender is not None and sender_id is not None:
            raise ValidationError("give sender or sender_id, not both", field="sender_id")
        super().__init__(
            username=required_setting(username, "username", "SMSCOMMY_USERNAME"),  # type: ignore[arg-type]
            password=required_setting(password, "password", "SMSCOMMY_PASSWORD"),  # type: ignore[arg-type]
            max_concurrency=max_concurrency,
            retry=retry,
            default_country=default_country,
            ledger=ledger,
        )
        self._redactor = Redactor((self._password,))
        try:
            self._sender = _wire.check_sender(sender if sender is not None else sender_id)
        except ValidationError as exc:
            exc.field = "sender" if sender is not None else "sender_id"  # the name given
            raise
        url = from_environment(base_url, "SMSCOMMY_BASE_URL")
        url = SMSCOMMY_BASE_URL if url is None else url
        self._base_urls = check_urls([url], "base_url")
        if _over_the_network_in_clear(self._base_urls[0]):
            warnings.warn(
                f"{self._base_urls[0]} is plain http: the password travels unencrypted "
                "(the provider's document shows only http); pass an https base_url if it works",
                PlainHttpWarning,
                stacklevel=2,
            )
        self._no_dr_batch_size = check_concurrency(no_dr_batch_size, "no_dr_batch_size")
        traffic = traffic_settings(
            bulk_concurrency=self._max_concurrency,
            single_send_capacity=single_send_capacity,
            max_connections=max_connections,
            rate_limit=rate_limit,
            hooks=hooks,
            proxy=proxy,
            verify=verify,
            trust_env=trust_env,
        )
        self._open_transport(
            timeout, transport, http_backend, keepalive_expiry, traffic, "smscommy"
        )

    def __repr__(self) -> str:
        return (
            f"SmsComMyClient(username={self._username!r}, sender={self._sender!r}, "
            f"base_url={self._base_urls[0]!r})"
        )

    # ---------------------------------------------------------------- single sends
    async def send_sms(
        self,
        to: str,
        text: str,
        *,
        flash: bool = False,
        encoding: Encoding | None = None,
        seqno: str | None = None,
        ref: Any = None,
        key: str | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """ISendSMS.aspx: GSM text as type 1 (2 flash), anything else as UCS-2 hex type 3 (4).

        Returns the accepted outcome (with the MsgId) or raises, like ``IsmsClient.send_sms``;
        idempotent under ``key=`` (needs a ledger); ``timeout`` bounds the whole call as
        there.
        """
        message = Sms(to=to, text=text, encoding=encoding, seqno=seqno, ref=ref)
        return await self._single(
            lambda: self._prepare_text(flash, None, set(), 0, message), key, message, timeout
        )

    async def send_sms_unicode(
        self,
        to: str,
        text: str,
        *,
        flash: bool = False,
        seqno: str | None = None,
        ref: Any = None,
        key: str | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """ISendSMSUnicode.aspx: the text as it is, for callers who prefer no hex encoding."""

        def prepare() -> Pending[_wire.Request]:
            checked = check_text(text, max_length=_wire.MAX_TEXT)
            request = _wire.unicode_request(checked, flash=flash, seqno=_wire.seqno_for(seqno))
            return self._pending(0, to, ref, request, caller_seqno=seqno is not None)

        return await self._single(prepare, key, "u" + str(text), timeout)

    async def send_binary(
        self,
        to: str,
        payload: str,
        *,
        udh: bool = True,
        seqno: str | None = None,
        ref: Any = None,
        key: str | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """A binary message as hex: type 5 with a user data header, 6 without."""

        def prepare() -> Pending[_wire.Request]:
            request = _wire.binary_request(payload, udh=udh, seqno=_wire.seqno_for(seqno))
            return self._pending(0, to, ref, request, caller_seqno=seqno is not None)

        return await self._single(prepare, key, f"b{udh:d}{payload}", timeout)

    async def send_barcode(
        self,
        to: str,
        text: str,
        *,
        msgtype: str = "MMS",
        seqno: str | None = None,
        ref: Any = None,
        key: str | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """ISendSMS2D.aspx: ``text`` may hold ``%barcode%``; ``msgtype`` is EMS, Nokia, MMS,
        textmsg or textlink."""

        def prepare() -> Pending[_wire.Request]:
            checked = check_text(text, max_length=_wire.MAX_TEXT)
            request = _wire.barcode_request(checked, msgtype, seqno=_wire.seqno_for(seqno))
            return self._pending(0, to, ref, request, caller_seqno=seqno is not None)

        return await self._single(prepare, key, f"2{msgtype}:{text}", timeout)

    # ---------------------------------------------------------------- bulk
    async def send_sms_bulk(
        self,
        messages: Iterable[Sms] | AsyncIterable[Sms],
        *,
        flash: bool = False,
        encoding: Encoding | None = None,
        on_outcome: OnOutcome | None = None,
        job: str | None = None,
        resend_unknown: bool = False,
        timeout: float | None = None,
    ) -> BulkReport:
        """Personalised SMS, one ISendSMS request each; one outcome per message, in order.

        ``job=`` (needs the client's ledger) journals the run so that running it again
        resumes it; ``resend_unknown=True`` also resends ``unknown`` messages whose seqno
        the gateway no longer remembers, which may deliver them twice.
        """
        plan = self._text_plan(flash, encoding)
        return await self._send_bulk(plan, messages, on_outcome, job, resend_unknown, timeout)

    def stream_sms_bulk(
        self,
        messages: Iterable[Sms] | AsyncIterable[Sms],
        *,
        flash: bool = False,
        encoding: Encoding | None = None,
        on_outcome: OnOutcome | None = None,
        job: str | None = None,
        resend_unknown: bool = False,
        timeout: float | None = None,
    ) -> AsyncIterator[Outcome]:
        """Like ``send_sms_bulk``, yielding outcomes as requests finish."""
        plan = self._text_plan(flash, encoding)
        return self._stream_bulk(plan, messages, on_outcome, job, resend_unknown, timeout)

    async def send_sms_same_text(
        self,
        numbers: Iterable[str] | AsyncIterable[str],
        text: str,
        *,
        flash: bool = False,
        encoding: Encoding | None = None,
        on_outcome: OnOutcome | None = None,
        job: str | None = None,
        resend_unknown: bool = False,
        timeout: float | None = None,
    ) -> BulkReport:
        """ISendSMSNoDR.aspx: one text to many numbers, comma-joined in batches. The endpoint
        gives no message id and no delivery report; every outcome says so.

        Journalled (``job=``), a number a crash left in flight is ``unknown`` and not sent
        again: a batch's seqno covers the whole batch, so it cannot make one number's
        resend safe."""
        self._ensure_open()
        payload = checked_payload(text, encoding, max_length=_wire.MAX_TEXT)
        plan: BulkPlan[_Text] = BulkPlan(
            prepare=lambda index, number: self._pending(index, number, None, payload),
            send_unit=partial(self._send_no_dr_batch, flash),
            unit_size=self._no_dr_batch_size,
            concurrency=self._max_concurrency,
            what="numbers",
            gateway="smscommy",
            same_text=text,
            expect_reports=False,
        )
        return await self._send_bulk(plan, numbers, on_outcome, job, resend_unknown, timeout)

    # ---------------------------------------------------------------- account
    async def get_credits(self, *, timeout: float | None = None) -> Credits:
        """Credits used to date and remaining. Retried freely: a look-up sends nothing.
        ``timeout``: seconds for the whole call, retries included."""
        self._ensure_open()
        form = _wire.build_form(
            username=self._username,
            password=self._password,
            sender=None,
            mobile=None,
            request=_wire.Request(_wire.CREDITS_PATH, {}, ()),
        )
        with self._lookup(timeout):
            answer = await self._post(_wire.CREDITS_PATH, form, SendProgress(), self._redactor)
        try:
            used, remaining = _wire.parse_credits(answer.text)
        except _wire.UnrecognisedAnswer:
            raise self._unexpected(answer, self._redactor) from None
        return Credits(used=used, remaining=remaining, raw=answer.text)

    async def transfer_credits(
        self, customer: str, credits: int | Decimal | str, *, path: str, seqno: str | None = None
    ) -> CreditTransfer:
        """Transfer credits to a customer account (1707). ``path`` is the endpoint relative
        to the base URL: the provider's document does not give it. Safe to call again with
        the same ``seqno`` within 24 hours: it cannot transfer twice."""
        self._ensure_open()
        amount = check_transfer_amount(credits)
        request = _wire.transfer_request(customer, amount, path=path, seqno=_wire.seqno_for(seqno))
        form = _wire.build_form(
            username=self._username,
            password=self._password,
            sender=None,
            mobile=None,
            request=request,
        )
        progress = SendProgress()
        answer = await self._post(request.path, form, progress, self._redactor)
        try:
            code, _ = _wire.parse_answer(answer.text)[0]
        except _wire.UnrecognisedAnswer:
            hint = f"; retry with seqno={request.seqno!r}"
            raise self._unexpected(answer, self._redactor, hint) from None
        if code == _wire.TRANSFERRED or (code == _wire.DUPLICATE and progress.ambiguous):
            amount = Decimal(request.fields["credit"])
            return CreditTransfer(
                customer=customer, credits=amount, seqno=request.seqno, raw=answer.text
            )
        raise _wire.error_for(code, answer.text.strip(), answer.text, redact=self._redactor)

    # ---------------------------------------------------------------- internals
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
            checked_key, "smscommy", pending, self._send_request, timeout, _reseq
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
