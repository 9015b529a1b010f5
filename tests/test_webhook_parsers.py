"""Table tests for every callback shape, and a property test: nothing escapes but WebhookError."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging_async import DeliveryStatus, WebhookError, webhooks
from messaging_async.webhooks._parsers import _timestamp, query_pairs
from messaging_async.webhooks._statuses import STATUS_WORDS
from messaging_async.webhooks._whatsapp_response import _response_parameter

MESSAGE = {
    "from": "60123456789",
    "to": "60111111111",
    "messageId": "wamid.HBg1",
    "type": "text",
    "text": {"body": "Hai, order saya? 👍 ~/+="},
    "timestamp": "1732230000",
}


def b64(obj: object, *, urlsafe: bool = False, padded: bool = True) -> str:
    raw = json.dumps(obj, ensure_ascii=False).encode()
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return text if padded else text.rstrip("=")


ENCODED = b64(MESSAGE)
assert "+" in ENCODED or "/" in ENCODED, "the payload should exercise the alphabet's odd characters"


@pytest.mark.parametrize(
    ("body", "content_type", "query"),
    [
        (urlencode({"response": ENCODED}).encode(), "application/x-www-form-urlencoded", None),
        (("response=" + ENCODED).encode(), None, None),  # unencoded form: '+' read as space
        (
            ("response=" + ENCODED.replace("+", " ")).encode(),
            "application/x-www-form-urlencoded",
            None,
        ),
        (("response=" + quote(b64(MESSAGE, padded=False), safe="")).encode(), None, None),
        (urlencode({"response": b64(MESSAGE, urlsafe=True)}).encode(), None, None),
        (json.dumps({"response": ENCODED}).encode(), "application/json", None),
        (json.dumps({"Response": b64(MESSAGE, padded=False)}), None, None),
        (b"", None, urlencode({"response": ENCODED})),
        ({"response": ENCODED}, None, None),
    ],
    ids=[
        "form",
        "form-raw-plus",
        "form-plus-as-space",
        "no-padding",
        "urlsafe",
        "json",
        "json-odd-case-no-padding",
        "query-string",
        "mapping",
    ],
)
def test_whatsapp_base64_variants(body: Any, content_type: str | None, query: str | None) -> None:
    event = webhooks.parse_isms_whatsapp(body, content_type=content_type, query=query)
    assert event.sender == "60123456789"
    assert event.recipient == "60111111111"
    assert event.message_id == "wamid.HBg1"
    assert event.type == "text"
    assert event.text == "Hai, order saya? 👍 ~/+="
    assert event.timestamp == datetime.fromtimestamp(1732230000, UTC)
    assert event.raw == MESSAGE
    assert "order saya" not in repr(event)


def test_whatsapp_meta_style_nesting() -> None:
    meta = {
        "entry": [
            {
                "id": "WABA-ACCOUNT",
                "changes": [
                    {
                        "value": {
                            "metadata": {"display_phone_number": "60111111111"},
                            "contacts": [{"wa_id": "60123456789"}],
                            "messages": [
                                {
                                    "from": "60123456789",
                                    "id": "wamid.X",
                                    "timestamp": "1732230000000",
                                    "type": "image",
                                    "image": {
                                        "url": "https://cdn.example/x.jpg",
                                        "caption": "look",
                                    },
                                }
                            ],
                        }
                    }
                ],
            }
        ]
    }
    event = webhooks.parse_isms_whatsapp(urlencode({"response": b64(meta)}))
    assert (event.sender, event.message_id, event.type) == ("60123456789", "wamid.X", "image")
    assert event.recipient == "60111111111"
    assert event.media_url == "https://cdn.example/x.jpg"
    assert event.text == "look"
    assert event.timestamp == datetime.fromtimestamp(1732230000, UTC)  # milliseconds


def test_whatsapp_flat_media_and_naive_time() -> None:
    flat = {
        "From": "6012",
        "MessageType": "document",
        "fileUrl": "https://x/a.pdf",
        "DateTime": "2025-01-01 10:00:00",
    }
    event = webhooks.parse_isms_whatsapp(json.dumps({"response": b64(flat)}))
    assert (event.sender, event.type, event.media_url) == ("6012", "document", "https://x/a.pdf")
    assert event.timestamp == datetime(2025, 1, 1, 10, 0)
    assert event.text is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "no 'response'"),
        (b"other=1", "no 'response'"),
        (b"response=!!!notbase64", "not valid base64"),
        (
            urlencode({"response": base64.b64encode(b"[1, 2]").decode()}).encode(),
            "not a JSON object",
        ),
        (urlencode({"response": base64.b64encode(b"\xff\xfe").decode()}).encode(), "malformed"),
        (urlencode({"response": base64.b64encode(b"{not json").decode()}).encode(), "malformed"),
        (b'{"response": 5}', "must be a string"),
        (b"[]", "must be an object"),
        (b"x" * (64 * 1024 + 1), "larger than"),
    ],
)
def test_whatsapp_malformed(body: bytes, message: str) -> None:
    with pytest.raises(WebhookError, match=message) as caught:
        webhooks.parse_isms_whatsapp(body)
    assert caught.value.too_large == (message == "larger than")


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("MsgId=123&Sender=60111&Status=6", DeliveryStatus.DELIVERED),
        ("msgid=123&sender=60111&status=7", DeliveryStatus.FAILED),
        ("MSGID=123&STATUS=8", DeliveryStatus.EXPIRED),
        ("MsgId=123&Status=9", DeliveryStatus.UNKNOWN),
        ("MsgId=123&Status=10", DeliveryStatus.REJECTED),
        *((f"MsgId=123&Status={code}", DeliveryStatus.QUEUED) for code in (11, 15, 16)),
        *((f"MsgId=123&Status={code}", DeliveryStatus.NOT_IN_SERVICE) for code in (12, 17)),
        *((f"MsgId=123&Status={code}", DeliveryStatus.OUT_OF_COVERAGE) for code in (13, 14)),
        ("MsgId=123&Status=42", DeliveryStatus.UNKNOWN),
        ("MsgId=123", DeliveryStatus.UNKNOWN),
    ],
)
def test_smscommy_delivery_statuses(query: str, status: DeliveryStatus) -> None:
    report = webhooks.parse_smscommy_delivery("?" + query + "&u=user&p=1234")
    assert report.message_id == "123"
    assert report.status is status
    assert report.gateway == "smscommy"
    assert report.raw["u"] == "user"
    assert report.raw["p"] == "1234"


def test_smscommy_delivery_from_bytes_and_mappings() -> None:
    assert webhooks.parse_smscommy_delivery(b"MsgId=9&Sender=60111&Status=6").sender == "60111"
    report = webhooks.parse_smscommy_delivery({"MsgID": ["9"], "Status": "6"})
    assert (report.message_id, report.status) == ("9", DeliveryStatus.DELIVERED)


@pytest.mark.parametrize(
    ("query", "status", "recipient"),
    [
        (
            "sms_id=1143007207&dstno=60123456789&status=DELIVRD",
            DeliveryStatus.DELIVERED,
            "60123456789",
        ),
        ("MsgId=1&mobile=6012&Status=UNDELIV", DeliveryStatus.FAILED, "6012"),
        ("msgid=1&status=Delivered", DeliveryStatus.DELIVERED, None),
        ("SMS_ID=1&STATUS=expired", DeliveryStatus.EXPIRED, None),
        ("sms_id=1&status=REJECTD", DeliveryStatus.REJECTED, None),
        ("sms_id=1&status=pending", DeliveryStatus.QUEUED, None),
        ("sms_id=1&status=42", DeliveryStatus.UNKNOWN, None),
    ],
)
def test_isms_delivery(query: str, status: DeliveryStatus, recipient: str | None) -> None:
    report = webhooks.parse_isms_delivery(query)
    assert report.status is status
    assert report.recipient == recipient
    assert report.gateway == "isms"


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("NOT DELIVERED", DeliveryStatus.FAILED),
        ("UNDELIVERED", DeliveryStatus.FAILED),
        ("not_delivered", DeliveryStatus.FAILED),
        (" Not-Delivered ", DeliveryStatus.FAILED),
        ("Deliver  Failed", DeliveryStatus.FAILED),
        ("No delivery", DeliveryStatus.UNKNOWN),
        ("UNSENT", DeliveryStatus.UNKNOWN),
        ("DELIVERED_NOT", DeliveryStatus.UNKNOWN),
        ("SENT", DeliveryStatus.SENT),
        ("Read", DeliveryStatus.READ),
        ("seen", DeliveryStatus.READ),
        ("UNREAD", DeliveryStatus.UNKNOWN),
        ("enqueued", DeliveryStatus.QUEUED),
        ("en_route", DeliveryStatus.QUEUED),
        ("Deliver Successful", DeliveryStatus.DELIVERED),
        ("delivered", DeliveryStatus.DELIVERED),
        ("Not In Service", DeliveryStatus.NOT_IN_SERVICE),
        ("out_of_coverage", DeliveryStatus.OUT_OF_COVERAGE),
        ("6", DeliveryStatus.UNKNOWN),
    ],
)
def test_isms_status_words_are_read_whole(word: str, status: DeliveryStatus) -> None:
    report = webhooks.parse_isms_delivery({"sms_id": "1", "status": word})
    assert report.status is status
    assert report.status_code == word.strip()  # the gateway's own word, kept
    assert report.raw["status"] == word


@pytest.mark.parametrize("word", sorted(STATUS_WORDS))
def test_no_negation_of_a_status_word_reads_as_that_status(word: str) -> None:
    """Whole words only: a word with "UN" or "NOT " in front is never the word's status."""
    status = STATUS_WORDS[word]
    for negated in ("UN" + word, "NOT " + word, "NO " + word, word + "X"):
        if negated.replace("_", " ") not in STATUS_WORDS:
            read = webhooks.parse_isms_delivery({"sms_id": "1", "status": negated}).status
            assert read is DeliveryStatus.UNKNOWN or read is not status, negated


