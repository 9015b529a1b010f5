"""The WhatsApp half of ``IsmsClient``: templates, free text and files, one request each."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any

from .._client import BaseClient, OnOutcome, unreadable_answer
from .._plan import BulkPlan, Pending, UnitResult
from .._secrets import Redactor
from .._stream import BulkStream
from .._transport import SendProgress
from ..errors import ValidationError
from ..models import (
    BulkReport,
    Outcome,
    WhatsAppFile,
    WhatsAppMessage,
    WhatsAppTemplate,
    WhatsAppText,
)
from ..phone import normalize_number
from ..retry import RetryPolicy
from . import _waba


class WhatsAppMethods(BaseClient):
    """Sending over iSMS's WhatsApp Business API; mixed into ``IsmsClient``.

    Each message is one request, so a bulk run sends ``max_whatsapp_concurrency`` requests
    at a time. Like SMS, a send that may have reached the gateway is never re-sent
    automatically: templates are charged per message.
    """

    _username: str
    _password: str
    _redactor: Redactor  # the client's secrets: password and app secret
    _retry: RetryPolicy
    _calling_code: str | None
    _waba_base_urls: tuple[str, ...]
    _max_whatsapp_concurrency: int
    _whatsapp_settings: _waba.Settings | None
    _waba_missing: tuple[str, ...]

    async def send_whatsapp_template(
        self,
        to: str,
        template_code: str,
        *,
        language: str = "en",
        params: Mapping[str, object] | Sequence[object] | None = None,
        ref: Any = None,
        key: str | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Send an approved template (any time). Returns the accepted outcome or raises.
        With ``key=`` (needs a ledger) the send is idempotent, as ``send_sms``'s;
        ``timeout`` bounds the whole call, as there."""
        message = WhatsAppTemplate(
            to=to, template_code=template_code, language=language, params=params, ref=ref
        )
        return await self._send_one_whatsapp(message, key, timeout)

    async def send_whatsapp_text(
        self,
        to: str,
        text: str,
        *,
        ref: Any = None,
        key: str | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Send free text; raises ``ReplyWindowClosedError`` outside the 24-hour window."""
        message = WhatsAppText(to=to, text=text, ref=ref)
        return await self._send_one_whatsapp(message, key, timeout)

    async def send_whatsapp_file(
        self,
        to: str,
        url: str,
        file_name: str,
        *,
        ref: Any = None,
        key: str | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Send a file by direct public URL; raises ``ReplyWindowClosedError`` outside the
        24-hour window."""
        return await self._send_one_whatsapp(
            WhatsAppFile(to=to, url=url, file_name=file_name, ref=ref), key, timeout
        )

    async def send_whatsapp_bulk(
        self,
        messages: Iterable[WhatsAppMessage] | AsyncIterable[WhatsAppMessage],
        *,
        on_outcome: OnOutcome | None = None,
        job: str | None = None,
        resend_unknown: bool = False,
        timeout: float | None = None,
    ) -> BulkReport:
        """Send many WhatsApp messages concurrently; one outcome each, in input order.

        Fatal answers (authentication, credits) stop the run; a template that does not
        exist (60006) stops only the messages that use the same template code.
        ``job=`` and ``resend_unknown`` as for ``send_sms_bulk``: a message left in flight
        by a crash is ``unknown`` and never sent again (templates are charged per message).
        """
        self._ensure_open()
        self._require_whatsapp_settings()
        plan = self._whatsapp_plan()
        return await self._send_bulk(plan, messages, on_outcome, job, resend_unknown, timeout)

    def stream_whatsapp_bulk(
        self,
        messages: Iterable[WhatsAppMessage] | AsyncIterable[WhatsAppMessage],
        *,
        on_outcome: OnOutcome | None = None,
        job: str | None = None,
        resend_unknown: bool = False,
        timeout: float | None = None,
    ) -> BulkStream:
        """Like ``send_whatsapp_bulk``, yielding outcomes as requests finish."""
        self._require_whatsapp_settings()
        plan = self._whatsapp_plan()
        return self._stream_bulk(plan, messages, on_outcome, job, resend_unknown, timeout)

    # ---------------------------------------------------------------- internals
    async def _send_one_whatsapp(
        self, message: WhatsAppMessage, key: str | None, timeout: object
    ) -> Outcome:
        self._ensure_open()
        checked_key = self._check_key(key)
        self._require_whatsapp_settings()
        try:
            pending = self._prepare_whatsapp(0, message)
        except ValidationError as exc:
            exc.index = None
            raise
        pending = pending._replace(content=message)
        return await self._keyed(
            checked_key, "whatsapp", pending, self._send_whatsapp_unit, timeout, codes=_waba.CODES
        )

    def _require_whatsapp_settings(self) -> _waba.Settings:
        if self._whatsapp_settings is None:
            # the argument or its variable: a CLI user sets only the variable
            names = self._waba_missing
            missing, given = ", ".join(names), ", ".join(f"{name}=" for name in names)
            variables = ", ".join(f"$ISMS_{name.upper()}" for name in names)
            raise ValidationError(
                f"WhatsApp needs {missing}: IsmsClient({given}) or {variables}",
                field=self._waba_missing[0],
            )
        return self._whatsapp_settings

    def _whatsapp_plan(self) -> BulkPlan[_waba.Prepared]:
        return BulkPlan(
            prepare=self._prepare_whatsapp,
            send_unit=self._send_whatsapp_unit,
            unit_size=1,
            concurrency=self._max_whatsapp_concurrency,
            stop_scope=_template_scope,
            gateway="whatsapp",
        )

    def _prepare_whatsapp(self, index: int, item: object) -> Pending[_waba.Prepared]:
        if isinstance(item, WhatsAppTemplate):
            prepared = _waba.template(item.template_code, item.language, item.params, index)
        elif isinstance(item, WhatsAppText):
            prepared = _waba.text(item.text, index)
        elif isinstance(item, WhatsAppFile):
            prepared = _waba.file(item.url, item.file_name, index)
        else:
            raise ValidationError(
                f"message {index} is a {type(item).__name__}, not a WhatsAppTemplate, "
                "WhatsAppText or WhatsAppFile",
                field="messages",
                index=index,
            )
        to = normalize_number(item.to, default_calling_code=self._calling_code, index=index)
        return Pending(position=index, to=to, ref=item.ref, message=prepared)

    async def _send_whatsapp_unit(
        self, unit: list[Pending[_waba.Prepared]], progress: SendProgress
    ) -> UnitResult:
        (pending,) = unit
        settings = self._require_whatsapp_settings()
        body = _waba.build_body(settings, pending.to, pending.message)
        redact = self._redactor.including(pending.message.secrets, (pending.to, settings.sender))
        answer = await self._transport.post(
            self._waba_base_urls,
            _waba.PATH,
            content=body,
            content_type=_waba.CONTENT_TYPE,
            retry_after_send=self._retry.allow_duplicate_sends,
            redact=redact,
            progress=progress,
        )
        try:
            outcome, fatal = _waba.outcome_for(
                pending.position, pending.to, pending.ref, answer.text, redact
            )
        except _waba.UnrecognisedAnswer:
            note = _waba.describe_unrecognised(answer.text, redact)
            return UnitResult(unreadable_answer(unit, answer, note))
        scoped = fatal is not None and _waba.is_scoped(fatal)
        return UnitResult([outcome], None, fatal, scoped=scoped)


def _template_scope(pending: Pending[_waba.Prepared]) -> str | None:
    return pending.message.template_code
