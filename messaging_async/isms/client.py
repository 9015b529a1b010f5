"""``IsmsClient``: iSMS SMS over the JSON API (bulk), the classic API, and the balance."""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterable, Iterable, Sequence
from functools import partial
from typing import Any, Literal

import httpx

from .._checks import check_concurrency, check_credential, check_urls
from .._client import OnOutcome
from .._options import (
    DEFAULT_SINGLE_SEND_CAPACITY,
    from_environment,
    one_base_url,
    required_setting,
    traffic_settings,
)
from .._plan import BulkPlan
from .._secrets import Redactor
from .._stream import BulkStream
from .._transport import DEFAULT_KEEPALIVE_EXPIRY
from ..errors import (
    UnexpectedAnswerError,
    ValidationError,
)
from ..hooks import Hooks
from ..ledger import Ledger
from ..models import Balance, BulkReport, Outcome, Sms
from ..phone import normalize_number
from ..rate import RateLimit
from ..retry import RetryPolicy
from ..text import Encoding, checked_payload
from . import _waba, _wire
from ._sms import SmsMethods, _SmsPayload
from .whatsapp import WhatsAppMethods

__all__ = ["ISMS_SMS_BASE_URLS", "ISMS_WABA_BASE_URLS", "IsmsClient"]

ISMS_SMS_BASE_URLS = (
    "https://www.isms.com.my",
    "https://ww3.isms.com.my",
    "https://smtpapi.vocotext.com",
    "https://smtpapi2.vocotext.com",
)
ISMS_WABA_BASE_URLS = (
    "https://smtpapi.vocotext.com",
    "https://smtpapi2.vocotext.com",
    "https://www.isms.com.my",
)
_SENDER_ID = re.compile(r"[A-Za-z0-9]{1,11}")