@pytest.mark.parametrize(
    ("parse", "query"),
    [
        (webhooks.parse_isms_delivery, "sms_id=%ZZ&status=DELIVRD"),
        (webhooks.parse_isms_delivery, "sms_id=1&status=DELIV%2"),
        (webhooks.parse_smscommy_delivery, "MsgId=12%G4&Status=6"),
        (webhooks.parse_smscommy_incoming, "Sender=6019&Msg=50%&ContentType=1"),
        (webhooks.parse_smscommy_incoming, "Sender=6019&Msg=%FF&ContentType=1"),
        (webhooks.parse_isms_whatsapp, "response=abc%ZZ"),
        (webhooks.parse_isms_whatsapp, "response=abc%ZZ&x=1"),
    ],
)
def test_a_malformed_percent_escape_is_a_webhook_error(parse: Any, query: str) -> None:
    with pytest.raises(WebhookError, match="percent-escape"):
        parse(query)


@pytest.mark.parametrize("parse", [webhooks.parse_isms_delivery, webhooks.parse_smscommy_delivery])
def test_a_delivery_report_needs_a_message_id(parse: Any) -> None:
    with pytest.raises(WebhookError, match="message id"):
        parse("status=6&dstno=6012")


@pytest.mark.parametrize(
    ("query", "text", "decoded"),
    [
        ("Shortcode=60123&Sender=6019&ContentType=1&Msg=Hello+there", "Hello there", False),
        ("ShortCode=60123&Sender=6019&ContentType=2&Msg=004100420043", "ABC", True),
        ("shortcode=60123&sender=6019&contenttype=3&msg=D83DDE00004100420043", "😀ABC", True),
        ("Shortcode=60123&Sender=6019&ContentType=2&Msg=4F60597D", "你好", True),
        ("Shortcode=60123&Sender=6019&ContentType=2&Msg=hello", "hello", False),
        ("Shortcode=60123&Sender=6019&ContentType=2&Msg=D83D0041", "D83D0041", False),
        ("Shortcode=60123&Sender=6019&ContentType=1&Msg=004100420043", "004100420043", False),
    ],
)
def test_incoming_sms(query: str, text: str, decoded: bool) -> None:
    sms = webhooks.parse_smscommy_incoming(query + "&u=user&p=1234")
    assert (sms.sender, sms.shortcode, sms.text, sms.decoded_from_hex) == (
        "6019",
        "60123",
        text,
        decoded,
    )
    assert sms.raw["u"] == "user"
    if sms.content_type in ("2", "3") and not decoded:
        assert sms.note
    assert text not in repr(sms) or text == "hello"


