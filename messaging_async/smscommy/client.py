"""``SmsComMyClient``: sms.com.my HTTP Specification 1.84, every endpoint.

Every send carries a ``seqno`` that the gateway remembers for 24 hours, so unlike iSMS
this client may retry a send whose first attempt may have reached the gateway: a retry
answered 1718 "duplicate" means the earlier attempt was accepted.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import AsyncIterable, Iterable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, Literal

import httpx

from .._checks import check_concurrency, check_urls
from .._client import OnOutcome
from .._options import (
    DEFAULT_SINGLE_SEND_CAPACITY,
    from_environment,
    required_setting,
    traffic_settings,
)
from .._plan import BulkPlan, Pending
from .._secrets import Redactor
from .._stream import BulkStream
from .._transport import DEFAULT_KEEPALIVE_EXPIRY, SendProgress
from ..errors import PlainHttpWarning, ValidationError
from ..hooks import Hooks
from ..ledger import Ledger
from ..models import BulkReport, Credits, CreditTransfer, Outcome, Sms
from ..rate import RateLimit
from ..retry import RetryPolicy
from ..text import Encoding, check_text, checked_payload
from . import _wire
from ._requests import RequestMethods, _over_the_network_in_clear, _Text, check_transfer_amount

__all__ = ["SMSCOMMY_BASE_URL", "SmsComMyClient"]

SMSCOMMY_BASE_URL = "http://www.sms.com.my/websmsapi"


class SmsComMyClient(RequestMethods):
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
        ``sender`` under the name ``IsmsClient`` uses. See docs/production.md for the
        traffic settings."""
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
    ) -> BulkStream:
        """Like ``send_sms_bulk``, yielding outcomes as requests finish; ``async with`` it to
        close it where the block ends (see ``BulkStream``)."""
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
