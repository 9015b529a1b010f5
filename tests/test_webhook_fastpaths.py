"""The delivery parsers' fast paths agree with the general reading they stand in for.

``smscommy_delivery_of`` and ``isms_delivery_of`` read stripped, lower-cased parameters
(``_parsers._stripped``) with ``found.get(a) or found.get(b)`` chains, and
``status_of_word`` looks a word up as sent before normalising it. Each is held here, over
random parameters (names in any casing, repeated, blank or padded values), to the reading
as it was before: ``_lowered`` and ``_get``, the regular expression every time, and
``query_pairs`` followed by a loop over the pairs.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging_async import WebhookError
from messaging_async.webhooks import _parsers, parse_isms_whatsapp_callback
from messaging_async.webhooks._parsers import (
    MAX_FIELDS,
    _get,
    _guarded,
    _lowered,
    _timestamp,
    isms_delivery_of,
    query_pairs,
    smscommy_delivery_of,
    token_and_params,
)
from messaging_async.webhooks._statuses import (
    _SEPARATORS,
    SMSCOMMY_STATUSES,
    STATUS_WORDS,
    status_of_word,
)
from messaging_async.webhooks._whatsapp_response import decoded_payload
from messaging_async.webhooks.events import DeliveryReport, DeliveryStatus

_NAMES = (
    *("MsgId", "msgid", "MSGID", "Sender", "sender", "Status", "status", "STATUS"),
    *("sms_id", "SMS_ID", "trx_id", "dstno", "Mobile", "mobile", "Timestamp", "time"),
    *("datetime", "date", "DoneDate", "other"),
)
_VALUES = st.sampled_from(
    ("", " ", "6", " 7 ", "DELIVRD", "Not_Delivered", "delivered ", "42", "1732230000", "x")
) | st.text(max_size=6)


def _reference_status(word: str | None) -> DeliveryStatus:
    if word is None:
        return DeliveryStatus.UNKNOWN
    return STATUS_WORDS.get(_SEPARATORS.sub(" ", word).strip().upper(), DeliveryStatus.UNKNOWN)


def _require(found: dict[str, str], *names: str) -> str:
    value = _get(found, *names)
    if value is None:
        raise WebhookError("no id")
    return value


def _reference_smscommy(params: dict[str, str]) -> DeliveryReport:
    found = _lowered(params)
    message_id = _require(found, "msgid")
    code = _get(found, "status")
    return DeliveryReport(
        gateway="smscommy",
        message_id=message_id,
        status=SMSCOMMY_STATUSES.get(code or "", DeliveryStatus.UNKNOWN),
        status_code=code,
        sender=_get(found, "sender"),
        timestamp=_timestamp(_get(found, "timestamp", "time", "date")),
        raw=params,
    )


def _reference_isms(params: dict[str, str]) -> DeliveryReport:
    found = _lowered(params)
    message_id = _require(found, "sms_id", "msgid", "trx_id")
    code = _get(found, "status")
    return DeliveryReport(
        gateway="isms",
        message_id=message_id,
        status=_reference_status(code),
        status_code=code,
        recipient=_get(found, "dstno", "mobile"),
        timestamp=_timestamp(_get(found, "timestamp", "datetime", "time", "date", "donedate")),
        raw=params,
    )


def _outcome(parse: Any, params: dict[str, str]) -> DeliveryReport | str:
    try:
        return parse(params)  # type: ignore[no-any-return]
    except WebhookError:
        return "WebhookError"


_PARAMS = st.dictionaries(st.sampled_from(_NAMES), _VALUES, max_size=8)


@given(_PARAMS)
def test_smscommy_delivery_of_reads_as_the_general_reading(params: dict[str, str]) -> None:
    assert _outcome(smscommy_delivery_of, params) == _outcome(_reference_smscommy, params)


@given(_PARAMS)
def test_isms_delivery_of_reads_as_the_general_reading(params: dict[str, str]) -> None:
    assert _outcome(isms_delivery_of, params) == _outcome(_reference_isms, params)


def test_a_name_repeated_in_another_case_keeps_its_first_value() -> None:
    report = isms_delivery_of({"SMS_ID": " ", "sms_id": "9", "msgid": "7", "Status": "SENT"})
    assert report.message_id == "7"  # the first sms_id is blank: the next name is read
    assert _parsers._stripped({"A": " 1 ", "a": "2"}) == {"a": "1"}


@given(st.sampled_from(sorted(STATUS_WORDS)) | _VALUES)
def test_status_of_word_as_sent_is_its_normal_form(word: str) -> None:
    assert status_of_word(word) is _reference_status(word)


def test_every_status_word_is_its_own_normal_form() -> None:
    """What the look-up as sent relies on: a key found as sent is the key normalised."""
    for word in STATUS_WORDS:
        assert _SEPARATORS.sub(" ", word).strip().upper() == word


def _two_pass(query: str, name: str) -> tuple[list[str], dict[str, str]] | str:
    """The receiver's reading before ``token_and_params``: the pairs, then a loop."""
    try:
        pairs = query_pairs(query)
    except WebhookError:
        return "WebhookError"
    tokens, params = [], {}
    for key, value in pairs:
        if key == name:
            tokens.append(value)
        elif key not in params:
            params[key] = value
    return tokens, params


