"""Keeping credentials and message texts out of error messages built from gateway answers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

SNIPPET_LENGTH = 200


def _forms(secret: str) -> set[str]:
    """A secret as it may appear in an echoed request: raw, JSON-escaped or URL-encoded."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote_plus(secret),
        quote(secret, safe=""),
    }


def redacted_snippet(body: str, secrets: Iterable[str | None]) -> str:
    """The start of ``body``, safe to put in an exception message or a log line.

    Every occurrence of a secret (password, app secret, a message text of the request), in
    any form a request body could carry it, is replaced before the body is cut, so a
    gateway that echoes the request back cannot leak it through us.
    """
    forms = {form for secret in secrets if secret for form in _forms(secret)}
    for form in sorted(forms, key=len, reverse=True):
        body = body.replace(form, "***")
    body = " ".join(body.split())
    if len(body) > SNIPPET_LENGTH:
        return body[:SNIPPET_LENGTH] + "…"
    return body or "(empty body)"
