"""The WhatsApp parser's fast paths agree with the general paths they stand in for.

``_whatsapp_callback`` walks the decoded object once (one table look-up per scalar) and asks
``flat_receipt`` only when a ``status`` name was seen; ``_unquoted_base64`` undoes a form's
base64 escapes by plain replacement. Each is held here to a general reading over random
shapes: the reference below is the walk as it was before (every field kept with its rank,
``flat_receipt`` asked of every object without messages or statuses), and ``_unquoted``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging_async import WebhookError
from messaging_async.webhooks import _whatsapp
from messaging_async.webhooks._parsers import MAX_DEPTH, _guarded, _timestamp, _unquoted
from messaging_async.webhooks._receipts import flat_receipt, receipts_of
from messaging_async.webhooks._whatsapp import (
    _FIELD_NAMES,
    _whatsapp_callback,
    parse_isms_whatsapp_callback,
)
from messaging_async.webhooks._whatsapp_response import (
    _decode_base64,
    _json_object,
    _unquoted_base64,
)
from messaging_async.webhooks.events import WhatsAppCallback, WhatsAppInbound

_RANKS = {
    name: (field, rank) for field, names in _FIELD_NAMES.items() for rank, name in enumerate(names)
}
_TEXTS = frozenset(("text", "body", "content", "message", "msg", "caption"))


class _Found:
    def __init__(self) -> None:
        self.fields: dict[str, tuple[int, Any]] = {}
        self.text: str | None = None
        self.messages: list[dict[str, Any]] = []
        self.statuses: list[tuple[dict[str, Any], list[Any]]] = []


def _reference_index(scope: dict[str, Any]) -> _Found:
    """The branch point's walk, kept as written then (breadth first, ranks compared)."""
    found = _Found()
    level: list[Any] = [scope]
    for _ in range(MAX_DEPTH + 1):
        deeper: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                for key, value in node.items():
                    name = str(key).lower()
                    if isinstance(value, dict | list):
                        if isinstance(value, dict):
                            if name == "text" and found.text is None:
                                body = value.get("body")
                                if isinstance(body, str):
                                    found.text = body
                        elif name == "statuses":
                            found.statuses.append((node, value))
                            continue
                        elif name == "messages" and value and isinstance(value[0], dict):
                            found.messages.extend(v for v in value[:50] if isinstance(v, dict))
                            continue
                        deeper.append(value)
                    elif value is not None and value != "":
                        named = _RANKS.get(name)
                        if named is not None and (
                            named[0] not in found.fields or named[1] < found.fields[named[0]][0]
                        ):
                            found.fields[named[0]] = (named[1], value)
                        if found.text is None and name in _TEXTS and isinstance(value, str):
                            found.text = value
            elif isinstance(node, list):
                deeper.extend(node[:50])
        if not deeper:
            break
        level = deeper
    return found


def _reference_event(data: dict[str, Any], whole: _Found, message: Any) -> WhatsAppInbound:
    found = {field: value for field, (_, value) in whole.fields.items()}
    text = whole.text
    if message is not None:
        own = _reference_index(message)
        found.update((field, value) for field, (_, value) in own.fields.items())
        text = own.text if own.text is not None else text
    timestamp = _timestamp(found.pop("timestamp", None))
    strings = {field: str(value) for field, value in found.items()}
    return WhatsAppInbound(**strings, text=text, timestamp=timestamp, raw=data)


def _reference_callback(data: dict[str, Any]) -> WhatsAppCallback:
    whole = _reference_index(data)
    receipts: tuple[Any, ...] = ()
    if whole.statuses:
        receipts = receipts_of(whole.statuses)
    elif not whole.messages:
        receipt = flat_receipt(data)
        receipts = () if receipt is None else (receipt,)
    if whole.messages:
        messages = tuple(_reference_event(data, whole, m) for m in whole.messages)
    elif whole.statuses or receipts:
        messages = ()
    else:
        messages = (_reference_event(data, whole, None),)
    return WhatsAppCallback(messages=messages, receipts=receipts, raw=data)


def _outcome(parse: Any, data: dict[str, Any]) -> object:
    """The callback, or the error's text: both readings must agree on either."""
    try:
        return _guarded(parse, data)
    except WebhookError as exc:
        return f"WebhookError: {exc}"


NAMES = st.sampled_from(
    [
        *("from", "From", "to", "TO", "messageId", "id", "wamid", "type", "Type", "image"),
        *("text", "Text", "body", "caption", "url", "link", "timestamp", "Time", "date"),
        *("status", "Status", "STATUS", "statuses", "messages", "Messages", "metadata"),
        *("display_phone_number", "recipient_id", "wa_id", "entry", "changes", "value", "x"),
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=2_000_000_000_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", " ", "read", "DELIVRD", "sent", "1732230000", "2024-11-22T10:00:00Z"]),
    st.text(max_size=8),
)
SHAPES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(NAMES, inner, max_size=6),
    ),
    max_leaves=30,
)


@settings(max_examples=600, deadline=None)
@given(data=st.dictionaries(NAMES, SHAPES, max_size=7))
def test_the_one_walk_reads_any_shape_as_the_general_reading_does(data: dict[str, Any]) -> None:
    assert _outcome(_whatsapp_callback, data) == _outcome(_reference_callback, data)


