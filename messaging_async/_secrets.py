"""Keeping credentials and message texts out of error messages built from gateway answers."""

from __future__ import annotations

from collections.abc import Iterable

SNIPPET_LENGTH = 200


def redacted_snippet(body: str, secrets: Iterable[str | None]) -> str:
    """The start of ``body``, safe to put in an exception message or a log line.

    Every occurrence of a secret (password, app secret, a message text of the request)
    is replaced before the body is cut, so a gateway that echoes the request back cannot
    leak it through us.
    """
    for secret in secrets:
        if secret:
            body = body.replace(secret, "***")
    body = " ".join(body.split())
    if len(body) > SNIPPET_LENGTH:
        return body[:SNIPPET_LENGTH] + "…"
    return body or "(empty body)"
