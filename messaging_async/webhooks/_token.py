"""The receiver's first step: is the caller's token in the query, and equal to the secret?

Neither gateway signs its callbacks, so the caller is authenticated by a shared secret in
the callback URL (``?token=…``), compared in constant time before anything else is looked
at; the token is taken out of the parameters, so it never reaches an event's ``raw``.
"""

from __future__ import annotations

import hmac
from urllib.parse import unquote_to_bytes

from ..errors import WebhookError
from . import _parsers

__all__ = ["query_if_token_matches"]


def query_if_token_matches(
    raw_query: bytes, name: str, secret: bytes
) -> dict[str, str] | WebhookError | None:
    """``None`` unless the query holds exactly one token parameter, equal to the secret
    (compared in constant time); else the other parameters (first value wins), read
    strictly, or the ``WebhookError`` reading them raised (400 once the route is known).

    The query is read once: strictly, and for the token too when that succeeds. A
    malformed query's token is read leniently (``unquote_to_bytes`` never fails), so it
    is 401, not 400, for a caller without the token.
    """
    try:
        found, params = _parsers.token_and_params(raw_query.decode(), name)  # UTF-8, strict
    except UnicodeDecodeError:
        query: dict[str, str] | WebhookError = WebhookError("the query string is not UTF-8")
        tokens = _lenient_tokens(raw_query, name.encode())
    except WebhookError as error:
        query, tokens = error, _lenient_tokens(raw_query, name.encode())
    else:
        query = params
        if not name:  # an empty name: the lenient reading's idea of its fields
            tokens = _lenient_tokens(raw_query, name.encode())
        elif len(found) == 1:  # the usual callback: its one token
            return query if hmac.compare_digest(found[0].encode(), secret) else None
        else:
            tokens = []  # none, or several: never the secret
    given = tokens[0] if len(tokens) == 1 else b""
    return query if hmac.compare_digest(given, secret) else None


def _lenient_tokens(raw_query: bytes, token_name: bytes) -> list[bytes]:
    """The token parameter's values, however malformed the rest of the query."""
    tokens = []
    for field in raw_query.split(b"&"):
        name, _, value = field.partition(b"=")
        if unquote_to_bytes(name.replace(b"+", b" ")) == token_name:
            tokens.append(unquote_to_bytes(value.replace(b"+", b" ")))
    return tokens