def deep(levels: int, leaf: dict[str, Any]) -> dict[str, Any]:
    for _ in range(levels):
        leaf = {"x": leaf}
    return leaf


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 5])
def test_fields_are_found_to_the_depth_limit_and_not_beyond(levels: int) -> None:
    data = {"type": "text", **deep(levels, {"from": "60123456789", "text": "hi"})}
    assert _outcome(_whatsapp_callback, data) == _outcome(_reference_callback, data)
    (message,) = _whatsapp_callback(data).messages
    assert (message.sender is not None) is (levels <= MAX_DEPTH)  # levels 0 to MAX_DEPTH are read


@pytest.mark.parametrize(
    "data",
    [
        {"id": "wamid.1", "Status": ""},  # a receipt with a blank status is malformed
        {"id": "wamid.1", "status": None},  # no status: a message
        {"id": "wamid.1", "STATUS": "read", "timestamp": "1732230000"},
        {"id": "wamid.1", "status": True},
        {"id": "wamid.1", "status": "read", "text": "hi"},  # content: a message
        {"id": "wamid.1", "x": {"status": "read"}},  # not at the top: a message
    ],
)
def test_flat_receipts_are_read_whatever_the_status_value(data: dict[str, Any]) -> None:
    assert _outcome(_whatsapp_callback, data) == _outcome(_reference_callback, data)


def test_a_blank_flat_status_is_still_a_malformed_receipt() -> None:
    with pytest.raises(WebhookError, match="no status"):
        _guarded(_whatsapp_callback, {"id": "wamid.1", "Status": " "})


ESCAPED = st.lists(
    st.sampled_from(
        [
            *("A", "z", "0", "/", "=", "-", "_", " ", "+", "%", "%%"),
            *("%3D", "%2B", "%2F", "%3d", "%2b", "%2f", "%20", "%25", "%ZZ", "%C3%A9", "%FF"),
        ]
    ),
    max_size=20,
).map("".join)


@settings(max_examples=800, deadline=None)
@given(value=ESCAPED)
def test_the_base64_unescaping_agrees_with_the_general_one(value: str) -> None:
    def read(unquote: Any) -> object:
        try:
            return unquote(value)
        except WebhookError as exc:
            return f"WebhookError: {exc}"

    assert read(_unquoted_base64) == read(_unquoted)


def test_a_form_value_escaped_the_usual_way_is_read_by_the_replacements() -> None:
    payload = "eyJmcm9tIjogIjYwMTIzNDU2Nzg5IiwgInRleHQiOiAiaGk/In0="  # has "/" and "="
    escaped = payload.replace("/", "%2F").replace("=", "%3D")
    callback = parse_isms_whatsapp_callback(f"response={escaped}")
    assert callback.messages[0].sender == "60123456789"
    assert _unquoted_base64(escaped) == payload


def _reference_base64(value: str) -> bytes:
    """The branch point's reading: b64decode(validate=True) first, then the tolerant one."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        pass
    cleaned = value.strip().replace(" ", "+").replace("\n", "").replace("\r", "")
    cleaned = cleaned.replace("-", "+").replace("_", "/").rstrip("=")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError("'response' is not valid base64") from None


BASE64_LIKE = st.one_of(
    st.binary(max_size=40).map(lambda raw: base64.b64encode(raw).decode()),
    st.text(alphabet="ABCabc019+/=-_ \n\ré", max_size=24),
)


@settings(max_examples=1000, deadline=None)
@given(value=BASE64_LIKE)
def test_the_strict_base64_first_try_reads_as_validate_did(value: str) -> None:
    def read(decode: Any) -> object:
        try:
            return decode(value)
        except WebhookError as exc:
            return f"WebhookError: {exc}"

    assert read(_decode_base64) == read(_reference_base64)


def test_the_names_remembered_are_bounded_in_number_and_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_whatsapp, "_KNOWN", {})
    long = {"F" * 5000 + "rom": "60123456789", "from": "60111111111"}
    (message,) = _whatsapp_callback(long).messages
    assert message.sender == "60111111111"
    assert all(len(key) <= 64 for key in _whatsapp._KNOWN)
    _whatsapp_callback({f"Name{n}": "x" for n in range(3 * _whatsapp._KNOWN_MAX)})
    assert len(_whatsapp._KNOWN) == _whatsapp._KNOWN_MAX
    (message,) = _whatsapp_callback({"FROM": "60123456789"}).messages  # read, not remembered
    assert message.sender == "60123456789"
    assert "FROM" not in _whatsapp._KNOWN


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
JSON_LIKE = st.one_of(
    JSON_VALUES.map(json.dumps),
    st.tuples(
        st.sampled_from(["", " ", "\n", "\ufeff", "x"]),
        st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3).map(json.dumps),
        st.sampled_from(["", " ", "\t", "}", ",", "{}", "x"]),
    ).map("".join),
    st.text(alphabet='{}[]":,0a \\', max_size=12),
)


@settings(max_examples=1000, deadline=None)
@given(text=JSON_LIKE)
def test_the_json_object_straight_to_the_scanner_reads_as_the_decoder_does(text: str) -> None:
    """As the branch point read it: ``JSONDecoder().decode``, which is ``json.loads`` but
    for the latter's own message for a str that starts with a BOM (both refuse it)."""

    def read(loads: Any) -> object:
        try:
            return ("value", loads(text))
        except ValueError as exc:
            return f"{type(exc).__name__}: {exc}"

    assert repr(read(_json_object)) == repr(read(json.JSONDecoder().decode))
