"""iSMS inbound WhatsApp (CONTRACT B1): a ``response`` parameter holding base64 JSON.

The JSON's fields are documented nowhere public, and may be flat or nested Meta-style:
the event exposes the common ones it finds and always the whole decoded object.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import Factory, define

from ..errors import WebhookError
from ._parsers import (
    DEFAULT_MAX_BYTES,
    MAX_DEPTH,
    Query,
    _check_size,
    _get,
    _guarded,
    _lowered,
    _timestamp,
    params_of,
)
from .events import WhatsAppInbound

__all__ = ["decode_response", "parse_isms_whatsapp"]


def parse_isms_whatsapp(
    body: bytes | str | Mapping[str, Any],
    *,
    content_type: str | None = None,
    query: Query | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> WhatsAppInbound:
    """iSMS inbound WhatsApp (B1): a ``response`` parameter holding base64 JSON, in a form
    body, a JSON body or the query string. Missing padding, the URL-safe alphabet and ``+``
    turned into a space by a form decoder are all accepted."""
    return _guarded(_isms_whatsapp, body, content_type, query, max_bytes)


# ---------------------------------------------------------------- WhatsApp
def _isms_whatsapp(
    body: bytes | str | Mapping[str, Any],
    content_type: str | None,
    query: Query | None,
    max_bytes: int,
) -> WhatsAppInbound:
    encoded = _response_parameter(body, content_type, max_bytes)
    if encoded is None and query is not None:
        encoded = _get(_lowered(params_of(query, max_bytes)), "response")
    if encoded is None:
        raise WebhookError("the callback carries no 'response' parameter")
    return _whatsapp_event(decode_response(encoded))


def decode_response(encoded: str) -> dict[str, Any]:
    """The JSON object inside a ``response`` value (base64, tolerant as B1 asks)."""
    return _guarded(_decode_response, encoded)


def _decode_response(encoded: str) -> dict[str, Any]:
    data = json.loads(_decode_base64(encoded).decode("utf-8"))
    if not isinstance(data, dict):
        raise WebhookError("the decoded 'response' is not a JSON object")
    return data


def _response_parameter(
    body: bytes | str | Mapping[str, Any], content_type: str | None, max_bytes: int
) -> str | None:
    if isinstance(body, Mapping):
        return _get(_lowered(params_of(body, max_bytes)), "response")
    if isinstance(body, bytes | bytearray | memoryview):
        raw = bytes(body)
        _check_size(len(raw), max_bytes)
        text = raw.decode("utf-8")
    elif isinstance(body, str):
        _check_size(len(body), max_bytes)
        text = body
    else:
        raise WebhookError(
            f"expected the body as bytes, str or a mapping, not {type(body).__name__}"
        )
    if not text.strip():
        return None
    if "json" in (content_type or "").lower() or text.lstrip().startswith(("{", "[")):
        data = json.loads(text)
        if not isinstance(data, dict):
            raise WebhookError("a JSON body must be an object")
        value = next((v for k, v in data.items() if str(k).lower() == "response"), None)
        if value is not None and not isinstance(value, str):
            raise WebhookError("'response' must be a string")
        return value
    return _get(_lowered(params_of(text, max_bytes)), "response")


def _decode_base64(value: str) -> bytes:
    """Standard or URL-safe base64, padding optional, ``+`` possibly turned into spaces."""
    cleaned = value.strip().replace(" ", "+").replace("\n", "").replace("\r", "")
    cleaned = cleaned.replace("-", "+").replace("_", "/").rstrip("=")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError("'response' is not valid base64") from None


_FIELD_NAMES = {
    "sender": ("from", "sender", "wa_id", "mobile", "phone", "msisdn"),
    "recipient": ("to", "recipient", "display_phone_number", "waba_number", "shortcode"),
    "message_id": ("messageid", "message_id", "msgid", "wamid", "id"),
    "type": ("type", "messagetype", "message_type"),
    "media_url": ("url", "mediaurl", "media_url", "fileurl", "file_url", "link"),
    "timestamp": ("timestamp", "time", "datetime", "created_at", "date"),
}


def _whatsapp_event(data: dict[str, Any]) -> WhatsAppInbound:
    """Find the common fields in the message object (Meta nesting: ``messages[0]``) first,
    then anywhere in the payload, shallowest first."""
    whole = _index(data)
    indexes = [_index(whole.message), whole] if whole.message is not None else [whole]
    found = {name: _find(indexes, names) for name, names in _FIELD_NAMES.items()}
    return WhatsAppInbound(
        sender=_scalar(found["sender"]),
        recipient=_scalar(found["recipient"]),
        message_id=_scalar(found["message_id"]),
        type=_scalar(found["type"]),
        text=next((index.text for index in indexes if index.text is not None), None),
        media_url=_scalar(found["media_url"]),
        timestamp=_timestamp(found["timestamp"]),
        raw=data,
    )


def _walk(root: Any) -> Iterator[tuple[str, Any]]:
    """``(lower-cased key, value)`` of every mapping under ``root``, breadth first, bounded."""
    queue: deque[tuple[Any, int]] = deque([(root, 0)])
    while queue:
        node, depth = queue.popleft()
        if depth > MAX_DEPTH:
            continue
        if isinstance(node, dict):
            for key, value in node.items():
                yield str(key).lower(), value
                queue.append((value, depth + 1))
        elif isinstance(node, list):
            queue.extend((item, depth + 1) for item in node[:50])


@define
class _Index:
    """What one walk of a JSON object finds: the shallowest scalar under each key, the
    message text, and the first object of a Meta-style ``messages`` list."""

    scalars: dict[str, Any] = Factory(dict)
    text: str | None = None
    message: dict[str, Any] | None = None


def _index(scope: dict[str, Any]) -> _Index:
    index = _Index()
    for key, value in _walk(scope):
        if isinstance(value, dict | list):
            if index.message is None and key == "messages" and value and isinstance(value[0], dict):
                index.message = value[0]
        elif value not in (None, ""):
            index.scalars.setdefault(key, value)
        if index.text is None:
            index.text = _text_of(key, value)
    return index


def _text_of(key: str, value: Any) -> str | None:
    if key == "text" and isinstance(value, dict) and isinstance(value.get("body"), str):
        return str(value["body"])
    if key in ("text", "body", "content", "message", "msg", "caption") and isinstance(value, str):
        return value
    return None


def _find(indexes: list[_Index], names: tuple[str, ...]) -> Any:
    for index in indexes:
        for name in names:
            if name in index.scalars:
                return index.scalars[name]
    return None


def _scalar(value: Any) -> str | None:
    return None if value is None else str(value)
