"""Keeping credentials, message texts and phone numbers out of anything built from a gateway
answer: error messages, outcome reasons, a refusal's ``raw``, and so log records.

The one place where gateway text is made safe to quote. A gateway may echo the request it
was sent (``{"code": -1009, "message": "… 'OTP 918273' … pwd=…"}``); every path that puts
its words into an error, an outcome or a log line goes through a ``Redactor`` first.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from .phone import mask_number

__all__ = ["MASK", "SNIPPET_LENGTH", "Redactor", "redacted_snippet"]

SNIPPET_LENGTH = 200
MASK = "***"


def _forms(secret: str) -> set[str]:
    """A secret as it may appear in an echoed request: raw, JSON-escaped, as a Python bytes
    literal (httpx's and aiohttp's protocol errors quote a malformed answer's bytes that
    way), each of those escaped once more (a JSON answer quoting our JSON body as a string;
    an exception message quoting a ``repr``), URL-encoded or HTML-escaped (an error page)."""
    quoted = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret.encode("utf-8", "surrogatepass"))[2:-1],
    }
    return {
        *quoted,
        *(json.dumps(form)[1:-1] for form in quoted),
        *(repr(form)[1:-1] for form in quoted),
        quote_plus(secret, errors="surrogatepass"),  # a lone surrogate must not raise here
        quote(secret, safe="", errors="surrogatepass"),
        html.escape(secret),
        html.escape(secret, quote=False),
    }


_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")


def _cores(secret: str) -> tuple[str, ...]:
    """The runs of ASCII letters and digits in ``secret``, lower-cased. Every form
    ``_forms`` makes keeps each of them intact, so a text missing any of them holds no form
    of the secret. (Templated texts share words; each also has a run of its own.)"""
    return tuple({run.lower() for run in _ASCII_WORD.findall(secret)})


@functools.lru_cache(maxsize=256)
def _pattern(
    secrets: tuple[str, ...], numbers: tuple[str, ...]
) -> tuple[re.Pattern[str], dict[str, str]]:
    """One pattern for every form of ``secrets`` and ``numbers``, longest first, ignoring
    case; and the mask for each number form (a secret's forms become ``MASK``)."""
    forms = {form for secret in secrets for form in _forms(secret)}
    secret_forms = {form.lower() for form in forms}
    masks: dict[str, str] = {}
    for number in numbers:
        masked = mask_number(number)
        for form in (number, "+" + number, quote_plus("+" + number, errors="surrogatepass")):
            if form.lower() not in secret_forms:  # a text that is a number stays secret
                masks[form.lower()] = masked
    alternatives = sorted(forms | set(masks), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE), masks


class Redactor:
    """What one request must never have quoted back: the client's secrets (password, app
    secret) and the request's own texts and template parameters, each replaced by ``***``;
    and its phone numbers, masked (``6012*****89``) so a reader still sees whose it was.

    Cheap to make (one per request unit, on the hot path) and cheap to apply to a text that
    quotes none of them (most refusals): each secret's ASCII words are looked for first,
    and a pattern is built only for the secrets whose words are all present. Matching
    ignores case (a gateway may upper-case what it echoes) and takes the longest form at
    each place, in one pass.
    """

    __slots__ = ("_cores", "_numbers", "_secrets")

    def __init__(self, secrets: Iterable[str | None] = (), numbers: Iterable[str] = ()):
        self._secrets = tuple(secrets)
        self._numbers = tuple(numbers)
        self._cores: list[tuple[str, tuple[str, ...], bool]] | None = None

    def including(
        self, secrets: Iterable[str | None] = (), numbers: Iterable[str] = ()
    ) -> Redactor:
        """This redactor plus one request's texts (``secrets``) and recipients (``numbers``)."""
        return Redactor((*self._secrets, *secrets), (*self._numbers, *numbers))

    def __call__(self, text: str) -> str:
        """``text`` with every secret removed and every number masked."""
        lowered = text.lower()
        present = [
            (value, is_number)
            for value, cores, is_number in self._cored()
            if all(core in lowered for core in cores)
        ]
        if not present:
            return text
        secrets = tuple(sorted({value for value, is_number in present if not is_number}))
        numbers = tuple(sorted({value for value, is_number in present if is_number}))
        pattern, masks = _pattern(secrets, numbers)
        return pattern.sub(lambda match: masks.get(match.group().lower(), MASK), text)

    def snippet(self, body: str) -> str:
        """The start of ``body``, safe for an exception message or a log line: redacted
        before it is cut, so a cut can never leave part of a secret behind."""
        body = " ".join(self(body).split())
        if len(body) > SNIPPET_LENGTH:
            return body[:SNIPPET_LENGTH] + "…"
        return body or "(empty body)"

    def scrub(self, data: Any) -> Any:
        """A copy of parsed answer data (JSON objects, lists, strings) with every string
        redacted; anything else as it is."""
        if isinstance(data, str):
            return self(data)
        if isinstance(data, dict):
            return {self.scrub(key): self.scrub(value) for key, value in data.items()}
        if isinstance(data, list | tuple):
            return type(data)(self.scrub(item) for item in data)
        return data

    def _cored(self) -> list[tuple[str, tuple[str, ...], bool]]:
        if self._cores is None:
            self._cores = [
                *((secret, _cores(secret), False) for secret in self._secrets if secret),
                *((number, (number.lower(),), True) for number in self._numbers if number),
            ]
        return self._cores


def redacted_snippet(body: str, secrets: Iterable[str | None]) -> str:
    """``Redactor(secrets).snippet(body)``: the start of ``body`` with every secret removed."""
    return Redactor(secrets).snippet(body)
