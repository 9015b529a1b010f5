"""The sandbox's own reading of sms.com.my HTTP Specification 1.84 (docs/contract.md, C).

Forms arrive as ASP.NET reads them (``_forms.aspnet_request``): names in lower case,
whatever case the client wrote them in.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from ..text import estimate_credits, is_gsm_text
from ._records import SentMessage, SimulatedAnswer

if TYPE_CHECKING:
    from .gateway import FakeGateway

_NUMBER = re.compile(r"\d{8,15}")
_SENDER = re.compile(r"\d{1,13}|[A-Za-z0-9]{1,11}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
# The table spells them so; the document's own URL writes msgtype=mms.
_BARCODE_TYPES = {name.lower(): name for name in ("EMS", "Nokia", "MMS", "textmsg", "textlink")}
SEQNO_MEMORY = 24 * 3600.0


def send(fake: FakeGateway, endpoint: str, form: dict[str, str]) -> SimulatedAnswer:
    """ISendSMS, ISendSMSUnicode, ISendSMS2D and ISendSMSNoDR."""
    if form.get("seqno"):  # every attempt's seqno, so tests can see retries reuse it
        fake.seqnos_by_message[(form.get("mobile", ""), form.get("message", ""))].add(form["seqno"])
    if form.get("username") != fake.username or form.get("password") != fake.password:
        return _code(1702)
    numbers = (
        form.get("mobile", "").split(",")
        if endpoint.endswith("NoDR.aspx")
        else [form.get("mobile", "")]
    )
    if not all(_NUMBER.fullmatch(number) for number in numbers):
        return _code(1705)
    text = _text_of(endpoint, form)
    sender = form.get("sender") or None  # an empty sender is no sender: it is optional
    if text is None or (sender is not None and not _SENDER.fullmatch(sender)):
        return _code(1706)
    seqno = _seqno(endpoint, form)
    if seqno is not None and fake.seqno_seen(seqno):
        return _code(1718)
    credits = Decimal(estimate_credits(text)) * len(numbers)
    if fake.smscommy_credits < credits:
        return _code(1704)
    fake.smscommy_credits -= credits
    if seqno is not None:
        fake.remember_seqno(seqno)
    message_id = fake.next_id()
    for number in numbers:
        fake.record(
            SentMessage(
                gateway="smscommy",
                endpoint=endpoint.rsplit("/", 1)[-1],
                to=number,
                message_id=message_id,
                type=form.get("type") or _BARCODE_TYPES.get(form.get("msgtype", "").lower(), ""),
                text=text,
                sender=sender,
                seqno=seqno,
                credits=credits / len(numbers),
                at=fake.now(),
            )
        )
    if endpoint.endswith("NoDR.aspx"):  # the one success form, without the MsgId it lacks
        return SimulatedAnswer(200, "1701:")
    return SimulatedAnswer(200, f"1701:{message_id}")


def _seqno(endpoint: str, form: dict[str, str]) -> str | None:
    """``seqno``; on ISendSMS2D.aspx also ``sseqno``, as the document's table spells it."""
    seqno = form.get("seqno")
    if not seqno and endpoint.endswith("2D.aspx"):
        seqno = form.get("sseqno")
    return seqno or None


def _text_of(endpoint: str, form: dict[str, str]) -> str | None:
    """The message as a handset would show it, or ``None`` when the request is invalid."""
    message = form.get("message", "")
    if not message:
        return None
    if endpoint.endswith("2D.aspx"):
        return message if form.get("msgtype", "").lower() in _BARCODE_TYPES else None
    kind = form.get("type")
    if kind in ("1", "2"):
        return message if message.isascii() and is_gsm_text(message) else None
    if kind in ("3", "4"):
        return message if endpoint.endswith("Unicode.aspx") else _from_hex(message)
    if kind in ("5", "6"):
        return message if _HEX.fullmatch(message) and len(message) <= 280 else None
    return None


def _from_hex(message: str) -> str | None:
    if len(message) % 4 or not _HEX.fullmatch(message):
        return None
    try:
        return bytes.fromhex(message).decode("utf-16-be")
    except UnicodeDecodeError:
        return None


def credits_left(fake: FakeGateway, form: dict[str, str]) -> SimulatedAnswer:
    if form.get("username") != fake.username or form.get("password") != fake.password:
        return _code(1702)
    return SimulatedAnswer(
        200, f"Credits used: {fake.smscommy_used}, Credits left: {fake.smscommy_credits}"
    )


def transfer(fake: FakeGateway, form: dict[str, str]) -> SimulatedAnswer:
    if form.get("username") != fake.username or form.get("password") != fake.password:
        return _code(1702)
    if form.get("cust") not in fake.customers:
        return _code(1708)
    try:
        amount = Decimal(form.get("credit", ""))
    except InvalidOperation:
        return _code(1709)
    if not amount.is_finite() or amount <= 0 or amount > fake.smscommy_credits:
        return _code(1709)
    seqno = form.get("seqno") or None
    if seqno is not None and fake.seqno_seen(seqno):
        return _code(1718)
    if seqno is not None:
        fake.remember_seqno(seqno)
    fake.smscommy_credits -= amount
    fake.customers[form["cust"]] += amount
    return _code(1707)


def _code(code: int) -> SimulatedAnswer:
    return SimulatedAnswer(200, str(code))