@pytest.mark.parametrize("query", ["Sender=6019&ContentType=1", "Msg=hi&ContentType=1", 42, None])
def test_incoming_sms_malformed(query: Any) -> None:
    with pytest.raises(WebhookError):
        webhooks.parse_smscommy_incoming(query)


def test_too_many_or_too_large_parameters() -> None:
    with pytest.raises(WebhookError):
        webhooks.parse_smscommy_delivery("&".join(f"k{i}=v" for i in range(2000)))
    with pytest.raises(WebhookError) as caught:
        webhooks.parse_smscommy_delivery({"MsgId": "1", "big": "x" * 70_000})
    assert caught.value.too_large


PARSERS: list[Callable[..., Any]] = [
    webhooks.parse_isms_delivery,
    webhooks.parse_smscommy_delivery,
    webhooks.parse_smscommy_incoming,
    webhooks.parse_isms_whatsapp,
    webhooks.parse_isms_whatsapp_callback,
]
WHATSAPP_PARSERS = (webhooks.parse_isms_whatsapp, webhooks.parse_isms_whatsapp_callback)
status_entry = st.dictionaries(
    st.sampled_from(["id", "status", "timestamp", "recipient_id", "errors", "type", "text"]),
    st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans(), st.lists(st.none())),
    max_size=5,
)
anything = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.dictionaries(
        st.text(max_size=10),
        st.one_of(
            st.text(max_size=30),
            st.integers(),
            st.none(),
            st.lists(st.text(max_size=5), max_size=3),
        ),
        max_size=6,
    ),
    st.builds(
        lambda s: "response=" + s,
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/=_- %", max_size=80),
    ),
    st.builds(
        lambda obj: "response=" + b64(obj),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=5), children, max_size=3)
            ),
            max_leaves=10,
        ),
    ),
    st.builds(
        lambda statuses, messages: (
            "response="
            + b64(
                {"entry": [{"changes": [{"value": {"statuses": statuses, "messages": messages}}]}]}
            )
        ),
        st.lists(status_entry | st.integers() | st.text(max_size=3), max_size=3),
        st.lists(status_entry | st.none(), max_size=2) | st.text(max_size=3),
    ),
    st.builds(lambda entry: "response=" + b64(entry), status_entry),
    st.integers(),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(
    payload=anything, content_type=st.sampled_from([None, "application/json", "text/plain", "x"])
)
def test_nothing_but_webhook_error_escapes_any_parser(
    payload: Any, content_type: str | None
) -> None:
    for parse in PARSERS:
        try:
            if parse in WHATSAPP_PARSERS:
                event = parse(
                    payload,
                    content_type=content_type,
                    query=payload if isinstance(payload, str) else None,
                )
            else:
                event = parse(payload)
        except WebhookError:
            continue
        assert event.raw is not None


