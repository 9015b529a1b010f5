"""iSMS WhatsApp Business API wire format (CONTRACT B): bodies, codes, answers. Pure: no I/O."""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from attrs import field, frozen

from .._codes import Code, CodeTable
from .._parse import parse_code
from .._secrets import Redactor
from ..errors import (
    AuthenticationError,
    GatewayError,
    InsufficientCreditsError,
    InvalidNumberError,
    InvalidRequestError,
    PlainHttpWarning,
    ReplyWindowClosedError,
    TemplateNotFoundError,
    ValidationError,
)
from ..models import Outcome, OutcomeStatus

PATH = "isms_send_waba.php"
CONTENT_TYPE = "application/json"
MAX_TEXT = 4096  # WhatsApp's own limit for a text message body
MAX_FILE_NAME = 240
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})?")


CODES = CodeTable(
    "iSMS WhatsApp",
    {
        1001: Code(AuthenticationError, True, "authentication failed"),
        1004: Code(InsufficientCreditsError, True, "insufficient credits"),
        1008: Code(InvalidRequestError, False, "missing required parameter"),
        50500: Code(InvalidNumberError, False, "invalid destination phone number"),
        70502: Code(InsufficientCreditsError, True, "insufficient WABA credits"),
        45010: Code(
            ReplyWindowClosedError,
            False,
            "outside the 24-hour reply window: the user has not written in the last 24 hours; "
            "send an approved template instead",
        ),
        60006: Code(TemplateNotFoundError, True, "template code does not exist", scoped=True),
    },
)


class UnrecognisedAnswer(Exception):
    """The body is not a WABA answer the contract describes."""


@frozen
class Settings:
    """A client's WhatsApp account: the common body fields and the registered sender."""

    common: dict[str, str] = field(repr=False)
    sender: str


@frozen
class Prepared:
    """A validated WhatsApp message: its ``Type``, its own fields, and what must never be
    quoted back (texts, template parameters)."""

    kind: str
    fields: dict[str, Any]
    secrets: tuple[str, ...]
    template_code: str | None = None


def error_for(
    code: int | None, gateway_message: str | None = None, raw: Any = None, *, redact: Redactor
) -> GatewayError:
    """The typed error for a code of this gateway (see ``CODES``), its text redacted."""
    return CODES.error_for(code, gateway_message, raw, redact=redact)


is_scoped = CODES.is_scoped


# ---------------------------------------------------------------- validation
def template(code: object, language: object, params: object, index: int | None) -> Prepared:
    if not isinstance(code, str) or not code.strip():
        raise ValidationError(
            "template_code must be a non-empty string", field="template_code", index=index
        )
    if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
        raise ValidationError(
            "language must be a language code such as 'en', 'ms' or 'en_US'",
            field="language",
            index=index,
        )
    values = template_params(params, index)
    fields = {"TemplateCode": code, "Language": language, "TemplateParams": values}
    return Prepared("template", fields, tuple(values.values()), template_code=code)


def text(content: object, index: int | None) -> Prepared:
    if not isinstance(content, str) or not content.strip():
        raise ValidationError(
            "a WhatsApp text must be a non-empty string", field="text", index=index
        )
    if len(content) > MAX_TEXT:
        raise ValidationError(
            f"the text has {len(content)} characters; WhatsApp takes at most {MAX_TEXT}",
            field="text",
            index=index,
        )
    _check_encodable(content, "text", index)
    return Prepared("message", {"Content": content}, (content,))


def file(url: object, file_name: object, index: int | None) -> Prepared:
    checked = file_url(url, index)
    if not isinstance(file_name, str) or not file_name.strip() or len(file_name) > MAX_FILE_NAME:
        raise ValidationError(
            f"file_name must be a non-empty string of at most {MAX_FILE_NAME} characters",
            field="file_name",
            index=index,
        )
    _check_encodable(file_name, "file_name", index)
    return Prepared("file", {"fileUrl": checked, "fileName": file_name}, ())


