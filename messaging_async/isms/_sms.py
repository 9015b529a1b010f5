"""How ``IsmsClient`` prepares, posts and reads its SMS requests; mixed into the client.

The public SMS methods (``client.py``) describe a call; this module holds the JSON-API and
classic-API chunk senders they share and the checks on each message. Moved here unchanged
from ``client.py`` to keep each module small.
"""

from __future__ import annotations

import logging
from functools import partial

from .._client import BaseClient, unreadable_answer
from .._plan import BulkPlan, Pending, UnitResult, new_pending
from .._secrets import Redactor
from .._transport import Answer, SendProgress
from ..errors import ValidationError
from ..models import Outcome, Sms
from ..phone import normalize_number
from ..retry import RetryPolicy
from ..text import Encoding, check_encoding, checked_payload
from . import _outcomes, _wire

logger = logging.getLogger("messaging_async.isms")

# A validated SMS on its way to a chunk: its text and the encoding it goes with.
_SmsPayload = tuple[str, Encoding]


class SmsMethods(BaseClient):
    """The SMS request machinery of ``IsmsClient``; its settings are set by the client."""

    _username: str
    _password: str
    _redactor: Redactor  # the client's secrets: password and app secret
    _retry: RetryPolicy
    _calling_code: str | None
    _sender_id: str | None
    _sms_base_urls: tuple[str, ...]

    def _sms_plan(self, encoding: Encoding | None) -> BulkPlan[_SmsPayload]:
        return BulkPlan(
            prepare=partial(self._prepare_sms, check_encoding(encoding)),
            send_unit=self._send_json_chunk,
            unit_size=_wire.MAX_RECIPIENTS,
            concurrency=self._max_concurrency,
            unit_key=_encoding_of,
            gateway="isms",
            keeps_content=True,
        )

    def _prepare_sms(
        self, forced: Encoding | None, index: int, item: object
    ) -> Pending[_SmsPayload]:
        if not isinstance(item, Sms):
            raise ValidationError(
                f"message {index} is a {type(item).__name__}, not an Sms",
                field="messages",
                index=index,
            )
        if item.seqno is not None:
            raise ValidationError(
                "iSMS has no idempotency key: seqno is for SmsComMyClient",
                field="seqno",
                index=index,
            )
        to = normalize_number(item.to, default_calling_code=self._calling_code, index=index)
        payload = checked_payload(
            item.text, item.encoding or forced, max_length=_wire.MAX_JSON_TEXT, index=index
        )
        # The item rides along as the pending's ``content`` (what a journalled run's ledger
        # fingerprints): one pointer in a slot every pending has, instead of a wrapper
        # keeping it aside per recipient (see ``Journal.wrap``).
        return new_pending(index, to, item.ref, payload, item)

    def _prepare_number(
        self, payload: _SmsPayload, index: int, number: object
    ) -> Pending[_SmsPayload]:
        to = normalize_number(number, default_calling_code=self._calling_code, index=index)
        return new_pending(index, to, None, payload)

    async def _send_json_chunk(
        self, unit: list[Pending[_SmsPayload]], progress: SendProgress
    ) -> UnitResult:
        # The numbers and texts, each listed once: the body, the redactor and the outcomes
        # share them, and no tuple is built per recipient for the body or the outcomes
        # (the unit's own pendings are read as ``(index, number, ref)``).
        numbers = [p.to for p in unit]
        texts = [p.message[0] for p in unit]
        body = _wire.build_json_send(
            username=self._username,
            password=self._password,
            sender_id=self._sender_id,
            encoding=unit[0].message[1],
            recipients=zip(numbers, texts, strict=True),
        )
        redact = self._redactor.including(texts, numbers)
        answer = await self._post_send(
            _wire.JSON_PATH, body, _wire.JSON_CONTENT_TYPE, progress, redact
        )
        try:
            parsed = _wire.parse_json_send(answer.text)
        except _wire.UnrecognisedAnswer:
            return UnitResult(_unrecognised(unit, answer, redact))
        accepted = _outcomes.accepted_unit(unit, parsed, answer.text)
        if accepted is not None:
            return UnitResult([], parsed.credits_used, accepted=accepted, raws=parsed.results)
        outcomes, fatal = _outcomes.chunk_outcomes(unit, parsed, redact)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "iSMS chunk of %d via %s: %s", len(unit), answer.base_url, _tally(outcomes)
            )
        return UnitResult(outcomes, parsed.credits_used, fatal)

    async def _send_classic_chunk(
        self, unit: list[Pending[_SmsPayload]], progress: SendProgress
    ) -> UnitResult:
        text, encoding = unit[0].message
        body = _wire.build_classic_send(
            username=self._username,
            password=self._password,
            sender_id=self._sender_id,
            encoding=encoding,
            numbers=[p.to for p in unit],
            text=text,
        )
        redact = self._redactor.including((text,), [p.to for p in unit])
        answer = await self._post_send(
            _wire.CLASSIC_PATH, body, _wire.FORM_CONTENT_TYPE, progress, redact
        )
        try:
            code, trx_id = _wire.parse_classic_send(answer.text)
        except _wire.UnrecognisedAnswer:
            return UnitResult(_unrecognised(unit, answer, redact))
        recipients = [(p.position, p.to, p.ref) for p in unit]
        outcomes, fatal = _outcomes.classic_outcomes(recipients, code, trx_id, answer.text, redact)
        return UnitResult(outcomes, None, fatal)

    async def _post_send(
        self,
        path: str,
        body: bytes,
        content_type: str,
        progress: SendProgress,
        redact: Redactor,
    ) -> Answer:
        return await self._transport.post(
            self._sms_base_urls,
            path,
            content=body,
            content_type=content_type,
            retry_after_send=self._retry.allow_duplicate_sends,
            redact=redact,
            progress=progress,
        )


def _unrecognised(
    unit: list[Pending[_SmsPayload]], answer: Answer, redact: Redactor
) -> list[Outcome]:
    return unreadable_answer(unit, answer, _wire.describe_unrecognised(answer.text, redact))


def _encoding_of(pending: Pending[_SmsPayload]) -> Encoding:
    return pending.message[1]


def _tally(outcomes: list[Outcome]) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
    return ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