query_text = st.text(alphabet="ab=&+%2Fé ?;", max_size=40) | st.text(max_size=40)
BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@settings(max_examples=500, deadline=None)
@given(query=query_text)
def test_our_query_parser_reads_what_parse_qsl_reads(query: str) -> None:
    """``query_pairs`` replaces ``parse_qsl`` for speed; it must read every query the same,
    except that it refuses what ``parse_qsl`` keeps as text: a ``%`` not followed by two
    hex digits (both refuse escapes that are not UTF-8)."""
    try:
        expected: object = parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        expected = "refused"
    if BAD_ESCAPE.search(query.replace("+", " ")):
        expected = "refused"
    try:
        got: object = query_pairs(query)
    except WebhookError:
        got = "refused"
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(value=st.text(alphabet="ABab01+/=-_ %2B", max_size=60))
def test_the_documented_form_body_reads_as_the_general_form_path_does(value: str) -> None:
    """``response=…`` alone takes a shortcut; adding a second parameter forces the general
    path, which must find the same value."""
    form = "response=" + value
    assert _read_response(form) == _read_response(form + "&other=1")


def _read_response(form: str) -> object:
    try:
        return _response_parameter(form, None, 65536)
    except WebhookError:
        return "refused"  # an invalid percent-escape


@settings(max_examples=300, deadline=None)
@given(seconds=st.integers(min_value=100_000_000, max_value=9_999_999_999))
def test_epoch_seconds_read_the_same_through_the_shortcut(seconds: int) -> None:
    """Plain 9-10 digit epochs skip the pattern match; padded ones still take it."""
    assert _timestamp(str(seconds)) == _timestamp(f" {seconds} ")
    assert _timestamp(str(seconds)) == datetime.fromtimestamp(seconds, UTC)


def test_a_messages_object_that_is_not_a_list_is_not_an_error() -> None:
    """Meta nests messages in a list; an object under that name is just more payload."""
    payload = {"messages": {"from": "60123456789"}, "type": "text"}
    event = webhooks.parse_isms_whatsapp(b"response=" + b64(payload).encode())
    assert event.sender == "60123456789"
    assert event.type == "text"