_QUERY_PART = st.sampled_from(
    ("token", "tok%65n", "token=", "=", "&", "a", "A", "b", "%", "%ZZ", "%C3%A9", "%FF", "+", "=x")
) | st.text(alphabet="ab=&%+2F", max_size=4)


@given(st.lists(_QUERY_PART, max_size=10).map("".join), st.sampled_from(("token", "a", "")))
def test_token_and_params_reads_as_the_pairs_do(query: str, name: str) -> None:
    try:
        got: object = token_and_params(query, name)
    except WebhookError:
        got = "WebhookError"
    assert got == _two_pass(query, name)


def test_token_and_params_refuses_too_many_parameters_as_the_pairs_do() -> None:
    query = "&".join(["a=1"] * (MAX_FIELDS + 1))
    with pytest.raises(WebhookError, match="parameters"):
        token_and_params(query, "token")
    with pytest.raises(WebhookError, match="parameters"):
        query_pairs(query)


_PLAIN_PART = st.sampled_from(("token", "token=", "token=s", "=", "&", "a", "A", "a=1", "b=", "=x"))


@settings(max_examples=400)
@given(st.lists(_PLAIN_PART, max_size=10).map("".join), st.sampled_from(("token", "a", "")))
def test_a_query_with_no_escape_reads_as_the_pairs_do(query: str, name: str) -> None:
    """The loop for a query with no ``%`` or ``+`` anywhere (no search per field)."""
    assert token_and_params(query, name) == _two_pass(query, name)


def _form_value(payload: bytes, escapes: list[str]) -> str:
    """``payload`` in base64, its ``=``, ``+`` and ``/`` each escaped as ``escapes`` says
    (cycled): as sent, as a form encoder sends it, or otherwise."""
    value = base64.b64encode(payload).decode()
    out = []
    for n, char in enumerate(value):
        how = escapes[n % len(escapes)] if escapes and char in "=+/" else "plain"
        out.append(
            {"plain": char, "escaped": quote(char, safe=""), "lower": quote(char).lower()}.get(
                how, char
            )
        )
    return "".join(out)


_PAYLOADS = st.one_of(
    st.dictionaries(st.sampled_from(("from", "text", "timestamp", "id")), st.text(max_size=8)).map(
        lambda d: json.dumps(d).encode()
    ),
    st.binary(max_size=12),
    st.sampled_from((b"[1]", b'"x"', b"{", b'{"a": 1} ', b"\xff{}")),
)


@settings(max_examples=500, deadline=None)
@given(
    payload=_PAYLOADS,
    escapes=st.lists(st.sampled_from(("plain", "escaped", "lower")), max_size=3),
    before=st.sampled_from(("response=", "Response=", "", " response=", "response=%20")),
    after=st.sampled_from(("", " ", "&x=1", "\n", "%ZZ", "+")),
)
def test_the_form_body_as_bytes_reads_as_the_general_reading(
    payload: bytes, escapes: list[str], before: str, after: str
) -> None:
    """``decoded_payload``'s own reading of a bytes body (B1's ``response=`` form) against
    ``_response_parameter``'s, which reads the same body given as text."""
    body = before + _form_value(payload, escapes) + after

    def read(given: bytes | str) -> object:
        try:
            return _guarded(decoded_payload, given, "application/x-www-form-urlencoded", None, 4096)
        except WebhookError as exc:
            return f"WebhookError: {exc}"

    assert read(body.encode()) == read(body)


@pytest.mark.parametrize("over", [0, 1])
def test_the_form_body_as_bytes_is_held_to_the_size_limit_as_the_text_is(over: int) -> None:
    """At the limit both readings accept the body; one byte over, both refuse it (413)."""
    body = "response=" + _form_value(json.dumps({"from": "60123456789"}).encode(), ["escaped"])
    limit = len(body) - over

    def read(given: bytes | str) -> object:
        try:
            return _guarded(decoded_payload, given, None, None, limit)
        except WebhookError as exc:
            return f"WebhookError: {exc} {exc.too_large}"

    assert read(body.encode()) == read(body)
    assert (read(body) == {"from": "60123456789"}) is (over == 0)


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({"body": "first", "text": {"body": "second"}}, "first"),
        ({"text": {"body": "first"}, "caption": "second"}, "first"),
        ({"text": {"body": "first"}, "x": {"text": {"body": "second"}}}, "first"),
        ({"text": {"body": 5}, "x": {"text": {"body": "found"}}}, "found"),
    ],
)
def test_the_first_text_found_is_the_message_text(payload: dict[str, Any], text: str) -> None:
    """A ``text`` object's body, noted by the walk itself, counts only while no text has
    been found, as any other text name does."""
    body = "response=" + base64.b64encode(json.dumps(payload).encode()).decode()
    assert parse_isms_whatsapp_callback(body).messages[0].text == text