def file_url(url: object, index: int | None) -> str:
    """An absolute http(s) URL with a host and no credentials; plain http gets a warning."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            "the file URL must be an absolute http(s) URL", field="url", index=index
        )
    if parts.username or parts.password:
        raise ValidationError(
            "the file URL must not embed credentials: WhatsApp's servers fetch it as given",
            field="url",
            index=index,
        )
    if parts.scheme == "http":
        warnings.warn(
            f"file URL on {parts.hostname} uses plain http; prefer https",
            PlainHttpWarning,
            stacklevel=4,
        )
    assert isinstance(url, str)
    return url


def template_params(params: object, index: int | None) -> dict[str, str]:
    """``TemplateParams`` as a JSON object of strings: a mapping as given, a sequence as
    ``param1`` … ``paramN``; numbers, dates and datetimes formatted, anything else refused."""
    if params is None:
        return {}
    if isinstance(params, Mapping):
        items = list(params.items())
    elif isinstance(params, Sequence) and not isinstance(params, str | bytes):
        items = [(f"param{position}", value) for position, value in enumerate(params, start=1)]
    else:
        raise ValidationError(
            f"params must be a mapping or a sequence, not {type(params).__name__}",
            field="params",
            index=index,
        )
    formatted: dict[str, str] = {}
    for name, value in items:
        if not isinstance(name, str) or not name:
            raise ValidationError(
                "template parameter names must be non-empty strings", field="params", index=index
            )
        formatted[name] = _param_text(name, value, index)
    return formatted


def _param_text(name: str, value: object, index: int | None) -> str:
    if isinstance(value, bool) or value is None:
        raise ValidationError(
            f"template parameter {name} is {value!r}; give the text to show",
            field="params",
            index=index,
        )
    if isinstance(value, datetime):
        formatted = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, date):
        formatted = value.isoformat()
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(
            f"template parameter {name} is not a finite number", field="params", index=index
        )
    elif isinstance(value, str | int | float | Decimal):
        formatted = str(value)
    else:
        raise ValidationError(
            f"template parameter {name} is a {type(value).__name__}; "
            "give a str, number, date or datetime",
            field="params",
            index=index,
        )
    if not formatted.strip():
        raise ValidationError(f"template parameter {name} is empty", field="params", index=index)
    _check_encodable(formatted, "params", index)
    return formatted


def _check_encodable(value: str, field: str, index: int | None) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{field} holds a lone surrogate (broken UTF-16)", field=field, index=index
        ) from None


# ---------------------------------------------------------------- wire
def build_body(settings: Settings, to: str, message: Prepared) -> bytes:
    """CONTRACT B: the common fields, then ``Type``, ``From``, ``To`` and the type's own."""
    body: dict[str, Any] = {
        **settings.common,
        "Type": message.kind,
        "From": settings.sender,
        "To": to,
        **message.fields,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def settings(
    *, app_id: str, app_secret: str, username: str, password: str, sender: str
) -> Settings:
    common = {
        "AppId": app_id,
        "AppSecret": app_secret,
        "un": username,
        "pwd": password,
        "agreedterm": "YES",
        "ChannelType": "whatsapp",
    }
    return Settings(common=common, sender=sender)


def outcome_for(
    index: int, to: str, ref: Any, text: str, redact: Redactor
) -> tuple[Outcome, GatewayError | None]:
    """The recipient's outcome from the answer body, and the error if it is fatal. A refusal
    is quoted through ``redact`` (the request's secrets, text, template parameters)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or "statusCode" not in data:
        raise UnrecognisedAnswer("no statusCode in the answer")
    status_code = data["statusCode"]
    request_id = _text_or_none(data.get("requestId"))
    if _is_success(status_code):
        message_id = _text_or_none(data.get("messageId"))
        outcome = Outcome(
            to=to,
            status=OutcomeStatus.ACCEPTED,
            index=index,
            message_id=message_id,
            code=0,
            ref=ref,
            request_id=request_id,
            raw=data,
        )
        return outcome, None
    code = parse_code(status_code)
    error = error_for(code, _text_or_none(data.get("message")), data, redact=redact)
    outcome = Outcome(
        to=to,
        status=OutcomeStatus.REJECTED,
        index=index,
        code=code,
        reason=str(error),
        ref=ref,
        request_id=request_id,
        error=error,
        raw=error.raw,
    )
    return outcome, error if error.fatal else None


def _is_success(status_code: object) -> bool:
    if isinstance(status_code, str):
        return status_code.strip().upper() in ("OK", "0")
    return isinstance(status_code, int) and not isinstance(status_code, bool) and status_code == 0


def _text_or_none(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def describe_unrecognised(text: str, redact: Redactor) -> str:
    return f"unrecognised answer from iSMS WhatsApp: {redact.snippet(text)}"
