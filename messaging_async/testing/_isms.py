"""The sandbox's own reading of iSMS (docs/contract.md, A, B and E). It shares no parsing
with the SDK's wire modules, so a misreading on either side shows up as a failing end-to-end
test."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..text import estimate_credits, is_gsm_text
from ._records import SentMessage, SimulatedAnswer

if TYPE_CHECKING:
    from .gateway import FakeGateway

_NUMBER = re.compile(r"\d{8,15}")
# What people write inside a number: "+60 12-345 6789", "(012) 345.6789". An unencoded "+"
# in a form or query string arrives as a space, so that one is covered too.
_NUMBER_PUNCTUATION = re.compile(r"[\s+\-.()]")
_SENDID = re.compile(r"[A-Za-z0-9]{1,11}")
_MEANINGS = {
    -1001: "AUTHENTICATION FAILED",
    -1004: "INSUFFICIENT CREDITS",
    -1005: "INVALID SMS TYPE",
    -1006: "INVALID BODY LENGTH",
    -1008: "MISSING PARAMETER OR INVALID DESTINATION NUMBER",
    -1009: "INVALID CONTENT",
    -1010: "MORE THAN 50 DESTINATION NUMBERS",
    -1013: "AGREEDTERM IS NOT YES",
    -1014: "INVALID JSON",
}


def _error(code: int) -> SimulatedAnswer:
    body = {"status": "error", "code": code, "message": f"{code} = {_MEANINGS.get(code, 'ERROR')}"}
    return SimulatedAnswer(200, json.dumps(body), "application/json")


def json_send(fake: FakeGateway, body: bytes) -> SimulatedAnswer:
    """A1: up to 50 personalised messages of one type."""
    try:
        request = json.loads(body)
    except ValueError:
        return _error(-1014)
    if not isinstance(request, dict):
        return _error(-1014)
    request["type"] = _json_type(request.get("type"))
    messages = request.get("messages")
    problem = _common_problem(fake, request)
    if problem is None and (not isinstance(messages, list) or not messages):
        problem = -1008
    if problem is not None or not isinstance(messages, list):
        return _error(problem or -1008)
    if len(messages) > 50:
        return _error(-1010)
    if fake.isms_credits <= 0:
        return _error(-1004)
    results = [_one(fake, request, m, "isms_send_json.php") for m in messages]
    failed = sum(1 for result in results if result["code"] != 2000)
    used = sum((Decimal(r.pop("_credits", 0)) for r in results), Decimal(0))
    answer = {
        "status": "success" if not failed else ("partial" if failed < len(results) else "error"),
        "total_messages": len(results),
        "total_success": len(results) - failed,
        "total_failed": failed,
        "total_credits_used": int(used) if used == int(used) else float(used),
        "results": results,
    }
    return SimulatedAnswer(200, json.dumps(answer), "application/json")


def _common_problem(fake: FakeGateway, request: dict[str, Any]) -> int | None:
    if request.get("un") != fake.username or request.get("pwd") != fake.password:
        return -1001
    if request.get("agreedterm") != "YES":
        return -1013
    if request.get("type") not in ("1", "2"):
        return -1005
    sendid = request.get("sendid")
    if sendid not in (None, "") and (not isinstance(sendid, str) or not _SENDID.fullmatch(sendid)):
        return -1008
    return None


def _json_type(value: Any) -> Any:
    """``type`` as text: a JSON number 1 is type ``"1"`` (PHP clients send numbers)."""
    return str(value) if isinstance(value, int) else value  # True is "True": no type


def _sender(request: dict[str, Any]) -> str | None:
    """The optional ``sendid``; an empty one is no sender (PHP clients post every key)."""
    return request.get("sendid") or None


def normalise_number(number: Any) -> str | None:
    """A destination as digits, or ``None`` when it is not 8-15 digits once ``+``, spaces,
    dashes, dots and brackets are gone (the seed's own example writes ``601X-XXXXXXX``)."""
    if not isinstance(number, str):
        return None
    digits = _NUMBER_PUNCTUATION.sub("", number)
    return digits if _NUMBER.fullmatch(digits) else None


def _one(fake: FakeGateway, request: dict[str, Any], message: Any, endpoint: str) -> dict[str, Any]:
    given = message.get("dstno") if isinstance(message, dict) else None
    number = normalise_number(given)
    text = message.get("msg") if isinstance(message, dict) else None
    code = _message_problem(request["type"], number, text, 900)
    if code is None and number is not None and isinstance(text, str):
        credits = Decimal(estimate_credits(text))
        if fake.isms_credits < credits:
            code = -1004
        else:
            fake.isms_credits -= credits
            sms_id = fake.next_id()
            fake.record(
                SentMessage(
                    gateway="isms",
                    endpoint=endpoint,
                    to=number,
                    message_id=sms_id,
                    type=request["type"],
                    text=text,
                    sender=_sender(request),
                    credits=credits,
                    at=fake.now(),
                )
            )
            return {
                "dstno": number,
                "code": 2000,
                "sms_id": sms_id,
                "status": "success",
                "_credits": credits,
            }
    code = code or -1008
    return {"dstno": str(given), "code": code, "status": _MEANINGS.get(code, "ERROR")}


def _message_problem(sms_type: str, number: str | None, text: Any, max_length: int) -> int | None:
    """A missing or empty ``msg`` is the seed's -1008 (missing parameter); one that is too
    long is -1006 (invalid body length, from the provider's other pages)."""
    if number is None or not isinstance(text, str) or not text:
        return -1008
    if len(text) > max_length:
        return -1006
    if sms_type == "1" and not (text.isascii() and is_gsm_text(text)):
        return -1009  # the sandbox is strict: a real handset would show this garbled
    return None


def classic_send(fake: FakeGateway, form: dict[str, str]) -> SimulatedAnswer:
    """A2: one text to numbers joined by ';'; plain-text answers."""
    problem = _common_problem(fake, form)
    given = form.get("dstno", "").split(";")
    if problem is None and len(given) > 50:
        problem = -1010
    sms_type = form.get("type", "")
    numbers = [normalise_number(number) or "" for number in given]
    for number in numbers:
        problem = problem or _message_problem(sms_type, number or None, form.get("msg"), 700)
    text = form.get("msg", "")
    credits = Decimal(estimate_credits(text)) * len(numbers) if problem is None else Decimal(0)
    if problem is None and fake.isms_credits < credits:
        problem = -1004
    if problem is not None:
        return SimulatedAnswer(200, str(problem))
    fake.isms_credits -= credits
    trx = fake.next_id()
    for number in numbers:
        fake.record(
            SentMessage(
                gateway="isms",
                endpoint="isms_send_all_id.php",
                to=number,
                message_id=trx,
                type=sms_type,
                text=text,
                sender=_sender(form),
                credits=credits / len(numbers),
                at=fake.now(),
            )
        )
    return SimulatedAnswer(200, f"2000 = SUCCESS:{trx}")


def balance(fake: FakeGateway, body: bytes) -> SimulatedAnswer:
    try:
        request = json.loads(body)
    except ValueError:
        return _error(-1014)
    if (
        not isinstance(request, dict)
        or request.get("un") != fake.username
        or request.get("pwd") != fake.password
    ):
        return _error(-1001)
    answer = {"status": "success", "code": 0, "balance": f"{fake.isms_credits:.2f}"}
    return SimulatedAnswer(200, json.dumps(answer), "application/json")


_WABA_MEANINGS = {
    1001: "Authentication failed",
    1004: "Insufficient credits",
    1008: "Missing required parameter",
    50500: "Invalid destination phone number",
    70502: "Insufficient WABA credits",
    45010: "Reply time limit exceeded",
    60006: "Template code does not exist",
}


def _waba_error(code: int) -> SimulatedAnswer:
    body = {"statusCode": str(code), "message": _WABA_MEANINGS[code]}
    return SimulatedAnswer(200, json.dumps(body), "application/json")


def waba_send(fake: FakeGateway, body: bytes) -> SimulatedAnswer:
    """B: one WhatsApp message per request."""
    try:
        request = json.loads(body)
    except ValueError:
        return _waba_error(1008)
    if not isinstance(request, dict):
        return _waba_error(1008)
    code = _waba_problem(fake, request)
    if code is not None:
        return _waba_error(code)
    fake.waba_credits -= 1
    message_id = fake.next_id()
    kind = request["Type"]
    params = request.get("TemplateParams")
    fake.record(
        SentMessage(
            gateway="whatsapp",
            endpoint="isms_send_waba.php",
            to=normalise_number(request["To"]) or request["To"],
            message_id=message_id,
            type=kind,
            text=request.get("Content"),
            sender=fake.waba_number,  # From was checked to be it, however it was written
            template=request.get("TemplateCode"),
            params=params if params != [] else {},
            file_url=request.get("fileUrl"),
            at=fake.now(),
        )
    )
    answer = {"requestId": str(uuid.uuid4()).upper(), "statusCode": "OK", "messageId": message_id}
    return SimulatedAnswer(200, json.dumps(answer), "application/json")


def _waba_problem(fake: FakeGateway, request: dict[str, Any]) -> int | None:
    credentials = (
        request.get("AppId"),
        request.get("AppSecret"),
        request.get("un"),
        request.get("pwd"),
    )
    if credentials != (fake.app_id, fake.app_secret, fake.username, fake.password):
        return 1001
    if request.get("agreedterm") != "YES" or _channel(request) != "whatsapp":
        return 1008
    if not _is_waba_number(fake, request.get("From")) or not isinstance(request.get("To"), str):
        return 1008
    to = normalise_number(request["To"])
    if to is None:
        return 50500
    kind = request.get("Type")
    required = {
        "template": ("TemplateCode", "Language"),
        "message": ("Content",),
        "file": ("fileUrl", "fileName"),
    }
    if kind not in required or any(not request.get(name) for name in required[kind]):
        return 1008
    if kind == "template":
        # PHP's json_encode writes an empty array as [], never {}: that is "no params".
        params = request.get("TemplateParams", {})
        if params != [] and not isinstance(params, dict):
            return 1008
        if request["TemplateCode"] not in fake.templates:
            return 60006
    elif not fake.window_open(to):
        return 45010
    if kind == "file" and not str(request["fileUrl"]).startswith(("http://", "https://")):
        return 1008
    return 70502 if fake.waba_credits < 1 else None


def _channel(request: dict[str, Any]) -> Any:
    """``ChannelType``, ``whatsapp`` when absent: the seed's table says required, but its
    own JSON and PHP examples leave it out, as every public client does."""
    channel = request.get("ChannelType", "whatsapp")
    return channel.lower() if isinstance(channel, str) else channel


def _is_waba_number(fake: FakeGateway, given: Any) -> bool:
    """``From`` is the account's WABA number, written as the account has it or with the
    same ``+``, spaces and dashes a destination may carry."""
    if given == fake.waba_number:
        return True
    digits = normalise_number(given)
    return digits is not None and digits == normalise_number(fake.waba_number)
