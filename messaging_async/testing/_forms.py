"""Reading a form request the way each gateway's platform does (docs/contract.md, E).

iSMS's classic API is PHP: names are case-sensitive and a POST field overrides a query
parameter of the same name (``$_REQUEST`` with PHP's default ``request_order = "GP"``).
sms.com.my is ASP.NET: ``Request[name]`` ignores case and looks in the query string
first, then the form; a name given twice in one of them reads as its values joined by
``,`` (``NameValueCollection``). Both read a body as url-encoded unless it says it is
``multipart/form-data`` (what PHP's ``CURLOPT_POSTFIELDS`` sends when given an array).
"""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

__all__ = ["aspnet_request", "body_fields", "php_request", "read_form"]

Pairs = list[tuple[str, str]]


def read_form(endpoint: str, query: str, body: bytes, content_type: str) -> dict[str, str]:
    """The fields a form endpoint sees: ``.php`` endpoints as PHP does, the others as ASP.NET.

    ASP.NET's names come back lower-cased, so handlers look them up in lower case.
    """
    fields = body_fields(body, content_type)
    if endpoint.endswith(".php"):
        return php_request(_urlencoded(query), fields)
    return aspnet_request(_urlencoded(query), fields)


def body_fields(body: bytes, content_type: str) -> Pairs:
    """A POST body's fields, in order: multipart or url-encoded, whatever the body says."""
    if not body:
        return []
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        return _multipart(body, content_type)
    return _urlencoded(body.decode("utf-8", "replace"))


def php_request(query: Pairs, form: Pairs) -> dict[str, str]:
    """``$_REQUEST``: the last of a name wins, and the form comes after the query string."""
    return dict([*query, *form])


def aspnet_request(query: Pairs, form: Pairs) -> dict[str, str]:
    """``Request[name]`` for every name, keyed in lower case: the query string wins over
    the form, and repeats within one of them are joined with ``,``."""
    merged: dict[str, str] = {}
    for source in (query, form):
        joined: dict[str, list[str]] = {}
        for name, value in source:
            joined.setdefault(name.lower(), []).append(value)
        for name, values in joined.items():
            merged.setdefault(name, ",".join(values))
    return merged


def _urlencoded(text: str) -> Pairs:
    return parse_qsl(text, keep_blank_values=True)


def _multipart(body: bytes, content_type: str) -> Pairs:
    """Text fields of a multipart/form-data body (RFC 7578), read with the standard library.

    File parts are left out: PHP puts them in ``$_FILES``, ASP.NET in ``Request.Files``,
    neither in the fields a gateway reads. A body that is not valid multipart has no fields.
    """
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return []
    fields: Pairs = []
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage) or part.get_filename() is not None:
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.append((name, _text(payload, part.get_content_charset())))
    return fields


def _text(payload: bytes, charset: str | None) -> str:
    try:
        return payload.decode(charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know: read it as UTF-8
        return payload.decode("utf-8", "replace")