class IsmsClient(SmsMethods, WhatsAppMethods):
    """Async client for iSMS: SMS (JSON and classic APIs) and WhatsApp Business API.

    One instance holds one connection pool: create it once (``async with``, or call
    ``aclose()``) and share it. SMS bulk sends are split by encoding into chunks of ≤ 50,
    sent ``max_concurrency`` at a time; WhatsApp messages go one per request,
    ``max_whatsapp_concurrency`` at a time. Every recipient gets exactly one ``Outcome``.
    WhatsApp needs ``app_id``, ``app_secret`` and ``waba_number`` (the registered sender).
    With a ``ledger``, bulk calls given ``job=`` resume after a crash without sending twice,
    and single sends given ``key=`` are idempotent (see ``messaging_async.ledger``).
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        sender_id: str | None = None,
        app_id: str | None = None,
        app_secret: str | None = None,
        waba_number: str | None = None,
        base_url: str | None = None,
        sms_base_urls: Sequence[str] | None = None,
        waba_base_urls: Sequence[str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_concurrency: int = 10,
        max_whatsapp_concurrency: int = 32,
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
        ``ISMS_USERNAME``, ``ISMS_PASSWORD``, ``ISMS_APP_ID``, ``ISMS_APP_SECRET``,
        ``ISMS_WABA_NUMBER`` and ``ISMS_BASE_URL`` (one base URL for SMS and WhatsApp, as
        ``base_url=`` is). See docs/production.md for the traffic settings."""
        super().__init__(
            username=required_setting(username, "username", "ISMS_USERNAME"),  # type: ignore[arg-type]
            password=required_setting(password, "password", "ISMS_PASSWORD"),  # type: ignore[arg-type]
            max_concurrency=max_concurrency,
            retry=retry,
            default_country=default_country,
            ledger=ledger,
        )
        if sender_id is not None and (
            not isinstance(sender_id, str) or not _SENDER_ID.fullmatch(sender_id)
        ):
            raise ValidationError(
                "sender_id must be 1 to 11 letters or digits, no spaces", field="sender_id"
            )
        self._sender_id = sender_id
        urls, name = one_base_url(base_url, sms_base_urls, "sms_base_urls", "ISMS_BASE_URL")
        self._sms_base_urls = check_urls(ISMS_SMS_BASE_URLS if urls is None else urls, name)
        urls, name = one_base_url(base_url, waba_base_urls, "waba_base_urls", "ISMS_BASE_URL")
        self._waba_base_urls = check_urls(ISMS_WABA_BASE_URLS if urls is None else urls, name)
        self._max_whatsapp_concurrency = check_concurrency(
            max_whatsapp_concurrency, "max_whatsapp_concurrency"
        )
        app_id = from_environment(app_id, "ISMS_APP_ID")  # type: ignore[assignment]
        app_secret = from_environment(app_secret, "ISMS_APP_SECRET")  # type: ignore[assignment]
        waba_number = from_environment(waba_number, "ISMS_WABA_NUMBER")  # type: ignore[assignment]
        self._configure_whatsapp(app_id, app_secret, waba_number)
        self._redactor = Redactor((self._password, app_secret))
        traffic = traffic_settings(
            bulk_concurrency=max(self._max_concurrency, self._max_whatsapp_concurrency),
            single_send_capacity=single_send_capacity,
            max_connections=max_connections,
            rate_limit=rate_limit,
            hooks=hooks,
            proxy=proxy,
            verify=verify,
            trust_env=trust_env,
        )
        self._open_transport(timeout, transport, http_backend, keepalive_expiry, traffic, "isms")

    def _configure_whatsapp(
        self, app_id: str | None, app_secret: str | None, waba_number: str | None
    ) -> None:
        """Check what is given; what is missing is only an error when WhatsApp is used."""
        given = {"app_id": app_id, "app_secret": app_secret, "waba_number": waba_number}
        self._waba_missing = tuple(name for name, value in given.items() if value is None)
        for name, value in given.items():
            if value is not None:
                check_credential(value, name)
        self._whatsapp_settings = None
        if app_id is not None and app_secret is not None and waba_number is not None:
            try:
                sender = normalize_number(waba_number, default_calling_code=self._calling_code)
            except ValidationError as exc:
                exc.field = "waba_number"  # the setting, not a message's "to"
                raise
            self._whatsapp_settings = _waba.settings(
                app_id=app_id,
                app_secret=app_secret,
                username=self._username,
                password=self._password,
                sender=sender,
            )

    def __repr__(self) -> str:
        sender = self._whatsapp_settings.sender if self._whatsapp_settings else None
        return (
            f"IsmsClient(username={self._username!r}, sender_id={self._sender_id!r}, "
            f"waba_number={sender!r}, sms_base_urls={self._sms_base_urls!r})"
        )

    # ---------------------------------------------------------------- sending
    async def send_sms(
        self,
        to: str,
        text: str,
        *,
        encoding: Encoding | None = None,
        ref: Any = None,
        key: str | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Send one SMS and return its ``accepted`` outcome, or raise.

        Raises ``ValidationError`` before sending, a ``GatewayError`` subclass when the
        gateway refuses, ``UnreachableError`` when nothing was sent and
        ``OutcomeUnknownError`` when it may have been. ``timeout``: seconds for the whole
        call, failover and retries included (default ``SINGLE_SEND_TIMEOUT``, 5); it goes
        in the single-send lane, never behind a bulk call of this client. With ``key=``
        (needs a ledger) the send is idempotent: a key already accepted returns its
        recorded outcome unsent.
        """
        self._ensure_open()
        checked_key = self._check_key(key)
        message = Sms(to=to, text=text, ref=ref)
        try:
            pending = self._prepare_sms(encoding, 0, message)
        except ValidationError as exc:
            exc.index = None  # a single send has no position in a bulk input
            raise
        pending = pending._replace(content=message)
        return await self._keyed(
            checked_key, "isms", pending, self._send_json_chunk, timeout, codes=_wire.CODES
        )

    async def send_sms_bulk(
        self,
        messages: Iterable[Sms] | AsyncIterable[Sms],
        *,
        encoding: Encoding | None = None,
        on_outcome: OnOutcome | None = None,
        job: str | None = None,
        resend_unknown: bool = False,
        timeout: float | None = None,
    ) -> BulkReport:
        """Send personalised SMS; returns every recipient's outcome in input order.

        ``messages`` may be any iterable or async iterable, read lazily. ``on_outcome`` is
        called once per recipient as results come in — also for those accounted for while
        the call is being cancelled. Raises only for bad arguments; a fatal answer
        (authentication, credits) stops the run and is on ``report.stopped_by``.
        ``timeout``: seconds for the whole call (every bulk method takes it); what has not
        left by then is ``not_sent``. Without it a bulk call has no overall bound.
        ``job=`` (needs the client's ledger) journals the run: run it again after a crash
        and it resumes, sending nothing already accepted or possibly sent.
        ``resend_unknown=True`` sends ``unknown`` recipients again: that may deliver them
        twice.
        """
        plan = self._sms_plan(encoding)
        return await self._send_bulk(plan, messages, on_outcome, job, resend_unknown, timeout)

    def stream_sms_bulk(
        self,
        messages: Iterable[Sms] | AsyncIterable[Sms],
        *,
        encoding: Encoding | None = None,
        on_outcome: OnOutcome | None = None,
        job: str | None = None,
        resend_unknown: bool = False,
        timeout: float | None = None,
    ) -> BulkStream:
        """Like ``send_sms_bulk``, but yields outcomes as chunks finish (not in input order:
        ``outcome.index`` is the input position). Needs the client opened with ``async with``.
        Use it as ``async with client.stream_sms_bulk(...) as stream``: leaving the block
        closes the stream (stops sending); see ``BulkStream``."""
        plan = self._sms_plan(encoding)
        return self._stream_bulk(plan, messages, on_outcome, job, resend_unknown, timeout)

    async def send_sms_classic(
        self,
        numbers: Iterable[str] | AsyncIterable[str],
        text: str,
        *,
        encoding: Encoding | None = None,
        on_outcome: OnOutcome | None = None,
        job: str | None = None,
        resend_unknown: bool = False,
        timeout: float | None = None,
    ) -> BulkReport:
        """Send one text to many numbers through the classic API (≤ 50 per request, POST).

        The classic API answers once per request, so every number of a request shares its
        message id. ``job=`` and ``resend_unknown`` as for ``send_sms_bulk``.
        """
        self._ensure_open()
        payload = checked_payload(text, encoding, max_length=_wire.MAX_CLASSIC_TEXT)
        plan: BulkPlan[_SmsPayload] = BulkPlan(
            prepare=partial(self._prepare_number, payload),
            send_unit=self._send_classic_chunk,
            unit_size=_wire.MAX_RECIPIENTS,
            concurrency=self._max_concurrency,
            what="numbers",
            gateway="isms",
            same_text=text,
        )
        return await self._send_bulk(plan, numbers, on_outcome, job, resend_unknown, timeout)

    async def get_balance(self, *, timeout: float | None = None) -> Balance:
        """The account's credit balance. Retried freely: a look-up cannot send anything.
        ``timeout``: seconds for the whole call, retries included."""
        self._ensure_open()
        body = _wire.build_balance(username=self._username, password=self._password)
        with self._lookup(timeout):
            answer = await self._transport.post(
                self._sms_base_urls,
                _wire.BALANCE_PATH,
                content=body,
                content_type=_wire.JSON_CONTENT_TYPE,
                retry_after_send=True,
                redact=self._redactor,
            )
        try:
            credits = _wire.parse_balance(answer.text, self._redactor)
        except _wire.UnrecognisedAnswer:
            raise UnexpectedAnswerError(
                _wire.describe_unrecognised(answer.text, self._redactor)
                + f" (HTTP {answer.status})"
            ) from None
        return Balance(credits=credits, raw=answer.text)
